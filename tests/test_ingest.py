"""Ingest: every format round-trips, every bad file is rejected with a clear message and an untouched bank."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recommender.bank import DataBank, summary
from recommender.bank.ingest import ingest_capacity, ingest_geography, ingest_trade
from recommender.bank.synthetic import write_baci
from recommender.errors import BankConflictError, DataValidationError, RecommenderError
from tests.conftest import bank_state


def _trade_csv(tmp_path, rows, name="trade.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["year", "exporter", "importer", "product", "value_usd"]).to_csv(path, index=False)
    return path


GOOD = [(2010, "KAZ", "CHN", "0601", 10.0), (2010, "CHN", "KAZ", "8703", 5.5), (2011, "ROM", "RUS", "0601", 3.0)]


def test_long_parquet_round_trip_keeps_totals(bank, tiny_world, tiny_files):
    result = ingest_trade(bank, tiny_files["trade"])
    src = tiny_world.trade
    assert result.source["rows"] == len(src)
    back = bank.read("trade")
    assert len(back) == len(src)
    assert back["value_usd"].sum() == pytest.approx(src["value_usd"].sum(), rel=1e-12)
    by_year = back.groupby("year")["value_usd"].sum()
    assert by_year.to_dict() == pytest.approx(src.groupby("year")["value_usd"].sum().to_dict(), rel=1e-12)
    info = summary(bank)
    assert info["trade"]["years"] == tiny_world.spec.years
    assert info["trade"]["value_usd_by_year"][str(tiny_world.spec.years[0])] == pytest.approx(by_year.iloc[0])
    assert result.source["product_level"] == 6 and result.source["classification"] == "hs"
    products = bank.read("products")
    assert set(products["product"]) == set(src["product"]) and products["classification"].eq("hs").all()
    assert list(products.columns) == ["product", "classification"]  # sectors come from code, not the bank


def test_year_files_keep_dictionaries_for_codes_only(bank, tiny_files):
    """A dictionary over every trade value cost more CPU than parsing the CSV (README, Benchmarks): the
    year files encode the codes with dictionaries and store the floats byte-stream-split."""
    import pyarrow.parquet as pq

    ingest_trade(bank, tiny_files["trade"])
    files = bank.files("trade")
    assert files
    for path in files:
        row_group = pq.ParquetFile(path).metadata.row_group(0)
        encodings = {row_group.column(i).path_in_schema: set(row_group.column(i).encodings)
                     for i in range(row_group.num_columns)}
        for code in ("exporter", "importer", "product"):
            assert "RLE_DICTIONARY" in encodings[code], (code, encodings[code])
        for value in ("value_usd", "quantity"):
            assert "BYTE_STREAM_SPLIT" in encodings[value] and not encodings[value] & {"RLE_DICTIONARY", "PLAIN_DICTIONARY"}


def test_codes_stay_strings_with_leading_zeros(bank, tmp_path):
    ingest_trade(bank, _trade_csv(tmp_path, GOOD))
    back = bank.read("trade").sort_values(["year", "exporter"])
    assert set(back["product"]) == {"0601", "8703"}
    assert "ROU" in set(back["exporter"])  # alias ROM → ROU


def test_baci_format_converts_units_and_codes(bank, tmp_path):
    csv = tmp_path / "BACI_Y2015.csv"
    csv.write_text("t,i,j,k,v,q\n2015,398,156,10121,12.5,           NA\n2015,156,398,870323,1000,3.25\n2015,842,699,90111,1,\n")
    result = ingest_trade(bank, csv, format="baci")
    back = bank.read("trade").sort_values("value_usd").reset_index(drop=True)
    assert back["value_usd"].tolist() == [1000.0, 12500.0, 1_000_000.0]
    assert back["product"].tolist() == ["090111", "010121", "870323"]
    assert back[["exporter", "importer"]].values.tolist() == [["USA", "IND"], ["KAZ", "CHN"], ["CHN", "KAZ"]]
    assert np.isnan(back["quantity"][1]) and back["quantity"][2] == 3.25
    assert result.source["years"] == [2015]


def test_baci_country_codes_file_is_used(bank, tmp_path):
    codes = tmp_path / "country_codes.csv"
    codes.write_text("country_code,country_name,country_iso2,country_iso3\n901,Testland,TL,KGZ\n")
    csv = tmp_path / "b.csv"
    csv.write_text("t,i,j,k,v,q\n2015,901,156,010121,1,1\n")
    ingest_trade(bank, csv, format="baci", country_codes=codes)
    assert bank.read("trade")["exporter"].tolist() == ["KGZ"]


def test_baci_codes_naming_one_country_share_one_dictionary_entry(bank, tmp_path):
    """France is 250 and 251 in BACI, the United States 840 and 842: the validated batches list each
    country once in their dictionaries (Parquet writes a dictionary with repeated entries as plain
    strings, at 3x the CPU)."""
    from recommender.bank.ingest import baci
    from recommender.bank.ingest.validate import TradeValidator

    csv = tmp_path / "b.csv"
    csv.write_text("t,i,j,k,v,q\n2015,250,156,10121,1,1\n2015,251,398,10121,2,1\n2015,840,156,10121,3,1\n2015,842,398,10121,4,1\n")
    checked = TradeValidator().check(next(baci.read_baci(csv, dropped={})), 0)
    for column in ("exporter", "importer", "product"):
        entries = checked.column(column).chunk(0).dictionary.to_pylist()
        assert len(set(entries)) == len(entries), (column, entries)
    assert checked.column("exporter").to_pylist() == ["FRA", "FRA", "USA", "USA"]
    ingest_trade(bank, csv, format="baci")
    assert bank.read("trade").sort_values("value_usd")["exporter"].tolist() == ["FRA", "FRA", "USA", "USA"]


def test_synthetic_baci_files_round_trip(bank, tiny_world, tmp_path):
    paths = write_baci(tiny_world, tmp_path / "baci", max_rows=1)
    year, path = next(iter(paths.items()))
    ingest_trade(bank, path, format="baci")
    back = bank.read("trade")
    src = tiny_world.trade[tiny_world.trade["year"] == year]
    assert len(back) == len(src)
    assert back["value_usd"].sum() == pytest.approx(src["value_usd"].sum(), rel=1e-6)
    assert set(back["product"]) == set(src["product"])


def test_baci_whole_file_and_streamed_reads_agree(tiny_world, tmp_path, monkeypatch):
    """A year's CSV is parsed in one multi-threaded read, a larger file in streamed blocks: the same rows."""
    from recommender.bank.ingest import baci

    path = next(iter(write_baci(tiny_world, tmp_path / "baci", max_rows=1).values()))
    whole = pa.concat_tables(baci.read_baci(path, dropped={}))
    monkeypatch.setattr(baci, "WHOLE_FILE_BYTES", 0)
    streamed = pa.concat_tables(baci.read_baci(path, dropped={}, block_size=1 << 14))

    def plain(t: pa.Table) -> pa.Table:  # each block has its own dictionaries: compare the values
        return pa.table({n: c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for n, c in zip(t.column_names, t.columns, strict=True)})

    assert streamed.num_rows == whole.num_rows > 0 and len(streamed.to_batches()) > len(whole.to_batches())
    assert plain(streamed).equals(plain(whole))


