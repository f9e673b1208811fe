import numpy as np
import pandas as pd

from recommender.bank.synthetic import WorldSpec, generate_world


def test_same_seed_same_world_other_seed_other_world():
    a = generate_world(WorldSpec.tiny(seed=3)).trade
    b = generate_world(WorldSpec.tiny(seed=3)).trade
    c = generate_world(WorldSpec.tiny(seed=4)).trade
    pd.testing.assert_frame_equal(a, b)
    assert not a["value_usd"].equals(c["value_usd"])


def test_trade_table_is_well_formed(tiny_world):
    t = tiny_world.trade
    spec = tiny_world.spec
    assert list(t.columns) == ["year", "exporter", "importer", "product", "value_usd", "quantity"]
    assert sorted(t["year"].unique()) == spec.years
    assert (t["value_usd"] >= spec.min_flow_usd).all()
    assert (t["exporter"] != t["importer"]).all()
    assert not t.duplicated(["year", "exporter", "importer", "product"]).any()
    assert t["product"].str.fullmatch(r"\d{6}").all()
    assert set(tiny_world.countries["iso3"][:10]) == {"CHN", "RUS", "IND", "IRN", "PAK", "KAZ", "KGZ", "TJK", "UZB", "BLR"}


def test_capabilities_are_acquired_near_existing_ones(tiny_world):
    """Newly acquired capabilities have more held ring neighbours than missing ones that stay missing."""
    caps = tiny_world.capabilities
    k = caps.shape[2]
    ring = np.arange(k)
    d = np.abs(ring[:, None] - ring[None, :]) % k
    neighbour = (np.minimum(d, k - d) <= 2) & ~np.eye(k, dtype=bool)
    near_new, near_stay = [], []
    for t in range(1, caps.shape[0]):
        held = caps[t - 1]
        near = held.astype(float) @ neighbour.astype(float) / neighbour.sum(axis=1)
        new = ~held & caps[t]
        stay = ~held & ~caps[t]
        near_new.append(near[new])
        near_stay.append(near[stay])
    assert np.concatenate(near_new).mean() > 1.5 * np.concatenate(near_stay).mean()
    assert caps[-1].sum() > caps[0].sum()  # countries diversify over time


def test_exports_follow_capabilities_and_gravity(tiny_world):
    t = tiny_world.trade
    first = t[t["year"] == tiny_world.spec.years[0]]
    exports = first.groupby(["exporter", "product"])["value_usd"].sum()
    iso = tiny_world.countries["iso3"].tolist()
    codes = tiny_world.products["product"].tolist()
    missing = pd.DataFrame(tiny_world.missing(0), index=iso, columns=codes).stack()
    joined = pd.concat([exports.rename("x"), missing.rename("missing")], axis=1).fillna({"x": 0})
    by_missing = joined.groupby("missing")["x"].mean()
    assert by_missing.iloc[0] > 10 * by_missing.iloc[-1]
    # gravity: log flow falls with log distance, holding exporter-product and importer fixed effects roughly
    geo = tiny_world.geography().rename(columns={"iso3_a": "exporter", "iso3_b": "importer"})
    pair = first.groupby(["exporter", "importer"])["value_usd"].sum().reset_index().merge(geo)
    slope = np.polyfit(np.log(pair["dist_km"]), np.log(pair["value_usd"]), 1)[0]
    assert slope < -0.3


def test_capacity_is_consistent_with_exports(tiny_world):
    cap = tiny_world.capacity()
    va = cap[(cap["indicator"] == "value_added") & (cap["sector"] == "D")]
    t = tiny_world.trade
    manuf = t[~t["product"].str[:2].isin(["01", "03", "05", "06", "07", "08", "09", "10", "12", "13", "14", "25", "26", "27"])]
    exports = manuf.groupby(["year", "exporter"])["value_usd"].sum().rename("x").reset_index()
    merged = va.merge(exports, left_on=["year", "country"], right_on=["year", "exporter"])
    assert np.corrcoef(np.log(merged["value"]), np.log(merged["x"]))[0, 1] > 0.7
    assert (cap["value"] > 0).all()


def test_baci_scale_spec():
    spec = WorldSpec.baci()
    assert (spec.n_countries, spec.n_products, spec.n_years) == (200, 5000, 25)
