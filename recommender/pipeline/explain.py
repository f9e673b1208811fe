"""Human-readable reasons for a score: the strongest LightGBM feature contributions as sentences."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.registry import reason, reason_names
from features.sectors import SECTOR_NAMES, product_label
from models.contributions import contributions
from models.tasks import Task
from recommender.countries import country_name


def explain(model, table: pd.DataFrame, features: list[str], task: Task, sectors: pd.Series, *, top: int = 3) -> list[str]:
    """For each row, the ``top`` largest positive contributions (``pred_contrib``) as "; "-joined sentences.

    Contributions are SHAP values from LightGBM (Lundberg & Lee 2017), relative to the model's
    average score, computed once per tree and decision pattern (:func:`models.contributions.contributions`);
    rows with no positive contribution get the single strongest one. ``sectors`` maps product → sector
    (the bank inputs' one mapping, :func:`features.sectors.product_sectors`).
    Each distinct sentence is written once (:func:`sentences`), so a list of many keys pays for its
    distinct (feature, value, names) combinations, not for every row.
    """
    if table.empty:
        return []
    booster = model.booster_ if hasattr(model, "booster_") else model
    values = table[features].to_numpy(dtype=float)
    contrib = contributions(booster, values)
    names = {role: table[role].map(country_name).to_numpy(dtype=object) for role in task.roles}  # once per column
    names["sector"] = table["product"].map(sectors).map(SECTOR_NAMES).fillna("its").to_numpy(dtype=object)
    order = np.argsort(-contrib, axis=1)[:, :top]
    rows = np.arange(len(table))
    parts = []
    for position in range(order.shape[1]):
        column = order[:, position]
        shown = contrib[rows, column] > 0 if position else np.ones(len(table), dtype=bool)  # the strongest always
        part = np.full(len(table), None, dtype=object)
        for j in np.unique(column[shown]):
            at = np.flatnonzero(shown & (column == j))
            part[at] = sentences(features[j], values[at, j], {k: v[at] for k, v in names.items()})
        parts.append(part)
    return ["; ".join(p for p in row if p is not None) for row in zip(*parts, strict=True)]


def sentences(column: str, values: np.ndarray, names: Mapping[str, np.ndarray]) -> list[str]:
    """:func:`features.registry.reason` for many rows: each distinct (value, names it reads) combination once."""
    keys = [k for k in reason_names(column) if k in names]
    frame = pd.DataFrame({"value": values, **{k: names[k] for k in keys}})
    codes = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()  # a missing value too
    first = np.unique(codes, return_index=True)[1]
    written = [reason(column, values[i], {k: names[k][i] for k in keys}) for i in first]
    return [written[c] for c in codes]


def add_names(table: pd.DataFrame, task: Task, classification: str = "hs", names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Append ``<role>_name`` columns and ``product_name`` after the stable output columns."""
    out = table.copy()
    for role in [k for k in task.roles if k in out]:  # diversification's partner may be empty: no member is competitive
        out[f"{role}_name"] = out[role].map(lambda code: country_name(code) if code else "")
    labels = {p: product_label(p, classification, names) for p in pd.unique(out["product"])}
    out["product_name"] = out["product"].map(labels)
    return out