def test_comtrade_keeps_exports_and_drops_aggregates(bank, tmp_path):
    path = tmp_path / "comtrade.csv"
    pd.DataFrame({
        "refYear": [2018, 2018, 2018, 2018, 2018],
        "flowCode": ["X", "X", "M", "X", "X"],
        "reporterISO": ["KAZ", "KAZ", "KAZ", "KAZ", "UZB"],
        "partnerISO": ["CHN", "W00", "CHN", "_X", "RUS"],
        "cmdCode": ["270900", "270900", "870323", "270900", "520100"],
        "primaryValue": [100.0, 150.0, 7.0, 50.0, 30.0],
    }).to_csv(path, index=False)
    result = ingest_trade(bank, path, format="comtrade")
    back = bank.read("trade").sort_values("value_usd")
    assert back[["exporter", "importer", "product", "value_usd"]].values.tolist() == [
        ["UZB", "RUS", "520100", 30.0], ["KAZ", "CHN", "270900", 100.0]]
    assert result.dropped["partner aggregates (World, areas n.e.s.)"] == 2
    assert result.dropped["non-export flows"] == 1


def test_capacity_long_wide_and_indicator_names(bank, tmp_path):
    long = tmp_path / "va.csv"
    pd.DataFrame({"iso3": ["KAZ", "KAZ", "UZB"], "country": ["Kazakhstan"] * 2 + ["Uzbekistan"], "year": [2010] * 3,
                  "indicator": ["Manufacturing (ISIC D)", "Gross Domestic Product (GDP)", "Changes in inventories"],
                  "value_usd": [5.0, 100.0, -2.0]}).to_csv(long, index=False)
    ingest_capacity(bank, long, columns={"country": "iso3", "value": "value_usd"})
    wide = tmp_path / "pwt.csv"
    pd.DataFrame({"iso3": ["KAZ", "UZB"], "year": [2010, 2010], "rkna": [1.5, None], "emp": [8.0, 12.0]}).to_csv(wide, index=False)
    result = ingest_capacity(bank, wide, columns={"country": "iso3"})
    assert result.dropped == {"empty cells of the wide table (not reported)": 1}
    cap = bank.read("capacity").set_index(["country", "sector", "indicator"])["value"].sort_index()
    assert cap[("KAZ", "D", "value_added")] == 5.0
    assert cap[("KAZ", "TOTAL", "gdp")] == 100.0
    assert cap[("UZB", "TOTAL", "changes_in_inventories")] == -2.0  # negatives allowed where meaningful
    assert cap[("KAZ", "TOTAL", "rkna")] == 1.5 and ("UZB", "TOTAL", "rkna") not in cap.index


