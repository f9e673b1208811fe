"""Aggregations of bilateral flows: product level, world exports, imports by importer."""

from __future__ import annotations

import pandas as pd

from features.columns import check_columns
from recommender.errors import RecommenderError

TRADE_COLUMNS = ["year", "exporter", "importer", "product", "value_usd"]


def aggregate_products(trade: pd.DataFrame, level: int | None) -> pd.DataFrame:
    """Aggregate HS codes to ``level`` digits (6 → 4 → 2) by summing flows.

    ``None`` or the codes' own length returns the frame unchanged. A level longer than the codes
    is an error (the bank cannot be made finer).
    """
    check_columns(trade, TRADE_COLUMNS, "trade")
    if level is None or trade.empty:
        return trade
    current = int(trade["product"].str.len().max())
    if level > current:
        raise RecommenderError(f"--product-level {level} is finer than the bank's product codes ({current} characters)")
    if level == current:
        return trade
    out = trade.assign(product=trade["product"].str[:level])
    return out.groupby(["year", "exporter", "importer", "product"], as_index=False, observed=True)["value_usd"].sum()


def world_exports(trade: pd.DataFrame) -> pd.DataFrame:
    """``X[c,p,t] = Σ_j X[c→j,p,t]`` as ``year, exporter, product, value``."""
    check_columns(trade, TRADE_COLUMNS, "trade")
    out = trade.groupby(["year", "exporter", "product"], as_index=False, observed=True)["value_usd"].sum()
    return out.rename(columns={"value_usd": "value"})
