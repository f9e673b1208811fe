"""Human-readable reasons for a score: the strongest LightGBM feature contributions as sentences."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.registry import reason
from features.sectors import SECTOR_NAMES, product_label
from models.tasks import Task
from recommender.countries import country_name


def explain(model, table: pd.DataFrame, features: list[str], task: Task, sectors: pd.Series, *, top: int = 3) -> list[str]:
    """For each row, the ``top`` largest positive contributions (``pred_contrib``) as "; "-joined sentences.

    Contributions are SHAP values from LightGBM (Lundberg & Lee 2017), relative to the model's
    average score; rows with no positive contribution get the single strongest one. ``sectors``
    maps product → sector (the bank inputs' one mapping, :func:`features.sectors.product_sectors`).
    """
    if table.empty:
        return []
    booster = model.booster_ if hasattr(model, "booster_") else model
    contrib = booster.predict(table[features], pred_contrib=True)[:, :-1]
    out = []
    values = table[features].to_numpy(dtype=float)
    roles = {role: table[role].map(country_name).tolist() for role in task.roles}  # names once per column
    sector_names = table["product"].map(sectors).map(SECTOR_NAMES).fillna("its").tolist()
    order = np.argsort(-contrib, axis=1)[:, :top]
    for i in range(len(table)):
        chosen = [j for j in order[i] if contrib[i, j] > 0] or [int(order[i, 0])]
        names = {role: column[i] for role, column in roles.items()} | {"sector": sector_names[i]}
        out.append("; ".join(reason(features[j], values[i, j], names) for j in chosen))
    return out


def add_names(table: pd.DataFrame, task: Task, classification: str = "hs", names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Append ``<role>_name`` columns and ``product_name`` after the stable output columns."""
    out = table.copy()
    for role in [k for k in task.roles if k in out]:  # diversification's partner may be empty: no member is competitive
        out[f"{role}_name"] = out[role].map(lambda code: country_name(code) if code else "")
    labels = {p: product_label(p, classification, names) for p in pd.unique(out["product"])}
    out["product_name"] = out["product"].map(labels)
    return out