def test_indstat_numeric_countries(bank, tmp_path):
    path = tmp_path / "indstat.csv"
    pd.DataFrame({"ctable": ["20", "04"], "country": ["398", "398"], "year": [2012, 2012], "isic": ["24", "24"],
                  "value": [1.0e9, 5000]}).to_csv(path, index=False)
    ingest_capacity(bank, path, format="indstat")
    cap = bank.read("capacity").set_index("indicator")
    assert cap.loc["value_added", "country"] == "KAZ" and cap.loc["employees", "sector"] == "24"


def test_geography(bank, tiny_files):
    ingest_geography(bank, tiny_files["geography"])
    geo = bank.read("geography")
    assert {"exporter", "importer", "distance_km", "contiguous", "common_language"} <= set(geo.columns)
    assert (geo["distance_km"] > 0).all()

def _duplicates(batches) -> list[int]:
    """Rows the validator reports as duplicate keys, fed ``batches`` in order (whether it had to sort is kept)."""
    from recommender.bank.ingest.validate import TradeValidator

    validator, offset = TradeValidator(), 0
    for batch in batches:
        validator.check(batch, offset)
        offset += batch.num_rows
    found = [p for p in validator.finish() if p.reason.startswith("duplicate key")]
    _duplicates.sorted = not validator._ascending
    return list(found[0].rows) if found else []


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_baci_duplicate_rows_are_found_in_sorted_and_shuffled_files(tiny_world, tmp_path, order):
    """Keys of a sorted BACI file ascend, so its duplicate check needs no sort; a repeated row is found
    either way, in a file read in many blocks, and reported by its row number."""
    from recommender.bank.ingest import baci

    path = next(iter(write_baci(tiny_world, tmp_path / "baci", max_rows=1).values()))
    header, *lines = path.read_text().splitlines()
    if order == "shuffled":
        lines = [lines[i] for i in np.random.default_rng(0).permutation(len(lines))]
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([header, *lines]) + "\n")
    assert len(list(baci.read_baci(clean, dropped={}, block_size=1 << 12))) > 3
    assert _duplicates(baci.read_baci(clean, dropped={}, block_size=1 << 12)) == []
    assert _duplicates.sorted == (order == "shuffled")  # BACI's own order: ascending keys, no sort
    for original, copy in [(len(lines) // 2, len(lines) // 2 + 1), (3, len(lines))]:  # next to it; far from it
        rows = [*lines[:copy], lines[original], *lines[copy:]]
        twice = tmp_path / f"twice-{copy}.csv"
        twice.write_text("\n".join([header, *rows]) + "\n")
        assert _duplicates(baci.read_baci(twice, dropped={}, block_size=1 << 12)) == [copy]


def test_duplicate_across_a_batch_boundary_and_through_aliases(tmp_path):
    """The ascending-key shortcut compares each batch's first key with the last one before it; two BACI
    codes read as one country (250 is France; a country-codes file maps 251 to FRA too) are one key."""
    from recommender.bank import TRADE_SCHEMA
    from recommender.bank.ingest import baci

    def batch(rows):
        columns = list(zip(*rows, strict=True))
        return pa.Table.from_arrays([pa.array(columns[0], pa.int16()), *(pa.array(c).dictionary_encode() for c in columns[1:4]),
                                     pa.array(columns[4], pa.float64()), pa.nulls(len(rows), pa.float64())], schema=TRADE_SCHEMA)
    first = batch([(2010, "CHN", "KAZ", "0601", 1.0), (2010, "KAZ", "CHN", "0601", 1.0)])
    assert _duplicates([first, batch([(2010, "KAZ", "CHN", "0601", 2.0), (2010, "KAZ", "RUS", "0601", 1.0)])]) == [2]
    assert _duplicates([first, batch([(2010, "KAZ", "RUS", "0601", 2.0)])]) == []
    codes = tmp_path / "country_codes.csv"
    codes.write_text("country_code,country_iso3\n251,FRA\n")
    csv = tmp_path / "b.csv"
    csv.write_text("t,i,j,k,v,q\n2015,250,156,10121,1,1\n2015,251,156,10121,2,1\n")
    assert _duplicates(baci.read_baci(csv, country_codes=codes, dropped={})) == [1]


# ---- bad input: clear message, non-zero exit (CLI tests), untouched bank -------------------
BAD_TRADE = {
    "unknown country": ([(2010, "KAZ", "XXQ", "0601", 1.0)], "unknown importer code"),
    "negative value": ([(2010, "KAZ", "CHN", "0601", -1.0)], "negative value_usd"),
    "missing value": ([(2010, "KAZ", "CHN", "0601", None)], "missing value_usd"),
    "mixed code lengths": ([(2010, "KAZ", "CHN", "0601", 1.0), (2010, "KAZ", "RUS", "0601", 1.0), (2010, "KAZ", "IND", "601", 1.0)],
                           "product code of length 3"),
    "duplicate key": ([(2010, "KAZ", "CHN", "0601", 1.0), (2010, "KAZ", "CHN", "0601", 2.0)], "duplicate key"),
    "bad year": ([(1700, "KAZ", "CHN", "0601", 1.0)], "year outside"),
    "text value": ([(2010, "KAZ", "CHN", "0601", "lots")], "value_usd is not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRADE))
def test_bad_trade_rejected_and_bank_untouched(bank, tiny_files, tmp_path, case):
    ingest_trade(bank, tiny_files["trade"])
    before = bank_state(bank)
    rows, message = BAD_TRADE[case]
    path = _trade_csv(tmp_path, GOOD + rows, name="bad.csv")
    with pytest.raises(DataValidationError) as err:
        ingest_trade(bank, path)
    text = str(err.value)
    assert message in text and "bad.csv" in text and "nothing was written" in text
    assert bank_state(bank) == before
    assert not (bank.root / "staging").exists()


def test_missing_column_names_the_columns(bank, tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"year": [2010], "exporter": ["KAZ"], "product": ["01"], "value_usd": [1.0]}).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"required column\(s\) \['importer'\] missing"):
        ingest_trade(bank, path)
    assert bank_state(bank) == {}


def test_bad_baci_rejected(bank, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("t,i,j,k,v,q\n2015,398,999,10121,12.5,1\n2015,398,156,10121,-3,1\n")
    with pytest.raises(DataValidationError) as err:
        ingest_trade(bank, path, format="baci")
    assert "#999" in str(err.value) and "negative value_usd" in str(err.value)
    bad_type = tmp_path / "c.csv"
    bad_type.write_text("t,i,j,k,v,q\n2015,398,156,10121,abc,1\n")
    with pytest.raises(DataValidationError, match="could not parse"):
        ingest_trade(bank, bad_type, format="baci")
    assert bank_state(bank) == {}


def test_bad_capacity_and_geography_rejected(bank, tmp_path, tiny_files):
    ingest_geography(bank, tiny_files["geography"])
    before = bank_state(bank)
    cap = tmp_path / "cap.csv"
    pd.DataFrame({"year": [2010, 2010, 2010], "country": ["KAZ", "KAZ", "ZZZ"], "indicator": ["gdp", "gdp", "gdp"],
                  "value": [1.0, 2.0, -1.0]}).to_csv(cap, index=False)
    with pytest.raises(DataValidationError) as err:
        ingest_capacity(bank, cap)
    assert "duplicate key" in str(err.value) and "unknown country code(s) ZZZ" in str(err.value)
    geo = tmp_path / "geo.csv"
    pd.DataFrame({"iso3_a": ["KAZ"], "iso3_b": ["CHN"], "dist_km": [-5]}).to_csv(geo, index=False)
    with pytest.raises(DataValidationError, match="distance"):
        ingest_geography(bank, geo, replace=True)
    assert bank_state(bank) == before


def test_reingest_same_file_changes_nothing(bank, tiny_files):
    ingest_trade(bank, tiny_files["trade"])
    before = bank_state(bank)
    again = ingest_trade(bank, tiny_files["trade"])
    assert again.unchanged
    assert bank_state(bank) == before


def test_overlap_refused_unless_replace(bank, tmp_path):
    ingest_trade(bank, _trade_csv(tmp_path, GOOD, "a.csv"))
    before = bank_state(bank)
    newer = _trade_csv(tmp_path, [(2011, "KAZ", "CHN", "0601", 99.0), (2012, "KAZ", "CHN", "0601", 7.0)], "b.csv")
    with pytest.raises(BankConflictError, match="--replace"):
        ingest_trade(bank, newer)
    assert bank_state(bank) == before
    ingest_trade(bank, newer, replace=True)
    back = bank.read("trade")
    assert sorted(back["year"].unique()) == [2010, 2011, 2012]
    assert back[back["year"] == 2011]["value_usd"].tolist() == [99.0]  # 2011 replaced, 2010 kept
    srcs = {s["path"].split("/")[-1]: s["years"] for s in bank.sources if s["table"] == "trade"}
    assert srcs == {"a.csv": [2010], "b.csv": [2011, 2012]}
    rows = {s["path"].split("/")[-1]: s["rows"] for s in bank.sources if s["table"] == "trade"}
    assert rows == {"a.csv": int((back["year"] == 2010).sum()), "b.csv": 2}  # the manifest's rows stay true


def test_reingesting_a_partly_replaced_file_restores_it(bank, tmp_path):
    original = _trade_csv(tmp_path, GOOD, "a.csv")
    ingest_trade(bank, original)
    expected = bank.read("trade").sort_values(["year", "exporter", "importer"]).reset_index(drop=True)
    ingest_trade(bank, _trade_csv(tmp_path, [(2011, "KAZ", "CHN", "0601", 99.0)], "b.csv"), replace=True)
    again = ingest_trade(bank, original, replace=True)
    assert not again.unchanged  # not "unchanged": the bank no longer holds the whole file
    back = bank.read("trade").sort_values(["year", "exporter", "importer"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected)
    assert [s["path"].split("/")[-1] for s in bank.sources if s["table"] == "trade"] == ["a.csv"]
    assert ingest_trade(bank, original).unchanged  # whole again: a third ingest is a no-op


def test_interrupted_write_leaves_bank_as_before(bank, tiny_files, monkeypatch):
    ingest_geography(bank, tiny_files["geography"])
    before = bank_state(bank)
    import recommender.bank.ingest.tidy as tidy_module
    import recommender.bank.ingest.validate as ingest_module

    calls = {"n": 0}
    real = ingest_module.TradeValidator.check

    def crash_later(self, table, offset):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, table, offset)

    monkeypatch.setattr(ingest_module.TradeValidator, "check", crash_later)
    monkeypatch.setattr(tidy_module, "read_frames", _small_batches(tidy_module.read_frames))
    with pytest.raises(KeyboardInterrupt):
        ingest_trade(bank, tiny_files["trade"])
    assert calls["n"] == 2
    assert bank_state(bank) == before


def _small_batches(real):
    def wrapper(path, columns, chunk_rows=1_000_000, **options):
        return real(path, columns, chunk_rows=10_000, **options)
    return wrapper


def test_lock_stops_a_second_writer(bank, tmp_path):
    ingest_trade(bank, _trade_csv(tmp_path, GOOD, "a.csv"))
    entered, release = threading.Event(), threading.Event()

    def hold():
        with bank.transaction():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(10)
    try:
        impatient = DataBank(bank.root, lock_timeout=0.2)
        with pytest.raises(RecommenderError, match="locked by another writer"):
            ingest_trade(impatient, _trade_csv(tmp_path, [(2013, "KAZ", "CHN", "0601", 1.0)], "c.csv"))
    finally:
        release.set()
        thread.join()


# ---- hardening (issue 9): no silently wrong value, replace exactly what conflicts ---------------------
def _csv(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


BAD_VALUES = [
    ("trade", pd.DataFrame({"year": [67546], "exporter": ["KAZ"], "importer": ["CHN"], "product": ["0601"], "value_usd": [1.0]}), "year"),
    ("trade", pd.DataFrame({"year": [2010.5], "exporter": ["KAZ"], "importer": ["CHN"], "product": ["0601"], "value_usd": [1.0]}), "year"),
    ("trade", pd.DataFrame({"year": [2010], "exporter": ["KAZ"], "importer": ["CHN"], "product": ["0601"], "value_usd": ["inf"]}), "not finite"),
    ("trade", pd.DataFrame({"year": [2010], "exporter": ["KAZ"], "importer": ["CHN"], "product": ["0601"], "value_usd": ["1e400"]}), "not finite"),
    ("capacity", pd.DataFrame({"iso3": ["KAZ"], "year": [2010.5], "indicator": ["gdp"], "value_usd": [1.0]}), "whole number"),
    ("capacity", pd.DataFrame({"iso3": ["KAZ"], "year": [2010], "indicator": ["gdp"], "value_usd": ["inf"]}), "not finite"),
    ("geography", pd.DataFrame({"iso3_a": ["KAZ"], "iso3_b": ["CHN"], "dist_km": [10.0], "contig": [300]}), "0 or 1"),
    ("geography", pd.DataFrame({"iso3_a": ["KAZ"], "iso3_b": ["CHN"], "dist_km": [10.0], "contig": ["yes"]}), "0 or 1"),
    ("geography", pd.DataFrame({"iso3_a": ["KAZ"], "iso3_b": ["CHN"], "dist_km": ["inf"]}), "finite"),
    ("geography", pd.DataFrame({"iso3_a": [], "iso3_b": [], "dist_km": []}), "no rows"),
]


@pytest.mark.parametrize(("kind", "frame", "says"), BAD_VALUES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_VALUES)])
def test_values_are_checked_before_any_narrowing(bank, tmp_path, kind, frame, says):
    ingest_geography(bank, _csv(tmp_path, "geo0.csv", pd.DataFrame({"iso3_a": ["KAZ"], "iso3_b": ["UZB"], "dist_km": [5.0]})))
    before = bank_state(bank)
    path = _csv(tmp_path, f"{kind}.csv", frame)
    ingest = {"trade": lambda: ingest_trade(bank, path),
              "capacity": lambda: ingest_capacity(bank, path, columns={"country": "iso3", "value": "value_usd"}),
              "geography": lambda: ingest_geography(bank, path, replace=True)}[kind]
    with pytest.raises(DataValidationError, match=says):
        ingest()
    assert bank_state(bank) == before


def test_a_source_must_match_the_bank_classification_and_code_length(bank, tmp_path):
    ingest_trade(bank, _trade_csv(tmp_path, [(2010, "KAZ", "CHN", "060110", 1.0)]))
    before = bank_state(bank)
    lost_zero = tmp_path / "lost.csv"
    pd.DataFrame({"year": [2011], "exporter": ["KAZ"], "importer": ["CHN"], "product": [60110], "value_usd": [1.0]}).to_csv(lost_zero, index=False)
    with pytest.raises(DataValidationError, match="differ from the bank's 6"):
        ingest_trade(bank, lost_zero)
    with pytest.raises(DataValidationError, match="classification"):
        ingest_trade(bank, _trade_csv(tmp_path, [(2012, "KAZ", "CHN", "06", 1.0)], "sections.csv"), classification="hs-section")
    assert bank_state(bank) == before


def test_capacity_replace_removes_only_the_conflicting_indicator(bank, tmp_path):
    rows = [("KAZ", 2005, ind, v) for ind, v in (("gdp", 100.0), ("rkna", 2.0), ("emp", 8.0))]
    first = _csv(tmp_path, "all.csv", pd.DataFrame(rows, columns=["iso3", "year", "indicator", "value_usd"]))
    ingest_capacity(bank, first, columns={"country": "iso3", "value": "value_usd"})
    gdp = _csv(tmp_path, "gdp.csv", pd.DataFrame([("KAZ", 2005, "gdp", 150.0)], columns=["iso3", "year", "indicator", "value_usd"]))
    ingest_capacity(bank, gdp, columns={"country": "iso3", "value": "value_usd"}, replace=True)
    cap = bank.read("capacity").set_index("indicator")["value"]
    assert cap.to_dict() == {"gdp": 150.0, "rkna": 2.0, "emp": 8.0}
    rows_by_path = {s["path"].rsplit("/", 1)[-1]: s["rows"] for s in bank.sources}
    assert rows_by_path == {"all.csv": 2, "gdp.csv": 1}  # the manifest's row counts stay true


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00bad", b"PAR1garbage"], ids=["empty", "not-utf8", "truncated-parquet"])
@pytest.mark.parametrize("kind", ["trade", "capacity", "geography"])
def test_unreadable_files_are_clear_errors(bank, tmp_path, kind, content):
    path = tmp_path / ("x.parquet" if content.startswith(b"PAR1") else "x.csv")
    path.write_bytes(content)
    ingest = {"trade": ingest_trade, "capacity": ingest_capacity, "geography": ingest_geography}[kind]
    with pytest.raises(DataValidationError, match="x\\.(csv|parquet): rejected"):
        ingest(bank, path)
    assert bank_state(bank) == {}


def test_product_names_label_outputs_and_replace_whole(bank, tmp_path):
    from features.sectors import product_label
    from recommender.bank.ingest import ingest_product_names
    from recommender.pipeline import product_names

    ingest_trade(bank, _trade_csv(tmp_path, GOOD))
    names = tmp_path / "names.csv"
    names.write_text("hs4,name\n0601,Bulbs and tubers\n06,Live trees and plants\n87,Vehicles\n")
    ingest_product_names(bank, names)
    table = product_names(bank, shipped=False)
    assert table == {"0601": "Bulbs and tubers", "06": "Live trees and plants", "87": "Vehicles"}
    assert product_label("0601", "hs", table) == "0601 (Bulbs and tubers)"  # its own name
    assert product_label("0602", "hs", table) == "0602 (Live trees and plants)"  # else its chapter's
    assert product_label("8703", "hs", table) == "8703 (Vehicles)"
    assert product_label("2709", "hs", table) == "2709 (mineral products (ores, fuels))"  # else its section
    other = tmp_path / "other.csv"
    other.write_text("code,description\n0601,Bulbs\n")
    before = bank_state(bank)
    with pytest.raises(BankConflictError, match="--replace"):
        ingest_product_names(bank, other)
    assert bank_state(bank) == before
    ingest_product_names(bank, other, replace=True)
    assert product_names(bank, shipped=False) == {"0601": "Bulbs"}  # replaced whole


def _snapshots(bank: DataBank) -> int:
    return len([p for p in (bank.root / "snapshots").iterdir() if p.is_dir()]) if (bank.root / "snapshots").exists() else 0


def test_a_baci_release_folder_glob_or_zip_is_one_transaction(bank, tiny_world, tmp_path):
    import zipfile

    from recommender.bank.ingest import ingest_trade_files

    paths = write_baci(tiny_world, tmp_path / "release")
    folder = bank.root.parent
    results = ingest_trade_files(bank, [tmp_path / "release"], format="baci")
    assert len(results) == len(paths) and not any(r.unchanged for r in results)
    back = bank.read("trade")
    assert len(back) == len(tiny_world.trade)
    assert sorted(s["years"][0] for s in bank.sources) == sorted(paths)  # one source per yearly file
    # hashed in the background while parsing: each source still records its file's own SHA-256 and size
    from recommender.tables import file_sha256

    by_year = {s["years"][0]: s for s in bank.sources}
    assert all(by_year[y]["sha256"] == file_sha256(p) and by_year[y]["bytes"] == p.stat().st_size for y, p in paths.items())
    # again, as a glob: every file unchanged, no new snapshot
    state = bank_state(bank)
    again = ingest_trade_files(bank, [str(tmp_path / "release" / "*.csv")], format="baci")
    assert all(r.unchanged for r in again) and bank_state(bank) == state
    # a file of an ingested file's size but other content is not taken for it
    first_year, first = min(paths.items())
    text = first.read_text()
    last = text.rstrip()[-1]
    edited = text.rstrip()[:-1] + ("1" if last != "1" else "2") + "\n"  # the last quantity's last digit
    assert len(edited) == len(text)
    first.write_text(edited)
    changed = ingest_trade_files(bank, [first], format="baci", replace=True)
    assert not changed[0].unchanged and changed[0].source["sha256"] == file_sha256(first)
    first.write_text(text)
    # a zip of the same CSVs into a fresh bank: the same rows; members extracted one at a time, then removed
    archive = tmp_path / "BACI_release.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in paths.values():
            z.write(path, arcname=f"BACI/{path.name}")
    fresh = DataBank(folder / "zipped")
    from_zip = ingest_trade_files(fresh, [archive], format="baci")
    assert len(from_zip) == len(paths) and from_zip[0].source["path"].endswith(f"BACI_release.zip!BACI/{sorted(p.name for p in paths.values())[0]}")
    pd.testing.assert_frame_equal(fresh.read("trade").sort_values(["year", "exporter", "importer", "product"]).reset_index(drop=True),
                                  back.sort_values(["year", "exporter", "importer", "product"]).reset_index(drop=True))
    assert not list(folder.glob(".unzip-*"))


def test_one_bad_file_in_a_release_writes_nothing(bank, tiny_world, tmp_path):
    from recommender.bank.ingest import ingest_trade_files

    paths = write_baci(tiny_world, tmp_path / "release")
    ingest_trade(bank, next(iter(paths.values())), format="baci")  # the first year is already there
    state = bank_state(bank)
    last = sorted(paths.values())[-1]
    last.write_text(last.read_text() + f"{max(paths)},398,156,10121,-5,1\n")  # a negative value in the last file
    with pytest.raises(DataValidationError, match=f"(?s){last.name}.*negative value_usd"):
        ingest_trade_files(bank, sorted(paths.values()), format="baci")
    assert bank_state(bank) == state  # the good files before it were not published either
    # a file that cannot be parsed, parsed ahead while the file before it is written: its own error
    third = sorted(paths.values())[2]
    third.write_text(third.read_text() + f"{sorted(paths)[2]},398,156,10121,abc,1\n")
    with pytest.raises(DataValidationError, match=f"(?s){third.name}.*could not parse"):
        ingest_trade_files(bank, sorted(paths.values())[1:], format="baci")
    assert bank_state(bank) == state
    twice = tmp_path / "copy.csv"
    twice.write_text(sorted(paths.values())[1].read_text())
    with pytest.raises(DataValidationError, match="also in"):
        ingest_trade_files(bank, [sorted(paths.values())[1], twice], format="baci")
    assert bank_state(bank) == state
    with pytest.raises(RecommenderError, match="no trade files"):
        ingest_trade_files(bank, [str(tmp_path / "nothing-*.csv")], format="baci")


def test_cli_ingests_a_release_folder_with_a_summary(tiny_world, tmp_path, monkeypatch, capsys):
    import sys

    from recommender.cli import main

    paths = write_baci(tiny_world, tmp_path / "release")
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(tmp_path / "home"), "ingest", "trade",
                                      str(tmp_path / "release"), "--format", "baci"])
    main()
    out = " ".join(capsys.readouterr().out.split())
    assert f"{len(paths)} file(s): {len(paths)} ingested ({len(tiny_world.trade):,} rows) in one transaction" in out


