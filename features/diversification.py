"""New production capacities: which products a country does not yet export competitively, and what
predicts that it will (the product-progression problem of Hidalgo et al. 2007; Tacchella,
Zaccaria, Albora & Pietronero 2021–2023).

Pure functions over the world complexity table (:func:`features.complexity.compute_complexity`
with :func:`features.complexity.add_dynamics`), world imports and the flows that touch the bloc.
Every value of year t reads years ≤ t only.

* :func:`rca_panel` — RCA of every (country, product) in every year, 0 where a country that
  exports something that year does not export the product (a missing flow is 0).
* :func:`diversification_candidates` — (year, country, product) with RCA < ``ceiling`` (0.5) in
  each of t − 2, t − 1 and t: products the country has not started to export.
* :func:`diversification_features` — the candidate's RCA trajectory, relatedness and complexity,
  the country's exports and imports of the product, world demand, capacity, and the bloc's
  position in the product: its best member's RCA, how many members export it competitively, the
  bloc's imports of it from outside (the market a new capacity would serve), the country's trade
  with the members strong in it, and the member best placed to co-develop it (``partner``).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from features.columns import check_columns
from features.keys import KeyIndex, lookup, take

RCA_LAGS = (1, 2, 3, 5)
"""Years back of the RCA trajectory (t − 1 and t − 2 also define the candidates)."""
KEYS = ["year", "country", "product"]
CANDIDATE_WINDOW = (0, 1, 2)
"""A candidate's RCA is below the ceiling in each of t, t − 1 and t − 2."""


def rca_panel(complexity: pd.DataFrame) -> pd.DataFrame:
    """``year, exporter, product, rca`` of every year's full grid (the complexity table is one already)."""
    check_columns(complexity, ["year", "exporter", "product", "rca"], "complexity")
    return complexity[["year", "exporter", "product", "rca"]]


def _lagged(panel: pd.DataFrame, keys: pd.DataFrame, lag: int, index: KeyIndex | None = None) -> np.ndarray:
    """RCA of ``keys`` (year, country, product) at year − ``lag``: 0 when the year is in the panel but the
    country does not export the product (or nothing), NaN when the year is not in the panel.
    ``index``: the panel's :class:`~features.keys.KeyIndex` by (year, exporter, product), when built already."""
    index = index or KeyIndex(panel, ["year", "exporter", "product"])
    rows = index.rows(keys, KEYS, shift={"year": -lag})
    present = (keys["year"] - lag).isin(set(panel["year"].unique())).to_numpy()
    return np.where(present, np.nan_to_num(take(panel["rca"], rows), nan=0.0), np.nan)


def diversification_candidates(complexity: pd.DataFrame, years: Collection[int], *, ceiling: float = 0.5,
                               countries: Collection[str] | None = None) -> pd.DataFrame:
    """``year, country, product`` with RCA < ``ceiling`` in each of t − 2, t − 1 and t.

    Every country of year t's grid (or of ``countries``) and every product of that grid; a year
    whose two previous years are not in ``complexity`` has no candidates (their RCA is unknown).
    """
    panel = rca_panel(complexity)
    grid = panel[panel["year"].isin(list(years))]
    if countries is not None:
        grid = grid[grid["exporter"].isin(list(countries))]
    keys = grid.rename(columns={"exporter": "country"})[["year", "country", "product"]].reset_index(drop=True)
    keep = np.ones(len(keys), dtype=bool)
    index = KeyIndex(panel, ["year", "exporter", "product"])
    for lag in CANDIDATE_WINDOW:
        rca = _lagged(panel, keys, lag, index)
        keep &= np.nan_to_num(rca, nan=np.inf) < ceiling  # unknown years keep no candidate
    return keys[keep].reset_index(drop=True)


def _slope(columns: dict[int, np.ndarray]) -> np.ndarray:
    """Least-squares slope of RCA on time over the lags available in each row (NaN with fewer than two)."""
    lags = np.array(sorted(columns))
    values = np.column_stack([columns[k] for k in lags])
    t = -lags.astype(float)
    ok = np.isfinite(values)
    n = ok.sum(axis=1)
    tm = np.where(ok, t, 0.0).sum(axis=1) / np.maximum(n, 1)
    vm = np.where(ok, values, 0.0).sum(axis=1) / np.maximum(n, 1)
    dt = np.where(ok, t - tm[:, None], 0.0)
    cov = (dt * np.where(ok, values - vm[:, None], 0.0)).sum(axis=1)
    var = (dt**2).sum(axis=1)
    return np.where((n >= 2) & (var > 0), cov / np.where(var > 0, var, 1.0), np.nan)


