"""Malformed inputs of every ingest format and of ``score``, table-driven, through the CLI's entry point.

Each kind must end with exit 2, one short message that names the file and the reason, no
traceback, and a data bank byte-identical to before (and no output file for ``score``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from recommender.bank import DataBank
from recommender.bank.ingest import ingest_capacity, ingest_geography, ingest_trade
from recommender.cli import main
from tests.conftest import bank_state

P = "060110"  # a product of the base bank (six digits)
TRADE = "year,exporter,importer,product,value_usd"
GOOD_TRADE = [f"2010,KAZ,CHN,{P},5", f"2011,KAZ,CHN,{P},6", f"2010,RUS,KAZ,{P},7"]


def _trade(*rows: str) -> str:
    return "\n".join([TRADE, *GOOD_TRADE[:1], *rows]) + "\n"


def _parquet(frame: pd.DataFrame):
    return lambda path: frame.to_parquet(path)


BACI = "t,i,j,k,v,q"
CAP = "year,country,indicator,value"
GEO = "iso3_a,iso3_b,dist_km,contig"
JP = ["--task", "import-substitution"]

# (id, command, file name, content: text | bytes | writer, extra args, what the message must say)
def _nested(path: Path, column: str) -> None:
    """A Parquet file whose ``column`` holds lists (Arrow would say "not implemented" on the cast to text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {"year": [2010], "exporter": ["KAZ"], "importer": ["CHN"], "supplier": ["RUS"], "partner_a": ["KAZ"],
            "partner_b": ["RUS"], "product": ["060110"], "value_usd": [1.0]}
    data[column] = [[data[column][0]]]
    pq.write_table(pa.table(data), path)


INGEST_CASES = [
    # tidy trade, CSV
    ("trade-missing-column", "trade", "t.csv", "year,exporter,product,value_usd\n2010,KAZ,060110,1\n", [], "required column(s) ['importer'] missing"),
    ("trade-unknown-exporter", "trade", "t.csv", _trade(f"2010,ZZZ,CHN,{P},1"), [], "unknown exporter"),
    ("trade-unknown-importer", "trade", "t.csv", _trade(f"2010,KAZ,QQQ,{P},1"), [], "unknown importer"),
    ("trade-negative-value", "trade", "t.csv", _trade(f"2010,KAZ,RUS,{P},-3"), [], "negative"),
    ("trade-text-value", "trade", "t.csv", _trade(f"2010,KAZ,RUS,{P},lots"), [], "not a number"),
    ("trade-missing-value", "trade", "t.csv", _trade(f"2010,KAZ,RUS,{P},"), [], "value_usd"),
    ("trade-year-wraps-int16", "trade", "t.csv", _trade(f"67546,KAZ,RUS,{P},1"), [], "year"),
    ("trade-fractional-year", "trade", "t.csv", _trade(f"2010.5,KAZ,RUS,{P},1"), [], "year"),
    ("trade-year-too-old", "trade", "t.csv", _trade(f"1700,KAZ,RUS,{P},1"), [], "year"),
    ("trade-missing-year", "trade", "t.csv", _trade(f",KAZ,RUS,{P},1"), [], "year"),
    ("trade-inf-value", "trade", "t.csv", _trade(f"2010,KAZ,RUS,{P},inf"), [], "not finite"),
    ("trade-overflow-value", "trade", "t.csv", _trade(f"2010,KAZ,RUS,{P},1e400"), [], "not finite"),
    ("trade-duplicate-key", "trade", "t.csv", _trade(f"2010,KAZ,CHN,{P},2"), [], "duplicate key"),
    ("trade-mixed-code-lengths", "trade", "t.csv", _trade("2010,KAZ,RUS,60110,1"), [], "product code of length"),
    ("trade-lost-leading-zero", "trade", "t.csv", f"{TRADE}\n2012,KAZ,CHN,60110,1\n", [], "differ from the bank"),
    ("trade-other-classification", "trade", "t.csv", f"{TRADE}\n2012,KAZ,CHN,{P},1\n", ["--classification", "other"], "classification"),
    ("trade-missing-product", "trade", "t.csv", _trade("2010,KAZ,RUS,,1"), [], "product"),
    ("trade-missing-exporter", "trade", "t.csv", _trade(f"2010,,RUS,{P},1"), [], "exporter"),
    ("trade-empty-file", "trade", "t.csv", b"", [], "the file is empty"),
    ("trade-header-only", "trade", "t.csv", f"{TRADE}\n", [], "no trade rows"),
    ("trade-not-utf8", "trade", "t.csv", f"{TRADE}\n2010,KAZ,CHN,{P},1\n".encode() + b"\xff\xfe,\n", [], "not UTF-8"),
    ("trade-overlap-without-replace", "trade", "t.csv", f"{TRADE}\n2010,KAZ,UZB,{P},1\n", [], "--replace"),
    # tidy trade, Parquet
    ("trade-parquet-truncated", "trade", "t.parquet", b"PAR1\x00\x00garbage", [], "could not read"),
    ("trade-parquet-year-wraps-int16", "trade", "t.parquet",
     _parquet(pd.DataFrame({"year": [67546], "exporter": ["KAZ"], "importer": ["RUS"], "product": [P], "value_usd": [1.0]})), [], "year"),
    ("trade-parquet-inf-value", "trade", "t.parquet",
     _parquet(pd.DataFrame({"year": [2012], "exporter": ["KAZ"], "importer": ["RUS"], "product": [P], "value_usd": [float("inf")]})), [],
     "not finite"),
    # UN Comtrade
    ("comtrade-missing-flow", "trade", "c.csv", "refYear,reporterISO,partnerISO,cmdCode,primaryValue\n2012,KAZ,CHN,060110,1\n",
     ["--format", "comtrade"], "missing"),
    ("comtrade-unknown-reporter", "trade", "c.csv",
     "refYear,flowCode,reporterISO,partnerISO,cmdCode,primaryValue\n2012,X,ZZZ,CHN,060110,1\n", ["--format", "comtrade"], "ZZZ"),
    # CEPII BACI
    ("baci-country-codes-missing", "trade", "b.csv", f"{BACI}\n2015,398,156,60110,12.5,1\n",
     ["--format", "baci", "--country-codes", "/no/such/country_codes_V202401b.csv"], "--country-codes /no/such/country_codes_V202401b.csv: no such file"),
    ("trade-nested-parquet", "trade", "t.parquet", lambda path: _nested(path, "value_usd"), [], "hold lists or records"),
    ("baci-missing-column", "trade", "b.csv", "t,i,j,v,q\n2015,398,156,12.5,1\n", ["--format", "baci"], "BACI columns ['k'] missing"),
    ("baci-unknown-country", "trade", "b.csv", f"{BACI}\n2015,398,999,60110,12.5,1\n", ["--format", "baci"], "#999"),
    ("baci-text-value", "trade", "b.csv", f"{BACI}\n2015,398,156,60110,abc,1\n", ["--format", "baci"], "could not parse"),
    ("baci-negative-value", "trade", "b.csv", f"{BACI}\n2015,398,156,60110,-3,1\n", ["--format", "baci"], "negative"),
    ("baci-year-wraps-int16", "trade", "b.csv", f"{BACI}\n67546,398,156,60110,12.5,1\n", ["--format", "baci"], "year"),
    ("baci-inf-value", "trade", "b.csv", f"{BACI}\n2015,398,156,60110,inf,1\n", ["--format", "baci"], "not finite"),
    ("baci-empty-file", "trade", "b.csv", b"", ["--format", "baci"], "the file is empty"),
    # capacity: long, wide (Penn World Table) and INDSTAT
    ("capacity-duplicate-key", "capacity", "k.csv", f"{CAP}\n2010,KAZ,gdp,1\n2010,KAZ,gdp,2\n", [], "duplicate key"),
    ("capacity-unknown-country", "capacity", "k.csv", f"{CAP}\n2010,ZZZ,gdp,1\n", [], "unknown country code(s) ZZZ"),
    ("capacity-inf-value", "capacity", "k.csv", f"{CAP}\n2010,KAZ,gdp,inf\n", [], "not finite"),
    ("capacity-fractional-year", "capacity", "k.csv", f"{CAP}\n2010.5,KAZ,gdp,1\n", [], "whole number"),
    ("capacity-year-wraps-int16", "capacity", "k.csv", f"{CAP}\n67546,KAZ,gdp,1\n", [], "year"),
    ("capacity-negative-level", "capacity", "k.csv", f"{CAP}\n2010,KAZ,employees,-5\n", [], "negative value"),
    ("capacity-text-value", "capacity", "k.csv", f"{CAP}\n2010,KAZ,gdp,lots\n", [], "not a number"),
    ("capacity-missing-country", "capacity", "k.csv", f"{CAP}\n2010,,gdp,1\n", [], "country"),
    ("capacity-no-country-column", "capacity", "k.csv", "year,indicator,value\n2010,gdp,1\n", [], "required column(s) ['country']"),
    ("capacity-empty-file", "capacity", "k.csv", b"", [], "the file is empty"),
    ("capacity-wide-text-year", "capacity", "w.csv", "iso3,year,rgdpo\nKAZ,abc,1.5\n", ["--column", "country=iso3"], "year"),
    ("capacity-indstat-missing-isic", "capacity", "i.csv", "ctable,country,year,value\n20,398,2010,1\n", ["--format", "indstat"],
     "required column(s)"),
    ("capacity-parquet-truncated", "capacity", "k.parquet", b"PAR1\x00garbage", [], "could not read"),
    # geography
    ("geography-negative-distance", "geography", "g.csv", f"{GEO}\nKAZ,CHN,-5,0\n", ["--replace"], "distance"),
    ("geography-inf-distance", "geography", "g.csv", f"{GEO}\nKAZ,CHN,inf,0\n", ["--replace"], "finite"),
    ("geography-flag-wraps-int8", "geography", "g.csv", f"{GEO}\nKAZ,CHN,10,300\n", ["--replace"], "0 or 1"),
    ("geography-flag-word", "geography", "g.csv", f"{GEO}\nKAZ,CHN,10,yes\n", ["--replace"], "0 or 1"),
    ("geography-unknown-code", "geography", "g.csv", f"{GEO}\nKAZ,ZZZ,10,0\n", ["--replace"], "ZZZ"),
    ("geography-duplicate-pair", "geography", "g.csv", f"{GEO}\nKAZ,CHN,10,0\nKAZ,CHN,11,0\n", ["--replace"], "duplicate pair"),
    ("geography-header-only", "geography", "g.csv", f"{GEO}\n", ["--replace"], "no rows"),
    ("geography-not-utf8", "geography", "g.csv", f"{GEO}\n".encode() + b"KAZ,\xff\xfe,1,0\n", ["--replace"], "not UTF-8"),
    # product names
    ("names-duplicate-code", "products", "n.csv", "hs4,name\n0601,Bulbs\n0601,Tubers\n", [], "duplicate product code"),
    ("names-missing-name", "products", "n.csv", "hs4,name\n0601,\n", [], "name missing"),
    ("names-code-not-digits", "products", "n.csv", "hs4,name\n06.01,Bulbs\n", [], "not digits"),
    ("names-no-name-column", "products", "n.csv", "hs4,title\n0601,Bulbs\n", [], "required column(s) ['name']"),
    ("geography-overlap-without-replace", "geography", "g.csv", f"{GEO}\nKAZ,CHN,10,0\n", [], "--replace"),
]


@pytest.fixture(scope="module")
def base_home(tmp_path_factory) -> Path:
    """A home whose bank holds trade (6-digit HS, 2010–2011), capacity and geography."""
    home = tmp_path_factory.mktemp("malformed") / "home"
    files = tmp_path_factory.mktemp("base-files")
    bank = DataBank(home / "bank")
    (files / "trade.csv").write_text("\n".join([TRADE, *GOOD_TRADE]) + "\n")
    (files / "cap.csv").write_text(f"{CAP}\n2010,KAZ,gdp,1\n2010,CHN,gdp,2\n")
    (files / "geo.csv").write_text(f"{GEO}\nKAZ,CHN,3000,1\n")
    ingest_trade(bank, files / "trade.csv")
    ingest_capacity(bank, files / "cap.csv")
    ingest_geography(bank, files / "geo.csv")
    return home


def _write(path: Path, content) -> None:
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _run_cli(monkeypatch, capsys, home: Path, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(home), *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.err + captured.out


def _flat(text: str) -> str:
    return " ".join(text.split())  # the terminal wraps long lines


@pytest.mark.parametrize(("kind", "command", "name", "content", "extra", "says"), INGEST_CASES, ids=[c[0] for c in INGEST_CASES])
def test_malformed_ingest_is_refused_cleanly(base_home, tmp_path, monkeypatch, capsys, kind, command, name, content, extra, says):
    home = tmp_path / "home"
    shutil.copytree(base_home, home)
    bank = DataBank(home / "bank")
    before = bank_state(bank)
    path = tmp_path / name
    _write(path, content)
    code, text = _run_cli(monkeypatch, capsys, home, "ingest", command, path, *extra)
    assert code == 2, text
    assert "Traceback" not in text
    assert name in _flat(text) and says in _flat(text), text
    assert len(text.strip().splitlines()) <= 30, text  # one message, not a dump
    assert bank_state(bank) == before
    assert not (bank.root / "staging").exists()


SCORE_CASES = [
    ("score-missing-column", "p.csv", "importer,product\nKAZ,{p}\n", "required column(s) ['supplier'] missing"),
    ("score-outside-bloc", "p.csv", "importer,supplier,product\nUSA,RUS,{p}\n", "outside the bloc"),
    ("score-unknown-code", "p.csv", "importer,supplier,product\nKAZ,XXQ,{p}\n", "supplier: unknown country 'XXQ'"),
    ("score-ambiguous-country", "p.csv", "importer,supplier,product\nKAZ,Korea,{p}\n", "ambiguous country 'Korea': closest KOR"),
    ("score-unknown-name", "p.csv", "importer,supplier,product\nKAZ,RUS,xyzzy gadgets\n", "unknown product 'xyzzy gadgets': closest"),
    ("score-unknown-product", "p.csv", "importer,supplier,product\nKAZ,RUS,999999\n", "'999999' (read as 999999): not in the data bank"),
    ("score-coarser-code", "p.csv", "importer,supplier,product\nKAZ,RUS,{p_chapter}\n", "is coarser than the bank's 6-digit codes; write one of"),
    ("score-same-country", "p.csv", "importer,supplier,product\nKAZ,KAZ,{p}\n", "the two countries are the same"),
    ("score-empty-importer", "p.csv", "importer,supplier,product\n,RUS,{p}\n", "importer missing"),
    ("score-empty-product", "p.csv", "importer,supplier,product\nKAZ,RUS,\n", "product missing"),
    ("score-header-only", "p.csv", "importer,supplier,product\n", "no project rows"),
    ("score-empty-file", "p.csv", b"", "the file is empty"),
    ("score-not-utf8", "p.csv", b"importer,supplier,product\nKAZ,\xff\xfe,1\n", "not UTF-8"),
    ("score-truncated-parquet", "p.parquet", b"PAR1\x00garbage", "could not read"),
    ("score-nested-parquet", "p.parquet", lambda path: _nested(path, "product"), "hold lists or records"),
    ("score-spreadsheet", "p.xlsx", b"PK\x03\x04", "not a readable workbook"),
]


@pytest.mark.parametrize(("kind", "name", "content", "says"), SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_malformed_projects_are_refused_cleanly(pipeline_home, tmp_path, monkeypatch, capsys, kind, name, content, says):
    cfg, _ = pipeline_home
    bank = DataBank(cfg.bank_dir)
    before = bank_state(bank)
    product = bank.read("products", columns=["product"])["product"].iloc[0]
    path = tmp_path / name
    _write(path, content.format(p=product, p_chapter=product[:2]) if isinstance(content, str) else content)
    out = tmp_path / "scored.csv"
    code, text = _run_cli(monkeypatch, capsys, cfg.home, "score", path, *JP, "--output", out)
    assert code == 2, text
    assert "Traceback" not in text
    assert name in _flat(text) and says in _flat(text), text
    assert not out.exists() and not list(tmp_path.glob(".scored*"))
    assert bank_state(bank) == before


def test_the_suite_covers_at_least_forty_kinds():
    assert len(INGEST_CASES) + len(SCORE_CASES) >= 40
    formats = {c[0].split("-")[0] for c in INGEST_CASES} | {"score"}
    assert formats >= {"trade", "comtrade", "baci", "capacity", "geography", "names", "score"}


OUTPUT_CASES = [  # every command's file options: one clear sentence, exit 2, nothing written
    (["score", "{projects}", "--task", "import-substitution", "--output", "/etc/passwd/x.csv"], "cannot write there"),
    (["score", "{projects}", "--task", "import-substitution", "--output", "{tmp}"], "--output must end in .csv, .parquet or .xlsx"),
    (["score", "{projects}", "--task", "import-substitution", "--sheet", "Projects"], "applies to workbooks"),
    (["score", "{tmp}", "--task", "import-substitution"], "is a folder: name the projects file in it"),
    (["recommend", "--task", "import-substitution", "--output", "{tmp}/x.txt"], "--output must end in"),
    (["recommend", "--task", "import-substitution", "--output", "/proc/nope/x.xlsx"], "cannot write there"),
    (["scenario", "--importer", "KAZ", "--cut", "CHN", "--output", "/proc/x.xlsx"], "cannot write there"),
    (["brief", "--country", "KAZ", "--output", "{tmp}"], "name it .html"),
    (["ingest", "products", "{projects}", "--sheet", "names"], "applies to workbooks"),
]


@pytest.mark.parametrize(("args", "says"), OUTPUT_CASES, ids=[f"{c[0][0]}-{i}" for i, c in enumerate(OUTPUT_CASES)])
def test_file_options_fail_cleanly(pipeline_home, tmp_path, monkeypatch, capsys, args, says):
    cfg, _ = pipeline_home
    bank = DataBank(cfg.bank_dir)
    before = bank_state(bank)
    projects = tmp_path / "p.csv"
    product = bank.read("products", columns=["product"])["product"].iloc[0]
    projects.write_text(f"importer,supplier,product\nKAZ,RUS,{product}\n")
    listing = sorted(tmp_path.iterdir())
    code, text = _run_cli(monkeypatch, capsys, cfg.home, *[a.format(projects=projects, tmp=tmp_path) for a in args])
    assert code == 2 and "Traceback" not in text and says in _flat(text), text
    assert len(text.strip().splitlines()) <= 6, text
    assert sorted(tmp_path.iterdir()) == listing and bank_state(bank) == before  # nothing written
