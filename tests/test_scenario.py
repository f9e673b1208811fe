"""Supply-shock scenarios: every number checked by hand on a world small enough to add up in one's head."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from recommender.cli import main
from recommender.errors import RecommenderError
from recommender.outputs.scenario import resolve_cut, supply_gap

BLOC = ["KAZ", "RUS", "UZB", "CHN"]
#                  exporter importer product value
FLOWS = [("DEU", "KAZ", "010101", 100.0),  # cut
         ("USA", "KAZ", "010101", 50.0),   # cut
         ("TUR", "KAZ", "010101", 30.0),   # not cut: no gap from it
         ("RUS", "KAZ", "010101", 20.0),   # RUS already sells 20 to KAZ
         ("RUS", "DEU", "010101", 90.0),   # RUS world exports of 010101: 20 + 90 = 110 → 90 available
         ("UZB", "TUR", "010101", 500.0),  # UZB could redirect 500 ≥ the gap
         ("DEU", "KAZ", "020202", 40.0),   # cut; no bloc member exports 020202
         ("CHN", "KAZ", "030303", 10.0),   # a bloc supplier: never "lost" (not cut)
         ("DEU", "RUS", "030303", 70.0)]   # another importer's imports are no concern


def _trade() -> pd.DataFrame:
    return pd.DataFrame(FLOWS, columns=["exporter", "importer", "product", "value_usd"]).assign(year=2014)


def test_gap_and_fillers_by_hand():
    gaps, fillers = supply_gap(_trade(), "KAZ", ["DEU", "USA"], BLOC, share=1.0)
    assert gaps.set_index("product")["lost_usd"].to_dict() == {"010101": 150.0, "020202": 40.0}
    g = gaps.set_index("product")
    assert g.loc["010101", "coverable_usd"] == 150.0 and g.loc["010101", "uncovered_usd"] == 0.0  # 90 + 500 ≥ 150
    assert g.loc["020202", "coverable_usd"] == 0.0 and g.loc["020202", "uncovered_usd"] == 40.0
    f = fillers.set_index(["product", "supplier"])
    assert f.loc[("010101", "RUS"), "exports_usd"] == 110.0 and f.loc[("010101", "RUS"), "sold_to_importer_usd"] == 20.0
    assert f.loc[("010101", "RUS"), "available_usd"] == 90.0
    assert f.loc[("010101", "RUS"), "covers_share"] == pytest.approx(90 / 150)
    assert f.loc[("010101", "UZB"), "covers_share"] == 1.0  # never above 100 %
    assert list(fillers["supplier"]) == ["UZB", "RUS"]  # best filler first
    assert "CHN" not in set(fillers["supplier"])  # CHN does not export the products with a gap


def test_share_scales_the_gap_and_cut_members_cannot_fill():
    gaps, fillers = supply_gap(_trade(), "KAZ", ["DEU", "USA", "RUS"], BLOC, share=0.5)
    assert gaps.set_index("product")["lost_usd"].to_dict() == {"010101": 85.0, "020202": 20.0}  # (100 + 50 + 20) / 2
    assert set(fillers["supplier"]) == {"UZB"}  # RUS is cut, so it is not a filler
    with pytest.raises(RecommenderError, match="--share"):
        supply_gap(_trade(), "KAZ", ["DEU"], BLOC, share=1.5)


def test_cut_groups_expand():
    assert "DEU" in resolve_cut("EU27") and len(resolve_cut("EU27")) == 27
    assert resolve_cut("g7,usa") == sorted({"CAN", "FRA", "DEU", "ITA", "JPN", "GBR", "USA"})
    assert resolve_cut("ROM") == ["ROU"]
    with pytest.raises(RecommenderError, match="neither a country nor a group"):
        resolve_cut("NATO")


def test_scenario_command_on_the_tiny_world(pipeline_home, tmp_path, monkeypatch, capsys):
    cfg, _ = pipeline_home
    out = tmp_path / "scenario.csv"
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(cfg.home), "scenario", "--importer", "KAZ",
                                      "--cut", "ASEAN,CHN", "--share", "0.5", "--output", str(out)])
    main()
    text = capsys.readouterr().out
    table = pd.read_csv(out, dtype={"product": str, "supplier": str})
    from recommender.bank import DataBank

    year = DataBank(cfg.bank_dir).years("trade")[-1]
    trade = DataBank(cfg.bank_dir).read("trade", years=[year])
    cut = set(resolve_cut("ASEAN,CHN"))
    expected = trade[(trade["importer"] == "KAZ") & trade["exporter"].isin(cut)]["value_usd"].sum() * 0.5
    per_product = table.drop_duplicates("product")
    assert per_product["lost_usd"].sum() == pytest.approx(expected)
    assert (per_product["coverable_usd"] <= per_product["lost_usd"] + 1e-6).all()
    fillers = table.dropna(subset=["supplier"])
    assert fillers["covers_share"].between(0, 1).all() and not fillers["supplier"].isin(cut | {"KAZ"}).any()
    assert (fillers["available_usd"] <= fillers["exports_usd"]).all()
    assert fillers["probability"].between(0, 1).all()  # the champion scored every (KAZ, supplier, product)
    assert "gap $" in text and "coverable by SCO" in text and table["product_name"].notna().all()
    assert "model import-substitution-SCO/" in text and "no champion" not in text


def test_scenario_in_words_to_json_and_a_workbook(pipeline_home, tmp_path, monkeypatch, capsys):
    """Importer and cut countries by name, a chapter as --product (a set), --json, and a workbook of gaps and suppliers."""
    import json

    import openpyxl

    cfg, _ = pipeline_home
    base = ["recommender", "--home", str(cfg.home), "scenario", "--cut", "ASEAN,China"]
    monkeypatch.setattr(sys, "argv", [*base, "--importer", "KAZ", "--json"])
    main()
    every = json.loads(capsys.readouterr().out)
    chapter = every["rows"][0]["product"][:2]
    out = tmp_path / "scenario.xlsx"
    monkeypatch.setattr(sys, "argv", [*base, "--importer", "Kazakhstan", "--product", chapter, "--json", "--output", str(out)])
    main()
    data = json.loads(capsys.readouterr().out)
    assert data["importer"] == "KAZ" and "CHN" in data["cut"] and data["rows"]
    assert {r["product"][:2] for r in data["rows"]} == {chapter}
    assert data["totals"]["gap_usd"] == pytest.approx(sum(r["lost_usd"] for r in every["rows"] if r["product"][:2] == chapter
                                                          and r is next(q for q in every["rows"] if q["product"] == r["product"])))
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["gaps", "suppliers", "About"]
    gaps = list(wb["gaps"].iter_rows(values_only=True))
    assert gaps[0][:3] == ("product", "product_name", "lost_usd") and len(gaps) - 1 == data["totals"]["products"]
    assert wb["gaps"]["C2"].number_format == "#,##0" and wb["gaps"].freeze_panes == "A2"
    about = {r[0]: r[1] for r in wb["About"].iter_rows(values_only=True)}
    assert about["importer"].startswith("KAZ") and about["model version"].startswith("import-substitution-SCO/")


def test_scenario_says_no_champion_only_without_one(tmp_path, monkeypatch, capsys):
    """The title line names the champion when there is one (above) and says "none (no champion)" only when there is not."""
    from recommender.bank.synthetic import WorldSpec
    from recommender.config import Config
    from recommender.demo import build_demo_bank

    cfg = Config(home=tmp_path / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.tiny(seed=3)))
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(cfg.home), "scenario", "--importer", "KAZ", "--cut", "CHN"])
    main()
    assert "model none (no champion)" in capsys.readouterr().out


def test_scenario_errors_are_clear(pipeline_home, monkeypatch, capsys):
    cfg, _ = pipeline_home
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(cfg.home), "scenario", "--importer", "USA", "--cut", "CHN"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "not a member of SCO" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["recommender", "--home", str(cfg.home), "scenario", "--importer", "KAZ", "--cut", "Atlantis"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "--cut: 'Atlantis' is neither a country nor a group" in capsys.readouterr().err