def _bloc_position(complexity: pd.DataFrame, keys: pd.DataFrame, bloc: tuple[str, ...], flows: pd.DataFrame,
                   totals: pd.Series) -> pd.DataFrame:
    """Per candidate: the best other member's RCA, members (other than the country) with RCA ≥ 1, the
    country's trade with those members as a share of its total trade, and the best-placed partner.

    ``partner`` is the member m ≠ c with RCA[m,p,t] ≥ 1 that trades most with c (exports plus imports,
    all products, year t); ties go to the higher RCA. Empty when no other member is competitive.
    """
    out = pd.DataFrame(index=keys.index, columns=["bloc_best_rca", "bloc_competitive_members", "strong_member_intensity",
                                                  "partner_rca"], dtype=float)
    out["partner"] = ""
    members = list(bloc)
    for year, rows in keys.groupby("year", sort=True).groups.items():
        part = keys.loc[rows]
        rca = complexity[(complexity["year"] == year) & complexity["exporter"].isin(members)]
        wide = rca.pivot_table(index="exporter", columns="product", values="rca", aggfunc="first", observed=True)
        wide = wide.reindex(index=members).fillna(0.0)
        f = flows[(flows["year"] == year)]
        a = f[f["importer"].isin(members)].groupby(["exporter", "importer"], observed=True)["value_usd"].sum()
        b = f[f["exporter"].isin(members)].groupby(["importer", "exporter"], observed=True)["value_usd"].sum()
        a.index.names = b.index.names = ["country", "member"]
        pair = a.add(b, fill_value=0.0).unstack("member").reindex(columns=members).fillna(0.0)
        countries = pd.Index(part["country"].unique())
        pair = pair.reindex(countries).fillna(0.0)  # countries × members
        products = pd.Index(part["product"].unique())
        r = wide.reindex(columns=products).fillna(0.0).to_numpy()  # members × products
        ci = countries.get_indexer(part["country"])
        pi = products.get_indexer(part["product"])
        own = np.array([[m == c for m in members] for c in countries])  # a member is not its own partner
        # per row: the other members' RCA in the row's product
        other = r[:, pi].T.copy()  # rows × members
        other[own[ci]] = -np.inf
        strong = other >= 1.0
        best = other.max(axis=1) if members else np.full(len(part), np.nan)
        trade = pair.to_numpy()[ci]  # rows × members
        total = totals.reindex(pd.MultiIndex.from_arrays([np.full(len(countries), year), countries])).to_numpy()[ci]
        with np.errstate(invalid="ignore", divide="ignore"):
            intensity = np.where(strong, trade, 0.0).sum(axis=1) / total
        choice = np.where(strong, trade + 1e-9 * np.minimum(other, 1e6), -np.inf)
        pick = choice.argmax(axis=1)
        has = strong.any(axis=1)
        out.loc[rows, "bloc_best_rca"] = np.where(np.isfinite(best), best, np.nan)
        out.loc[rows, "bloc_competitive_members"] = strong.sum(axis=1).astype(float)
        out.loc[rows, "strong_member_intensity"] = np.where(total > 0, intensity, np.nan)
        out.loc[rows, "partner_rca"] = np.where(has, other[np.arange(len(part)), pick], np.nan)
        out.loc[rows, "partner"] = np.where(has, np.asarray(members, dtype=object)[pick], "")
    return out


def totals_of(complexity: pd.DataFrame) -> pd.Series:
    """Total exports X_c of each (year, country), all products."""
    return complexity.groupby(["year", "exporter"], observed=True)["export_value"].sum()


def bloc_market(importer: pd.DataFrame) -> pd.DataFrame:
    """``year, product, bloc_ext_imports``: the bloc's imports of each product from outside it, Σ_{j∈B} M^ext_jp."""
    check_columns(importer, ["year", "product", "ext_imports"], "importer features")
    return importer.groupby(["year", "product"], as_index=False, observed=True)["ext_imports"].sum().rename(
        columns={"ext_imports": "bloc_ext_imports"})


