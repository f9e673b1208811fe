"""Column checks shared by every feature function (validate at the boundary)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from features.errors import FeatureError


def check_columns(frame: pd.DataFrame, required: Iterable[str], name: str) -> None:
    """Raise a clear error naming the missing columns and the ones present."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise FeatureError(f"column(s) {missing} missing from {name} frame; got columns {list(frame.columns)}")
