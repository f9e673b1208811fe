"""Writing result tables: CSV or Parquet by extension, atomically, spreadsheet-safe."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from recommender.errors import RecommenderError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_NUMBER = r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$"


def _risky(values: pd.Series) -> pd.Series:
    """Text a spreadsheet would run: starts with ``= + - @`` tab or CR, and is not a plain number."""
    text = values.astype(str)
    return text.str.startswith(_FORMULA_START) & ~text.str.match(_NUMBER) & values.notna()


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells and headers a spreadsheet would run as formulas (``=``, ``+``, ``-``, ``@``...) with ``'``.

    Numbers are left alone — numeric columns, and text that is a plain number such as ``-12.5``
    (OWASP CSV-injection guidance).
    """
    out = frame.copy()
    headers = pd.Series([str(c) for c in out.columns])
    out.columns = headers.where(~_risky(headers), "'" + headers).tolist()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = out[col]
            risky = _risky(values)
            if risky.any():
                out[col] = values.where(~risky, "'" + values.astype(str))
    return out


def check_output(path: str | Path) -> Path:
    """An output path must end in .csv or .parquet; a clear error otherwise."""
    path = Path(path)
    if path.suffix.lower() not in {".csv", ".parquet"}:
        raise RecommenderError(f"--output must end in .csv or .parquet; got {path.name!r}")
    return path


@contextmanager
def atomic_output(path: str | Path) -> Iterator[str]:
    """Yield a temporary file beside ``path``; it replaces ``path`` only if the block succeeds (else it is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` (.csv or .parquet) via a temporary file and an atomic rename."""
    path = check_output(path)
    with atomic_output(path) as tmp:
        if path.suffix.lower() == ".csv":
            neutralise_formulas(frame).to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path
