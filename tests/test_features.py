"""Feature families: hand-computed values, agreement with ecomplexity, point-in-time."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from features.assemble import (
    build_base,
    import_substitution_features,
    joint_project_features,
    pair_product_table,
)
from features.bilateral import flow_features, pair_features
from features.capacity import capacity_features
from features.complexity import add_dynamics, complexity_matrices, compute_complexity
from features.errors import FeatureError
from features.importer import importer_features
from features.registry import FEATURES, describe, reason, resolve
from features.sectors import product_sectors
from features.trade import aggregate_products, world_exports


def flows(rows):
    return pd.DataFrame(rows, columns=["year", "exporter", "importer", "product", "value_usd"])


# ---- complexity ---------------------------------------------------------------------------
def test_rca_and_density_by_hand():
    x = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    m = complexity_matrices(x)
    # total 7; product totals 2, 3, 2; country totals 2, 2, 1, 2
    assert m["rca"][0, 0] == pytest.approx((1 / 2) / (2 / 7))
    assert m["rca"][1, 1] == pytest.approx((2 / 2) / (3 / 7))
    mcp = (m["rca"] >= 1).astype(int)
    assert (m["mcp"] == mcp).all()
    ubiquity = mcp.sum(axis=0)
    co = mcp.T @ mcp
    phi = np.minimum(co / ubiquity[None, :], (co / ubiquity[None, :]).T)
    assert m["proximity"][0, 2] == pytest.approx(co[0, 2] / max(ubiquity[0], ubiquity[2]))
    for c in range(4):
        for p in range(3):
            assert m["density"][c, p] == pytest.approx((mcp[c] * phi[p]).sum() / phi[p].sum())
    assert np.allclose(m["distance"], 1 - m["density"])
    assert m["eci"][:, 0].mean() == pytest.approx(0) and m["eci"][:, 0].std() == pytest.approx(1)


def test_compute_complexity_grid_and_docstring_example():
    df = pd.DataFrame({"year": 2000, "exporter": ["A", "A", "B", "C"], "product": ["x", "y", "y", "z"], "value": [1.0, 1, 2, 1]})
    out = compute_complexity(df)
    assert len(out) == 9  # full 3 × 3 grid
    assert out.set_index(["exporter", "product"]).loc[("A", "x"), "rca"] == pytest.approx(2.5)
    assert out.set_index(["exporter", "product"]).loc[("B", "x"), "export_value"] == 0
    with pytest.raises(FeatureError, match=r"column\(s\) \['value'\] missing from exports frame"):
        compute_complexity(df.drop(columns="value"))


def _ecomplexity(exports):
    from ecomplexity import ecomplexity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ecomplexity(exports, {"time": "year", "loc": "exporter", "prod": "product", "val": "value"},
                           verbose=False, check_logsupermodularity=False)


def _assert_matches_reference(exports):
    ours = compute_complexity(exports)
    ref = _ecomplexity(exports)
    ref = ref[ref["diversity"].notna()]
    merged = ours.merge(ref, on=["year", "exporter", "product"], suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == len(ours) == len(ref)
    for col in ["rca", "mcp", "diversity", "ubiquity", "eci", "pci", "density", "coi", "cog"]:
        np.testing.assert_allclose(merged[col].astype(float), merged[f"{col}_ref"].astype(float), rtol=1e-6, atol=1e-9, err_msg=col)


def test_matches_ecomplexity_on_synthetic_world(tiny_world):
    exports = world_exports(tiny_world.trade)
    _assert_matches_reference(exports[exports["year"].isin(tiny_world.spec.years[:4])])


@pytest.mark.real_data
def test_matches_ecomplexity_on_real_sitc4(real_data):
    d = pd.read_parquet(real_data / "exports_sitc4_avg_1998_2000.parquet")
    exports = d.rename(columns={"iso3": "exporter", "sitc4": "product", "export_value_usd": "value"}).assign(year=2000)
    _assert_matches_reference(exports)


def test_dynamics_by_hand():
    rows = [(y, "A", "x", v) for y, v in [(2000, 10.0), (2003, 30.0), (2005, 100.0)]] + [(y, "B", "x", 5.0) for y in (2000, 2003, 2005)]
    rows += [(y, c, "y", 7.0) for y in (2000, 2003, 2005) for c in ("A", "B")]
    cx = add_dynamics(compute_complexity(pd.DataFrame(rows, columns=["year", "exporter", "product", "value"])))
    a = cx[(cx["exporter"] == "A") & (cx["product"] == "x")].set_index("year")
    assert a.loc[2003, "export_growth_3y"] == pytest.approx(np.log1p(30) - np.log1p(10))
    assert a.loc[2005, "export_growth_5y"] == pytest.approx(np.log1p(100) - np.log1p(10))
    assert np.isnan(a.loc[2005, "export_growth_3y"])  # 2002 not in the data
    assert a.loc[2003, "rca_change_3y"] == pytest.approx(a.loc[2003, "rca"] - a.loc[2000, "rca"])


# ---- importer, bilateral, capacity ----------------------------------------------------------
def test_importer_features_by_hand():
    t = flows([(2010, "KAZ", "UZB", "01", 30.0), (2010, "USA", "UZB", "01", 50.0), (2010, "DEU", "UZB", "01", 20.0),
               (2007, "USA", "UZB", "01", 10.0)])
    out = importer_features(t, ["KAZ", "UZB"]).set_index(["year", "importer", "product"]).loc[(2010, "UZB", "01")]
    assert out["imports"] == 100 and out["ext_imports"] == 70
    assert out["ext_share"] == pytest.approx(0.7) and out["bloc_share"] == pytest.approx(0.3)
    assert out["supplier_hhi"] == pytest.approx(0.3**2 + 0.5**2 + 0.2**2) and out["n_suppliers"] == 3
    assert out["import_growth_3y"] == pytest.approx(np.log1p(100) - np.log1p(10))


def test_flow_features_by_hand():
    t = flows([(2010, "KAZ", "UZB", "01", 30.0), (2010, "USA", "UZB", "01", 70.0), (2010, "UZB", "KAZ", "01", 10.0),
               (2007, "KAZ", "UZB", "01", 5.0), (2007, "USA", "UZB", "01", 45.0)])
    cand = pd.DataFrame({"year": [2010], "exporter": ["KAZ"], "importer": ["UZB"], "product": ["01"]})
    out = flow_features(t, cand).iloc[0]
    assert out["flow_value"] == 30 and out["reverse_flow"] == 10
    assert out["supplier_share"] == pytest.approx(0.3) and out["supplier_share_lag3"] == pytest.approx(0.1)
    assert out["supplier_share_change_3y"] == pytest.approx(0.2)
    assert out["grubel_lloyd"] == pytest.approx(1 - 20 / 40) and out["matched_trade"] == 20


def test_pair_features_by_hand():
    t = flows([(2010, "A", "B", "x", 10.0), (2010, "A", "C", "y", 30.0), (2010, "B", "A", "y", 20.0), (2010, "C", "A", "x", 40.0)])
    out = pair_features(t, ["A", "B"]).set_index(["exporter", "importer"])
    ab = out.loc[("A", "B")]
    assert ab["bilateral_exports"] == 10 and ab["bilateral_trade"] == 30
    # TII = (x_AB / X_A) / (M_B / M_w) = (10/40) / (10/100)
    assert ab["trade_intensity"] == pytest.approx(2.5)
    # A exports x:0.25 y:0.75; B imports x:1.0 → TCI = 1 − ½(0.75 + 0.75)
    assert ab["complementarity"] == pytest.approx(0.25)


def test_capacity_features_by_hand():
    cap = pd.DataFrame({"year": [2005, 2010, 2010, 2010, 2010], "country": ["KAZ"] * 5,
                        "sector": ["D", "D", "TOTAL", "TOTAL", "A-B"],
                        "indicator": ["value_added", "value_added", "gdp", "rnna", "value_added"],
                        "value": [10.0, 20.0, 200.0, 3.0, 5.0]})
    out = capacity_features(cap).set_index(["year", "sector"])
    assert out.loc[(2010, "D"), "va_share_gdp"] == pytest.approx(0.1)
    assert out.loc[(2010, "D"), "va_growth_5y"] == pytest.approx(np.log(2))
    assert out.loc[(2010, "D"), "capital_stock"] == 3.0e6  # PWT rnna is in millions of 2017 USD
    assert np.isnan(out.loc[(2010, "A-B"), "va_growth_5y"]) and np.isnan(out.loc[(2010, "D"), "employment"])


def test_aggregate_products_levels():
    t = flows([(2010, "A", "B", "010121", 1.0), (2010, "A", "B", "010129", 2.0), (2010, "A", "B", "020110", 4.0)])
    four = aggregate_products(t, 4)
    assert four.set_index("product")["value_usd"].to_dict() == {"0101": 3.0, "0201": 4.0}
    assert aggregate_products(t, 2)["value_usd"].sum() == 7.0
    with pytest.raises(FeatureError, match="finer"):
        aggregate_products(four, 6)


def test_pair_product_table_two_way_trade():
    t = flows([(2010, "UZB", "KAZ", "x", 10.0), (2010, "KAZ", "UZB", "x", 4.0), (2010, "KAZ", "UZB", "y", 6.0)])
    out = pair_product_table(t, ["KAZ", "UZB"]).set_index("product")
    assert (out["partner_a"] == "KAZ").all()
    assert out.loc["x", "two_way_trade"] == 14 and out.loc["x", "matched_trade"] == 8
    assert out.loc["x", "two_way_share"] == pytest.approx(8 / 20) and out.loc["y", "pair_share"] == pytest.approx(6 / 20)


# ---- registry ---------------------------------------------------------------------------------
def test_registry_resolves_roles_and_renders_reasons():
    assert resolve("supplier_rca") == (FEATURES["rca"], "supplier")
    assert resolve("importer_supplier_hhi") == (FEATURES["supplier_hhi"], "importer")
    assert resolve("supplier_share") == (FEATURES["supplier_share"], None)
    assert reason("importer_ext_imports", 2.1e9, {"importer": "Kazakhstan"}) == "Kazakhstan imports $2.1bn of this from outside the bloc"
    with pytest.raises(KeyError):
        resolve("made_up_feature")


# ---- assembly and point-in-time -----------------------------------------------------------------
SCO = ["CHN", "RUS", "IND", "IRN", "PAK", "KAZ", "KGZ", "TJK", "UZB", "BLR"]


def _is_candidates(base, year):
    imp = base.importer[(base.importer["year"] == year) & (base.importer["ext_imports"] > 0)][["year", "importer", "product"]]
    cand = imp.merge(pd.DataFrame({"supplier": SCO}), how="cross")
    return cand[cand["supplier"] != cand["importer"]]


def _jp_candidates(base, year):
    table = base.pair_products
    return table[table["year"] == year][["year", "partner_a", "partner_b", "product"]]


def _build(world, trade, until):
    return build_base(trade, SCO, until=until, capacity=world.capacity(),
                      products=product_sectors(world.products["product"]))


def test_every_assembled_column_is_registered(tiny_world):
    base = _build(tiny_world, tiny_world.trade, None)
    year = tiny_world.spec.years[-1]
    a = import_substitution_features(base, _is_candidates(base, year))
    b = joint_project_features(base, _jp_candidates(base, year))
    for frame, keys in ((a, 4), (b, 4)):
        rows = describe(list(frame.columns[keys:]))
        assert len(rows) == frame.shape[1] - keys


def test_features_at_t_ignore_the_future_and_use_year_t(tiny_world):
    trade = tiny_world.trade
    t = tiny_world.spec.years[6]
    base = _build(tiny_world, trade, t)
    is_cand, jp_cand = _is_candidates(base, t), _jp_candidates(base, t)
    is_ref = import_substitution_features(base, is_cand)
    jp_ref = joint_project_features(base, jp_cand)

    rng = np.random.default_rng(0)
    future = trade["year"] > t
    scrambled = trade.copy()
    scrambled.loc[future, "value_usd"] = rng.permutation(scrambled.loc[future, "value_usd"].to_numpy()) * 3
    for perturbed in (scrambled, trade[~future]):
        base2 = _build(tiny_world, perturbed, t)
        pd.testing.assert_frame_equal(import_substitution_features(base2, is_cand), is_ref)
        pd.testing.assert_frame_equal(joint_project_features(base2, jp_cand), jp_ref)

    # without `until`, features at t still only look back: the full-data build agrees at t
    full = _build(tiny_world, scrambled, None)
    pd.testing.assert_frame_equal(import_substitution_features(full, is_cand), is_ref)

    # and year t itself is used: changing year-t flows changes features at t
    changed = trade.copy()
    at_t = changed["year"] == t
    changed.loc[at_t, "value_usd"] = changed.loc[at_t, "value_usd"] * rng.uniform(0.5, 2.0, at_t.sum())
    base3 = _build(tiny_world, changed, t)
    diff = import_substitution_features(base3, is_cand)
    assert not np.allclose(diff["supplier_rca"], is_ref["supplier_rca"])
    assert not np.allclose(diff["importer_imports"], is_ref["importer_imports"])


def test_generated_feature_docs_are_current():
    from pathlib import Path

    from docs.generate import render

    assert (Path(__file__).parents[1] / "docs" / "features.md").read_text() == render(), "run: python -m docs.generate"


def test_capacity_by_isic_division_joins_indstat_style_data():
    t = flows([(2010, "KAZ", "UZB", "281000", 5e6), (2010, "USA", "UZB", "281000", 9e6)])
    cap = pd.DataFrame({"year": [2010, 2010], "country": ["KAZ", "UZB"], "sector": ["24", "24"],
                        "indicator": ["value_added", "value_added"], "value": [1e9, 2e8]})
    base = build_base(t, ["KAZ", "UZB"], capacity=cap, products=product_sectors(t["product"]))
    cand = pd.DataFrame({"year": [2010], "importer": ["UZB"], "product": ["281000"], "supplier": ["KAZ"]})
    row = import_substitution_features(base, cand).iloc[0]
    assert row["supplier_va_sector"] == 1e9 and row["importer_va_sector"] == 2e8  # chapter 28 → ISIC division 24


def test_proximity_edge_list_matches_ecomplexity(tiny_world):
    from ecomplexity import proximity as reference

    from features.complexity import proximity

    year = tiny_world.spec.years[2]
    exports = world_exports(tiny_world.trade)
    ours = proximity(exports, year)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference(exports[exports["year"] == year], {"time": "year", "loc": "exporter", "prod": "product", "val": "value"})
    ref = ref.rename(columns={"prod1": "product_1", "prod2": "product_2", "proximity": "ref"})
    merged = ours.merge(ref, on=["product_1", "product_2"])
    assert len(merged) == len(ours) > 0
    np.testing.assert_allclose(merged["proximity"], merged["ref"], rtol=1e-9)


def test_capacity_without_pwt_gives_numeric_missing_columns():
    from features.capacity import capacity_features

    va_only = pd.DataFrame({"year": [2010, 2010], "country": ["KAZ", "KAZ"], "sector": ["D", "TOTAL"],
                            "indicator": ["value_added", "gdp"], "value": [5.0, 50.0]})
    out = capacity_features(va_only)
    assert out["capital_stock"].isna().all() and out["employment"].isna().all()
    assert out[["va_sector", "gdp", "va_share_gdp", "capital_stock", "employment"]].dtypes.map(lambda d: d.kind == "f").all()
