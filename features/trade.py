"""Aggregations of bilateral flows: product level, world exports, imports by importer, and the
:class:`TradeView` every feature reads instead of the whole panel."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.columns import check_columns
from features.errors import FeatureError

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
        raise FeatureError(f"--product-level {level} is finer than the bank's product codes ({current} characters)")
    if level == current:
        return trade
    out = trade.assign(product=trade["product"].str[:level])
    return out.groupby(["year", "exporter", "importer", "product"], as_index=False, observed=True)["value_usd"].sum()


def world_exports(trade: pd.DataFrame) -> pd.DataFrame:
    """``X[c,p,t] = Σ_j X[c→j,p,t]`` as ``year, exporter, product, value``."""
    check_columns(trade, TRADE_COLUMNS, "trade")
    out = trade.groupby(["year", "exporter", "product"], as_index=False, observed=True)["value_usd"].sum()
    return out.rename(columns={"value_usd": "value"})


def imports(trade: pd.DataFrame) -> pd.DataFrame:
    """``M[j,p,t] = Σ_i X[i→j,p,t]`` as ``year, importer, product, imports``."""
    check_columns(trade, TRADE_COLUMNS, "trade")
    out = trade.groupby(["year", "importer", "product"], as_index=False, observed=True)["value_usd"].sum()
    return out.rename(columns={"value_usd": "imports"})


@dataclass(frozen=True)
class TradeView:
    """What the features and labels read from bilateral trade, without the whole flow table.

    * ``exports`` — ``year, exporter, product, value``: world exports
      :math:`X_{cp,t} = \\sum_j X_{c \\to j,p,t}` of every country (:func:`world_exports`);
    * ``imports`` — ``year, importer, product, imports``: world imports
      :math:`M_{jp,t} = \\sum_i X_{i \\to j,p,t}` of every country (:func:`imports`);
    * ``flows`` — ``year, exporter, importer, product, value_usd``: every flow whose exporter or
      importer is in ``countries`` (for a bloc, about 2·|B|/N of the world's flows).

    Complexity reads ``exports``, pair features all three, and everything bilateral (flow
    features, importer features, two-way trade, labels) ``flows``. A bank answers these three
    queries out of core (:meth:`recommender.bank.DataBank.trade_view`); :meth:`from_trade` builds
    the same view from an in-memory flow table.
    """

    exports: pd.DataFrame
    imports: pd.DataFrame
    flows: pd.DataFrame
    countries: tuple[str, ...]

    @classmethod
    def from_trade(cls, trade: pd.DataFrame, countries: Collection[str]) -> TradeView:
        """The view of an in-memory ``trade`` table (columns :data:`TRADE_COLUMNS`) for ``countries``."""
        check_columns(trade, TRADE_COLUMNS, "trade")
        members = tuple(sorted(set(countries)))
        flows = trade[trade["exporter"].isin(members) | trade["importer"].isin(members)][TRADE_COLUMNS]
        return cls(world_exports(trade), imports(trade), flows.reset_index(drop=True), members)

    @classmethod
    def concat(cls, views: Iterable[TradeView]) -> TradeView:
        """One view of several (e.g. one per year) that share ``countries``."""
        views = list(views)
        if not views or len({v.countries for v in views}) != 1:
            raise FeatureError("TradeView.concat needs one or more views of the same countries")

        def cat(frames: list[pd.DataFrame]) -> pd.DataFrame:
            return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

        return cls(cat([v.exports for v in views]), cat([v.imports for v in views]), cat([v.flows for v in views]),
                   views[0].countries)

    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.exports["year"].unique())

    def covers(self, countries: Collection[str]) -> bool:
        """Whether ``flows`` holds every flow of ``countries``."""
        return set(countries) <= set(self.countries)

    def restrict(self, keep: Callable[[pd.Series], pd.Series]) -> TradeView:
        """The view of the years for which ``keep(year column)`` is true."""
        return TradeView(*(t[keep(t["year"])].reset_index(drop=True) for t in (self.exports, self.imports, self.flows)),
                         self.countries)


def supplier_shares(trade: pd.DataFrame, keys: pd.DataFrame, *, offset: int = 0) -> pd.DataFrame:
    """Flow and supplier share for ``keys`` (year, exporter, importer, product) in year ``year + offset``.

    ``flow_value`` :math:`X_{i\to j,p,t+o}` (0 without a flow), ``imports`` :math:`M_{j,p,t+o}` and
    ``supplier_share`` :math:`s = X / M` (0 where M = 0). One row per key row, in order. The one
    definition of a supplier's share, used by the features (o = 0, −3) and the labels (o = h).
    """
    check_columns(keys, ["year", "exporter", "importer", "product"], "keys")
    at = keys[["year", "exporter", "importer", "product"]].assign(year=keys["year"] + offset).reset_index(drop=True)
    # only the flows into the keys' (year, importer, product) cells matter: M needs every exporter of those cells
    trade = trade[trade["year"].isin(at["year"].unique()) & trade["importer"].isin(at["importer"].unique())
                  & trade["product"].isin(at["product"].unique())]
    flows = trade.groupby(["year", "exporter", "importer", "product"], as_index=False, observed=True)["value_usd"].sum()
    out = at.merge(flows.rename(columns={"value_usd": "flow_value"}), on=list(at.columns), how="left")
    out = out.merge(imports(trade), on=["year", "importer", "product"], how="left")
    x, m = out["flow_value"].fillna(0.0).to_numpy(), out["imports"].fillna(0.0).to_numpy()
    share = np.divide(x, m, out=np.zeros_like(x), where=m > 0)
    return pd.DataFrame({"flow_value": x, "imports": m, "supplier_share": share})


def matched_trade(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Matched (two-way) trade :math:`O = 2 \\min(X_{a\to b}, X_{b\to a})`."""
    return 2 * np.minimum(np.asarray(x, dtype=float), np.asarray(m, dtype=float))


def grubel_lloyd(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Grubel–Lloyd index :math:`GL = 1 - |X - M| / (X + M) = O / (X + M)` (Grubel & Lloyd 1971); NaN without trade."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    both = x + m
    return np.divide(matched_trade(x, m), both, out=np.full_like(both, np.nan), where=both > 0)