def world_demand(imports: pd.DataFrame) -> pd.DataFrame:
    """``year, product, world_imports, world_import_growth_3y``: world imports of each product and their
    3-year log growth ln(1 + M_pt) − ln(1 + M_p,t−3) (NaN without year t − 3)."""
    check_columns(imports, ["year", "product", "imports"], "imports")
    total = imports.groupby(["year", "product"], as_index=False, observed=True)["imports"].sum().rename(
        columns={"imports": "world_imports"})
    lag = total.assign(year=total["year"] + 3).rename(columns={"world_imports": "_lag"})
    out = total.merge(lag, on=["year", "product"], how="left")
    out["world_import_growth_3y"] = np.log1p(out["world_imports"]) - np.log1p(out["_lag"])
    return out.drop(columns="_lag")


COUNTRY_PRODUCT = ["rca", "export_value", "density", "distance", "cog", "export_growth_3y", "export_growth_5y",
                   "rca_change_3y"]
COUNTRY = ["eci", "coi", "diversity"]
INFO_COLUMNS = ("partner", "partner_rca", "market_usd")
"""What a recommendation shows beside its score; not features (``partner`` is a name)."""


def diversification_features(complexity: pd.DataFrame, imports: pd.DataFrame, flows: pd.DataFrame, importer: pd.DataFrame,
                             bloc: Collection[str], candidates: pd.DataFrame) -> pd.DataFrame:
    """Features of (year, country, product) candidates, and the :data:`INFO_COLUMNS`.

    ``complexity``: world complexity with dynamics; ``imports``: world imports (year, importer,
    product, imports); ``flows``: every flow touching the bloc; ``importer``: the bloc importers'
    features (for their extra-bloc imports).
    """
    check_columns(candidates, ["year", "country", "product"], "candidates")
    keys = candidates[KEYS].reset_index(drop=True)
    panel = rca_panel(complexity)
    grid = KeyIndex(complexity, ["year", "exporter", "product"])  # the panel's rows are the complexity table's
    out = {c: keys[c].to_numpy() for c in KEYS}
    out |= {f"country_{c}": v for c, v in lookup(keys, grid, KEYS, COUNTRY_PRODUCT, table=complexity).items()}
    lags = {0: out["country_rca"]}
    for lag in RCA_LAGS:
        lags[lag] = _lagged(panel, keys, lag, grid)
        if lag != 2:
            out[f"rca_lag{lag}"] = lags[lag]
    out["rca_slope"] = _slope(lags)
    country = complexity.drop_duplicates(["year", "exporter"])
    out |= {f"country_{c}": v for c, v in lookup(keys, country, ["year", "country"], COUNTRY, ["year", "exporter"]).items()}
    product = complexity.drop_duplicates(["year", "product"])
    out |= lookup(keys, product, ["year", "product"], ["pci", "ubiquity"])
    own = imports.rename(columns={"importer": "country", "imports": "country_imports"})
    by_country = KeyIndex(own, KEYS)
    out["country_imports"] = np.nan_to_num(lookup(keys, by_country, KEYS, ["country_imports"], table=own)["country_imports"], nan=0.0)
    earlier = lookup(keys, by_country, KEYS, ["country_imports"], table=own, shift={"year": -3})["country_imports"]
    has3 = (keys["year"] - 3).isin(set(imports["year"].unique())).to_numpy()
    out["country_import_growth_3y"] = np.where(has3, np.log1p(out["country_imports"]) - np.log1p(np.nan_to_num(earlier, nan=0.0)), np.nan)
    out |= lookup(keys, world_demand(imports), ["year", "product"], ["world_import_growth_3y"])
    out["bloc_ext_imports"] = np.nan_to_num(lookup(keys, bloc_market(importer), ["year", "product"], ["bloc_ext_imports"])["bloc_ext_imports"], nan=0.0)
    out = pd.DataFrame(out)
    exports_total = totals_of(complexity)
    totals = exports_total.add(imports.groupby(["year", "importer"], observed=True)["imports"].sum()
                               .rename_axis(["year", "exporter"]), fill_value=0.0)  # exports + imports of each country
    position = _bloc_position(complexity, keys, tuple(sorted(set(bloc))), flows, totals)
    out = pd.concat([out, position], axis=1)
    out["country_exports_total"] = exports_total.reindex(
        pd.MultiIndex.from_arrays([out["year"], out["country"]])).to_numpy()
    out["market_usd"] = out["bloc_ext_imports"]
    return out
