"""Assemble model-ready feature tables for the two tasks from the base feature families.

Pure functions: DataFrames in, new DataFrames out. Point-in-time by construction: every base
table's row for year t uses years ≤ t only (lags look back), and :func:`build_base` drops any
trade after ``until``, so the caller can guarantee nothing from the future enters.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.bilateral import flow_features, geography_features, pair_features
from features.capacity import capacity_features
from features.columns import check_columns
from features.complexity import add_dynamics, compute_complexity
from features.errors import FeatureError
from features.importer import importer_features
from features.trade import TradeView, grubel_lloyd, matched_trade

EXPORTER_PRODUCT = ["export_value", "world_share", "rca", "mcp", "diversity", "eci", "density", "distance", "coi", "cog",
                    "export_growth_3y", "export_growth_5y", "rca_change_3y"]
IMPORTER_EXPORTS = ["rca", "mcp", "density", "export_value", "eci"]
IMPORTER_PRODUCT = ["imports", "ext_imports", "ext_share", "bloc_share", "supplier_hhi", "n_suppliers", "import_growth_3y", "import_share"]
PARTNER_IMPORTS = ["imports", "ext_share", "import_share", "import_growth_3y"]
PAIR = ["bilateral_trade", "trade_intensity", "complementarity"]
CAPACITY = ["va_sector", "va_share_gdp", "va_growth_5y", "gdp", "capital_stock", "employment"]
PARTNER = ["export_value", "world_share", "rca", "mcp", "density", "cog", "eci", "export_growth_3y", "rca_change_3y"]
JOINT_PAIR_PRODUCT = ["two_way_trade", "matched_trade", "two_way_share", "two_way_share_change_3y", "pair_share",
                      "grubel_lloyd", "flow_value", "reverse_flow"]


@dataclass(frozen=True)
class BaseTables:
    """The feature families for a set of years, computed once and shared by both tasks."""

    trade: pd.DataFrame  # flows with importer or exporter in the bloc (what the tasks touch)
    complexity: pd.DataFrame  # year, exporter, product + complexity & dynamics (world)
    importer: pd.DataFrame  # year, importer, product (bloc importers)
    pairs: pd.DataFrame  # year, exporter, importer (bloc pairs)
    capacity: pd.DataFrame | None  # year, country, sector + capacity features
    geography: pd.DataFrame | None
    product_sector: pd.Series | None  # product → sector
    bloc: tuple[str, ...]
    pair_products: pd.DataFrame  # two-way trade within the bloc (:func:`pair_product_table`)
    imports: pd.DataFrame | None = None  # year, importer, product, imports: every country's imports (world)


FEATURE_LAGS = (0, 3, 5)
"""Years back that any feature of year t reads: t, t−3 (growth, share changes), t−5 (capacity, complexity dynamics).
A task may read more (:attr:`models.tasks.Task.lags`: diversification's RCA trajectory adds t−1 and t−2)."""


def build_base(
    trade: TradeView | pd.DataFrame,
    bloc: Collection[str],
    *,
    until: int | None = None,
    capacity: pd.DataFrame | None = None,
    geography: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    years: Collection[int] | None = None,
    complexity: pd.DataFrame | None = None,
    lags: Collection[int] = FEATURE_LAGS,
) -> BaseTables:
    """Compute every feature family from trade (and optional capacity, geography, products).

    ``trade``: a :class:`~features.trade.TradeView` whose flows cover the bloc (what a bank
    answers out of core), or a whole flow table. ``until`` drops all trade and capacity after that
    year first: features for year t then use data from years ≤ t only. ``years`` limits every table
    to the years features are wanted for and their lags (:data:`FEATURE_LAGS`), which is what
    scoring one year needs; such a base has no later years, so it cannot label outcomes. Default:
    every year. ``complexity``: the world complexity table (with dynamics) of those years from an
    earlier computation on the same trade (it does not depend on the bloc), to build bases for
    many country sets, or many years, at the cost of one.
    """
    members = tuple(sorted(set(bloc)))
    view = trade if isinstance(trade, TradeView) else TradeView.from_trade(trade, members)
    if not view.covers(members):
        raise FeatureError(f"the trade view holds the flows of {list(view.countries)}, not of every country of {list(members)}")
    if until is not None:
        view = view.restrict(lambda y: y <= until)
        if capacity is not None:
            capacity = capacity[capacity["year"] <= until]
    if years is not None:  # features of these years read only them and their 3- and 5-year lags
        needed = lag_years(years, lags)
        view = view.restrict(lambda y: y.isin(needed))
        if capacity is not None:
            capacity = capacity[capacity["year"].isin(needed)]
    if complexity is None:
        complexity = add_dynamics(compute_complexity(view.exports))
    flows = view.flows
    touched = flows[flows["importer"].isin(members) | flows["exporter"].isin(members)] if view.countries != members else flows
    sector = None
    if products is not None and "sector" in products:
        # INDSTAT-style capacity is by ISIC division ("24"); national accounts by aggregate ("D")
        by_division = capacity is not None and not capacity.empty and "isic_division" in products and \
            capacity["sector"].astype(str).str.fullmatch(r"\d{2}").mean() > 0.5
        column = "isic_division" if by_division else "sector"
        sector = products.dropna(subset=[column]).set_index("product")[column]
    return BaseTables(
        trade=touched.reset_index(drop=True),
        complexity=complexity,
        importer=importer_features(touched[touched["importer"].isin(members)], members),
        pairs=pair_features(view, members),
        capacity=capacity_features(capacity) if capacity is not None and not capacity.empty else None,
        geography=geography,
        product_sector=sector,
        bloc=members,
        pair_products=pair_product_table(touched, members),
        imports=view.imports,
    )


def lag_years(years: Collection[int], lags: Collection[int] = FEATURE_LAGS) -> set[int]:
    """The years the features of ``years`` read: each year and its ``lags`` (default :data:`FEATURE_LAGS`)."""
    return {int(y) - lag for y in years for lag in lags}


def _merge_prefixed(out: pd.DataFrame, table: pd.DataFrame, keys: dict[str, str], columns: list[str], prefix: str) -> pd.DataFrame:
    """Left-join ``columns`` of ``table`` on ``keys`` (out column → table column), prefixing names."""
    right = table[list(keys.values()) + columns].rename(columns={v: k for k, v in keys.items()})
    right = right.rename(columns={c: f"{prefix}{c}" for c in columns})
    return out.merge(right, on=list(keys), how="left")


def _product_features(out: pd.DataFrame, base: BaseTables) -> pd.DataFrame:
    product = base.complexity.drop_duplicates(["year", "product"])[["year", "product", "pci", "ubiquity"]]
    return out.merge(product, on=["year", "product"], how="left")


def capacity_columns(out: pd.DataFrame, base: BaseTables, role: str) -> pd.DataFrame:
    cols = [f"{role}_{c}" for c in CAPACITY]
    if base.capacity is None or base.product_sector is None:
        return out.assign(**{c: np.nan for c in cols})
    sector = out["product"].map(base.product_sector)
    keyed = out.assign(_sector=sector)
    right = base.capacity.rename(columns={"country": role, "sector": "_sector", **{c: f"{role}_{c}" for c in CAPACITY}})
    return keyed.merge(right[["year", role, "_sector", *cols]], on=["year", role, "_sector"], how="left").drop(columns="_sector")


def import_substitution_features(base: BaseTables, candidates: pd.DataFrame) -> pd.DataFrame:
    """Features for (year, importer, product, supplier) candidates.

    Columns: ``supplier_*`` exporter × product measures of the supplier, ``importer_*`` the
    importer's own export position and its imports, flow and pair features between them, product
    complexity, geography and both countries' capacity in the product's sector.
    """
    check_columns(candidates, ["year", "importer", "product", "supplier"], "candidates")
    out = candidates[["year", "importer", "product", "supplier"]].reset_index(drop=True)
    flows = flow_features(base.trade[base.trade["importer"].isin(base.bloc)],
                          out.rename(columns={"supplier": "exporter"}))
    out = out.merge(flows.rename(columns={"exporter": "supplier"}), on=["year", "importer", "product", "supplier"], how="left")
    out = _merge_prefixed(out, base.complexity, {"year": "year", "supplier": "exporter", "product": "product"}, EXPORTER_PRODUCT, "supplier_")
    out = _merge_prefixed(out, base.complexity, {"year": "year", "importer": "exporter", "product": "product"}, IMPORTER_EXPORTS, "importer_")
    out = _merge_prefixed(out, base.importer, {"year": "year", "importer": "importer", "product": "product"}, IMPORTER_PRODUCT, "importer_")
    out = _merge_prefixed(out, base.pairs, {"year": "year", "supplier": "exporter", "importer": "importer"}, PAIR, "")
    geo = geography_features(base.geography, out.rename(columns={"supplier": "exporter"}))
    out = out.merge(geo.rename(columns={"exporter": "supplier"}), on=["supplier", "importer"], how="left")
    out = _product_features(out, base)
    out = capacity_columns(out, base, "supplier")
    out = capacity_columns(out, base, "importer")
    return out


def pair_product_table(trade: pd.DataFrame, bloc: Collection[str]) -> pd.DataFrame:
    """Two-way trade within the bloc: one row per (year, partner_a < partner_b, product) with trade.

    ``T = X_{a→b,p} + X_{b→a,p}``, ``O = 2·min(X_{a→b,p}, X_{b→a,p})``, ``A = Σ_p T`` (the pair's
    total trade), ``two_way_share = O / A``, ``pair_share = T / A``, ``grubel_lloyd = O / T``.
    """
    members = set(bloc)
    t = trade[trade["exporter"].isin(members) & trade["importer"].isin(members)]
    a = np.where(t["exporter"] < t["importer"], t["exporter"], t["importer"])
    b = np.where(t["exporter"] < t["importer"], t["importer"], t["exporter"])
    forward = (t["exporter"] < t["importer"]).to_numpy()
    frame = pd.DataFrame({"year": t["year"].to_numpy(), "partner_a": a, "partner_b": b, "product": t["product"].to_numpy(),
                          "flow_value": np.where(forward, t["value_usd"], 0.0), "reverse_flow": np.where(forward, 0.0, t["value_usd"])})
    out = frame.groupby(["year", "partner_a", "partner_b", "product"], as_index=False, observed=True)[["flow_value", "reverse_flow"]].sum()
    out["two_way_trade"] = out["flow_value"] + out["reverse_flow"]
    out["matched_trade"] = matched_trade(out["flow_value"], out["reverse_flow"])
    out["pair_trade"] = out.groupby(["year", "partner_a", "partner_b"], observed=True)["two_way_trade"].transform("sum")
    out["two_way_share"] = out["matched_trade"] / out["pair_trade"]
    out["pair_share"] = out["two_way_trade"] / out["pair_trade"]
    out["grubel_lloyd"] = grubel_lloyd(out["flow_value"], out["reverse_flow"])
    return out


def joint_project_features(base: BaseTables, candidates: pd.DataFrame) -> pd.DataFrame:
    """Features for (year, partner_a, partner_b, product) candidates, partner_a < partner_b."""
    check_columns(candidates, ["year", "partner_a", "partner_b", "product"], "candidates")
    keys = ["year", "partner_a", "partner_b", "product"]
    out = candidates[keys].reset_index(drop=True)
    table = base.pair_products
    lag = table[keys + ["two_way_share"]].assign(year=table["year"] + 3).rename(columns={"two_way_share": "_lag"})
    out = out.merge(table[keys + [c for c in JOINT_PAIR_PRODUCT if c != "two_way_share_change_3y"] + ["pair_trade"]], on=keys, how="left")
    fill = ["two_way_trade", "matched_trade", "flow_value", "reverse_flow"]
    out[fill] = out[fill].fillna(0.0)
    out = out.merge(lag, on=keys, how="left")
    has_lag_year = out["year"].sub(3).isin(base.trade["year"].unique())
    out["two_way_share_change_3y"] = out["two_way_share"] - out["_lag"].where(~out["_lag"].isna() | ~has_lag_year, 0.0)
    out = out.drop(columns=["_lag", "pair_trade"])
    for role in ("partner_a", "partner_b"):
        out = _merge_prefixed(out, base.complexity, {"year": "year", role: "exporter", "product": "product"}, PARTNER, f"{role}_")
        out = _merge_prefixed(out, base.importer, {"year": "year", role: "importer", "product": "product"}, PARTNER_IMPORTS, f"{role}_")
    pairs = base.pairs
    out = _merge_prefixed(out, pairs, {"year": "year", "partner_a": "exporter", "partner_b": "importer"}, PAIR, "")
    out = _merge_prefixed(out, pairs.rename(columns={"complementarity": "reverse_complementarity"}),
                          {"year": "year", "partner_b": "exporter", "partner_a": "importer"}, ["reverse_complementarity"], "")
    geo = geography_features(base.geography, out.rename(columns={"partner_a": "exporter", "partner_b": "importer"}))
    out = out.merge(geo.rename(columns={"exporter": "partner_a", "importer": "partner_b"}), on=["partner_a", "partner_b"], how="left")
    out = _product_features(out, base)
    out = capacity_columns(out, base, "partner_a")
    out = capacity_columns(out, base, "partner_b")
    return out
