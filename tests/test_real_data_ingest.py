"""The real sample in ../shared/data ingests end to end (skipped when RECOMMENDER_REAL_DATA is unset)."""

from __future__ import annotations

import pandas as pd
import pytest

from recommender.bank import summary
from recommender.bank.ingest import ingest_capacity, ingest_geography, ingest_trade

pytestmark = pytest.mark.real_data


def test_real_sample_ingests_end_to_end(bank, real_data):
    trade_path = real_data / "trade_sections_1995_2014.parquet"
    result = ingest_trade(bank, trade_path, product_column="section_code")
    src = pd.read_parquet(trade_path, columns=["year", "exporter", "importer", "value_usd"])
    self_flows = src["exporter"] == src["importer"]
    assert result.source["rows"] == int((~self_flows).sum())
    assert result.dropped["self-flows (exporter = importer)"] == int(self_flows.sum())
    assert result.source["classification"] == "hs-section" and result.source["product_level"] == 2
    info = summary(bank)
    expected = src[~self_flows].groupby("year")["value_usd"].sum()
    assert info["trade"]["years"] == list(range(1995, 2015))
    for year, value in expected.items():
        assert info["trade"]["value_usd_by_year"][str(year)] == pytest.approx(value, rel=1e-9)
    assert info["trade"]["products"] == 22
    assert "ROU" in set(bank.read("trade", years=[1995])["exporter"])  # ROM mapped

    va = ingest_capacity(bank, real_data / "value_added_1995_2014.parquet", columns={"country": "iso3", "value": "value_usd"})
    pwt = ingest_capacity(bank, real_data / "pwt_1995_2014.parquet", columns={"country": "iso3"})
    assert va.source["rows"] == len(pd.read_parquet(real_data / "value_added_1995_2014.parquet"))
    assert {"rkna", "emp", "rgdpna"} <= set(pwt.source["indicators"])
    cap = bank.read("capacity")
    manuf = cap[(cap["sector"] == "D") & (cap["indicator"] == "value_added") & (cap["country"] == "CHN")]
    raw = pd.read_parquet(real_data / "value_added_1995_2014.parquet")
    raw_manuf = raw[(raw["iso3"] == "CHN") & (raw["indicator"] == "Manufacturing (ISIC D)")]
    assert sorted(manuf["year"]) == sorted(raw_manuf["year"]) and len(manuf) >= 10
    assert manuf["value"].sum() == pytest.approx(raw_manuf["value_usd"].sum())
    geo = ingest_geography(bank, real_data / "distances.parquet")
    assert geo.source["rows"] == 22_791
    sco = {"CHN", "RUS", "IND", "IRN", "PAK", "KAZ", "KGZ", "TJK", "UZB", "BLR"}
    assert sco <= set(bank.read("trade", years=[2014])["exporter"])
