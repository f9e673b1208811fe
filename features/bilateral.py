"""Bilateral features: exporter × importer, and exporter × importer × product."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from features.columns import check_columns
from features.trade import TRADE_COLUMNS, TradeView, grubel_lloyd, matched_trade, supplier_shares


def flow_features(trade: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """Flow features for candidate (year, exporter, importer, product) rows.

    * ``flow_value`` :math:`X_{i \\to j,p,t}` (0 without a flow) and ``reverse_flow``
      :math:`X_{j \\to i,p,t}`;
    * ``supplier_share`` :math:`s_{ijp,t} = X_{i \\to j,p,t} / M_{jp,t}`, ``supplier_share_lag3``
      (:math:`s` at t−3) and ``supplier_share_change_3y`` (:math:`s_t - s_{t-3}`);
    * ``grubel_lloyd`` :math:`GL = 1 - |X_{i \\to j} - X_{j \\to i}| / (X_{i \\to j} + X_{j \\to i})`
      (Grubel & Lloyd 1971; missing without trade either way);
    * ``matched_trade`` :math:`2 \\min(X_{i \\to j,p}, X_{j \\to i,p})`.
    """
    check_columns(trade, TRADE_COLUMNS, "trade")
    check_columns(candidates, ["year", "exporter", "importer", "product"], "candidates")
    out = candidates[["year", "exporter", "importer", "product"]].reset_index(drop=True)
    now = supplier_shares(trade, out)
    reverse = supplier_shares(trade, out.rename(columns={"exporter": "importer", "importer": "exporter"}))
    lag = supplier_shares(trade, out, offset=-3)
    out["flow_value"], out["reverse_flow"] = now["flow_value"].to_numpy(), reverse["flow_value"].to_numpy()
    out["supplier_share"] = now["supplier_share"].to_numpy()
    has_year = out["year"].sub(3).isin(trade["year"].unique()).to_numpy()
    out["supplier_share_lag3"] = np.where(has_year, lag["supplier_share"].to_numpy(), np.nan)
    out["supplier_share_change_3y"] = out["supplier_share"] - out["supplier_share_lag3"]
    out["grubel_lloyd"] = grubel_lloyd(out["flow_value"], out["reverse_flow"])
    out["matched_trade"] = matched_trade(out["flow_value"], out["reverse_flow"])
    return out


def pair_features(trade: TradeView | pd.DataFrame, countries: Collection[str]) -> pd.DataFrame:
    """Exporter × importer features for ordered pairs of ``countries``, every year.

    * ``bilateral_exports`` :math:`x_{ij} = \\sum_p X_{i \\to j,p}`; ``bilateral_trade``
      :math:`x_{ij} + x_{ji}`;
    * ``trade_intensity`` (Brown 1949; Kojima 1964)
      :math:`TII_{ij} = (x_{ij} / X_i) / (M_j / M_w)` with :math:`X_i` i's exports to the world,
      :math:`M_j` j's imports and :math:`M_w` world trade;
    * ``complementarity`` (Michaely 1996)
      :math:`TCI_{ij} = 1 - \\tfrac12 \\sum_p |m_{jp} - x_{ip}|` with :math:`m_{jp}` the share of p in
      j's imports and :math:`x_{ip}` the share of p in i's exports (1 = perfect match).

    ``trade``: a :class:`~features.trade.TradeView` covering ``countries`` (world exports and
    imports give :math:`X_i, M_j, M_w` and the shares; its flows give :math:`x_{ij}`), or a flow table.
    """
    members = sorted(set(countries))
    view = trade if isinstance(trade, TradeView) else TradeView.from_trade(trade, members)
    flows = view.flows[view.flows["exporter"].isin(members) & view.flows["importer"].isin(members)]
    by_year = {name: dict(iter(t.groupby("year", sort=True))) for name, t in
               (("exports", view.exports), ("imports", view.imports), ("flows", flows))}
    frames = []
    for year, ex in by_year["exports"].items():
        im = by_year["imports"].get(year, view.imports.iloc[:0])
        fl = by_year["flows"].get(year, flows.iloc[:0])
        world = ex["value"].sum()
        exports = ex.groupby("exporter", observed=True)["value"].sum()
        imports = im.groupby("importer", observed=True)["imports"].sum()
        products = pd.Index(np.sort(ex["product"].unique()))
        exp_share = _shares(ex, "exporter", "value", members, products)
        imp_share = _shares(im, "importer", "imports", members, products)
        tci = 1 - 0.5 * np.abs(exp_share[:, None, :] - imp_share[None, :, :]).sum(axis=2)
        bil = fl.groupby(["exporter", "importer"], observed=True)["value_usd"].sum()
        i, j = np.meshgrid(np.arange(len(members)), np.arange(len(members)), indexing="ij")
        i, j = i.ravel(), j.ravel()
        keep = i != j
        i, j = i[keep], j[keep]
        exp_c = np.array(members, dtype=object)[i]
        imp_c = np.array(members, dtype=object)[j]
        x_ij = bil.reindex(pd.MultiIndex.from_arrays([exp_c, imp_c])).fillna(0).to_numpy()
        x_ji = bil.reindex(pd.MultiIndex.from_arrays([imp_c, exp_c])).fillna(0).to_numpy()
        x_i = exports.reindex(exp_c).to_numpy()
        m_j = imports.reindex(imp_c).to_numpy()
        frames.append(pd.DataFrame({
            "year": year, "exporter": exp_c, "importer": imp_c, "bilateral_exports": x_ij,
            "bilateral_trade": x_ij + x_ji, "trade_intensity": (x_ij / x_i) / (m_j / world),
            "complementarity": tci[i, j],
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _shares(t: pd.DataFrame, side: str, value: str, members: list[str], products: pd.Index) -> np.ndarray:
    """members × products matrix of each member's product shares of its exports (or imports)."""
    sums = t[t[side].isin(members)].groupby([side, "product"], observed=True)[value].sum()
    mat = sums.unstack("product").reindex(index=members, columns=products).fillna(0.0).to_numpy()
    totals = mat.sum(axis=1, keepdims=True)
    return np.divide(mat, totals, out=np.zeros_like(mat), where=totals > 0)


def geography_features(geography: pd.DataFrame | None, pairs: pd.DataFrame) -> pd.DataFrame:
    """``distance_km``, ``contiguous``, ``common_language`` for (exporter, importer) pairs; missing without geography."""
    out = pairs[["exporter", "importer"]].drop_duplicates()
    if geography is None or geography.empty:
        return out.assign(distance_km=np.nan, contiguous=np.nan, common_language=np.nan)
    return out.merge(geography[["exporter", "importer", "distance_km", "contiguous", "common_language"]],
                     on=["exporter", "importer"], how="left")