def _release(folder, version="V202401b"):
    """A BACI release laid out as CEPII ships it: yearly files, country and product codes, a readme."""
    folder.mkdir(parents=True)
    for year in (2019, 2020):
        (folder / f"BACI_HS92_Y{year}_{version}.csv").write_text(
            f"t,i,j,k,v,q\n{year},901,156,10121,1.5,2\n{year},398,643,870323,10,NA\n")
    (folder / f"country_codes_{version}.csv").write_text(  # 901 is no ISO numeric code: only the release's file knows it
        "country_code,country_name,country_iso2,country_iso3\n901,Testland,TL,KGZ\n398,Kazakhstan,KZ,KAZ\n"
        "156,China,CN,CHN\n643,Russian Federation,RU,RUS\n")
    (folder / f"product_codes_HS92_{version}.csv").write_text(
        'code,description\n10121,"Horses: live, pure-bred breeding animals"\n870323,"Cars: 1500-3000cc"\n')
    (folder / "Readme.txt").write_text("BACI: International Trade Database at the Product-Level. CEPII.\n")
    return folder


def test_a_baci_release_as_cepii_ships_it(bank, tmp_path):
    """The zip (a folder inside) or the unpacked folder: country codes used, product codes become the names with
    their HS vintage, the readme ignored, and the notes say which file was taken for what."""
    import zipfile

    from recommender.bank.ingest import ingest_trade_files
    from recommender.pipeline import product_names

    folder = _release(tmp_path / "BACI_HS92_V202401b")
    archive = tmp_path / "BACI_HS92_V202401b.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(folder.iterdir()):
            z.write(path, arcname=f"BACI_HS92_V202401b/{path.name}")
    results = ingest_trade_files(bank, [archive], format="baci")
    trade = bank.read("trade")
    assert sorted(trade["year"].unique()) == [2019, 2020] and set(trade["exporter"]) == {"KGZ", "KAZ"}
    assert product_names(bank, shipped=False) == {"010121": "Horses: live, pure-bred breeding animals",
                                                  "870323": "Cars: 1500-3000cc"}
    names = next(s for s in bank.sources if s["table"] == "product_names")
    assert names["options"] == {"vintage": "HS92", "release": "V202401b"} and names["path"].endswith("product_codes_HS92_V202401b.csv")
    notes = "\n".join(results[-1].notes)
    assert "BACI release V202401b, HS92: 2 yearly trade file(s)" in notes
    assert "country codes: country_codes_V202401b.csv" in notes and "product names: product_codes_HS92_V202401b.csv" in notes
    assert "ignored: Readme.txt" in notes
    trade_sources = [s for s in bank.sources if s["table"] == "trade"]
    assert len(trade_sources) == 2 and all(s["options"]["country_codes"] == "country_codes_V202401b.csv" for s in trade_sources)

    state = bank_state(bank)  # the same release again: nothing to do, no new snapshot
    assert all(r.unchanged for r in ingest_trade_files(bank, [archive], format="baci")) and bank_state(bank) == state

    fresh = DataBank(tmp_path / "fresh")  # the unpacked folder reads the same, its format told by its files' names
    ingest_trade_files(fresh, [folder])
    key = ["year", "exporter", "importer", "product"]
    pd.testing.assert_frame_equal(fresh.read("trade").sort_values(key).reset_index(drop=True),
                                  trade.sort_values(key).reset_index(drop=True))


def test_a_release_keeps_the_users_own_names_unless_replace(bank, tmp_path):
    from recommender.bank.ingest import ingest_product_names, ingest_trade_files
    from recommender.pipeline import product_names

    own = tmp_path / "names.csv"
    own.write_text("product,name\n870323,Our cars\n")
    ingest_product_names(bank, own)
    folder = _release(tmp_path / "release")
    results = ingest_trade_files(bank, [folder], format="baci")
    assert product_names(bank, shipped=False) == {"870323": "Our cars"}
    assert any("product names kept: the bank has its own (from names.csv)" in n for n in results[-1].notes)
    ingest_trade_files(bank, [folder], format="baci", replace=True)
    assert product_names(bank, shipped=False)["870323"] == "Cars: 1500-3000cc"
