"""The user's moments through the real CLI: demo, train, recommend, score, ui (tiny world)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

from recommender.bank import DataBank
from tests.conftest import bank_state


def run(home, *args, check=True, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "recommender", "--home", str(home), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env={"COLUMNS": "160", **_env()})
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return proc


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("cli") / "home"
    proc = run(home, "demo", "--size", "tiny")
    return home, proc.stdout


def test_demo_trains_the_three_tasks_and_recommends(demo_home):
    _, out = demo_home
    for text in ("ingest trade:", "Data bank", "Train import-substitution", "Train joint-projects", "Train diversification",
                 "model vs baselines", "NDCG@10: model", "pooled AP: model", "Top recommendations for KAZ (diversification)", "lift over the best baseline", "Top recommendations for KAZ", "Brief", "brief-KAZ.html", "recommender ui"):
        assert text in out, text


def test_demo_twice_reuses_the_trained_champions_and_leaves_the_bank_alone(demo_home):
    home, _ = demo_home
    bank = DataBank(home / "bank")
    before = bank_state(bank)
    out = run(home, "demo", "--size", "tiny").stdout
    assert out.count("reusing the champion") == 3 and "ingest trade: unchanged" in out
    assert bank_state(bank) == before
    info = json.loads(run(home, "bank", "info", "--json").stdout)
    assert set(info) >= {"trade", "capacity", "geography", "products", "sources", "manifest_hash"}
    assert set(info["trade"]) >= {"rows", "years", "exporters", "importers", "products", "value_usd_by_year"}
    assert sum(info["trade"]["value_usd_by_year"].values()) > 0
    assert info["capacity"]["indicators"]["value_added"]["countries"] == 16
    versions = json.loads(run(home, "models", "--json").stdout)
    assert sorted((v["model"], v["status"]) for v in versions) == [("diversification-SCO", "champion"),
                                                                   ("import-substitution-SCO", "champion"),
                                                                   ("joint-projects-SCO", "champion")]


def test_recommend_writes_every_candidate(demo_home, tmp_path):
    home, _ = demo_home
    out = tmp_path / "rec.parquet"
    proc = run(home, "recommend", "--task", "import-substitution", "--output", out)
    table = pd.read_parquet(out)
    assert list(table.columns[:7]) == ["year", "importer", "supplier", "product", "score", "probability", "rank"]
    assert table["product"].str.fullmatch(r"\d{6}").all() and "wrote" in proc.stdout
    assert table.groupby(["importer", "year"])["rank"].min().eq(1).all()
    jp = tmp_path / "jp.csv"
    run(home, "recommend", "--task", "joint-projects", "--top", "2", "--output", jp)
    jp_table = pd.read_csv(jp, dtype={"product": str})
    assert list(jp_table.columns[:7]) == ["year", "partner_a", "partner_b", "product", "score", "probability", "rank"]
    assert jp_table["rank"].max() == 2
    div = tmp_path / "div.csv"
    run(home, "recommend", "--task", "diversification", "--country", "KAZ", "--output", div)
    div_table = pd.read_csv(div, dtype={"product": str, "partner": str}, keep_default_na=False)
    assert list(div_table.columns[:10]) == ["year", "country", "product", "score", "probability", "rank", "partner",
                                            "partner_rca", "market_usd", "reasons"]
    assert (div_table["country"] == "KAZ").all() and div_table["rank"].min() == 1
    named = div_table[div_table["partner"] != ""]
    assert len(named) and named["partner"].isin(["BLR", "CHN", "IND", "IRN", "KGZ", "PAK", "RUS", "TJK", "UZB"]).all()
    assert (pd.to_numeric(named["partner_rca"]) >= 1).all()  # the partner exports it competitively
    assert div_table["probability"].nunique() > 10  # smooth calibration: not a handful of steps


def test_recommend_takes_names_and_products_and_prints_json_and_full_width(demo_home, tmp_path):
    """Off a terminal (this pipe) the table prints whole, never cut with "…"; --json prints the same rows as data;
    --country and --product take names and codes at any level."""
    home, _ = demo_home
    proc = run(home, "recommend", "--task", "diversification", "--country", "Kazakhstan", "--top", "3")
    assert "…" not in proc.stdout and "Kazakhstan (KAZ)" in proc.stdout
    # in a log, one quiet line per stage (a spinner on a terminal)
    assert "recommend diversification: features and scores of every diversification candidate (" in proc.stderr
    assert "recommend diversification: reasons for 3 rows" in proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) > 160  # wider than COLUMNS: nothing cut
    data = json.loads(run(home, "recommend", "--task", "diversification", "--country", "Kazakhstan", "--top", "3",
                          "--json").stdout)
    assert data["model_version"].startswith("diversification-SCO/") and len(data["rows"]) == 3
    assert {r["country"] for r in data["rows"]} == {"KAZ"} and [r["rank"] for r in data["rows"]] == [1, 2, 3]
    chapter = data["rows"][0]["product"][:2]
    only = json.loads(run(home, "recommend", "--task", "diversification", "--product", chapter, "--json").stdout)["rows"]
    assert only and all(r["product"].startswith(chapter) for r in only)  # a chapter stands for its codes
    bad = run(home, "recommend", "--task", "diversification", "--country", "Korea", check=False)
    assert bad.returncode == 2 and "ambiguous country 'Korea'" in bad.stderr


def test_score_a_diversification_list_of_country_and_product(demo_home, tmp_path):
    """(country, product[, partner]) proposals: partner passes through as written; keys are (country, product)."""
    home, _ = demo_home
    products = DataBank(home / "bank").read("products")["product"].tolist()
    path = tmp_path / "capacities.csv"
    pd.DataFrame({"country": ["KAZ", "uzb", "KAZ"], "product": products[:3], "partner": ["RUS", "", "CHN"]}).to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    proc = run(home, "score", str(path), "--task", "diversification", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(table.columns[:3]) == ["country", "product", "partner"] and len(table) == 3
    assert table["partner"].tolist() == ["RUS", "", "CHN"] and sorted(table["rank"].astype(int)) == [1, 2, 3]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"country": ["USA"], "product": products[:1]}).to_csv(bad, index=False)
    proc = run(home, "score", str(bad), "--task", "diversification", "--output", str(tmp_path / "x.csv"), check=False)
    assert proc.returncode == 2 and "outside the bloc" in proc.stderr and not (tmp_path / "x.csv").exists()


def _projects(bank: DataBank, tmp_path, n_extra: int = 0):
    products = bank.read("products")["product"].tolist()
    rows = [("P1", "=cmd|' /C calc'!A0", "KAZ", "RUS", products[0], "12"),
            ("P2", "Steel", "uzb", "KAZ", products[1], "40"),
            ("P3", "Cars", "KAZ", "CHN", products[2], "3"),
            ("P4", "again", "KAZ", "RUS", products[0], "1")]
    frame = pd.DataFrame(rows, columns=["project_id", "name", "importer", "supplier", "product", "capex_musd"])
    path = tmp_path / "projects.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_score_keeps_columns_and_adds_results(demo_home, tmp_path):
    home, _ = demo_home
    path, frame = _projects(DataBank(home / "bank"), tmp_path)
    out = tmp_path / "scored.csv"
    proc = run(home, "score", path, "--task", "import-substitution", "--output", out)
    scored = pd.read_csv(out, dtype=str)
    assert list(scored.columns) == [*frame.columns, "matched_importer", "importer_name", "matched_supplier", "supplier_name",
                                    "matched_product", "product_name", "match", "country_match", "score", "probability",
                                    "rank", "rank_in_query", "percentile", "reasons", "model_version"]
    assert scored["matched_importer"].tolist() == ["KAZ", "UZB", "KAZ", "KAZ"]  # "uzb" read as UZB
    assert scored["importer_name"][0] == "Kazakhstan" and (scored["match"] == "exact").all()
    assert (scored["country_match"] == "code, code").all()
    assert scored["product"].tolist() == frame["product"].tolist()  # codes untouched, leading zeros kept
    assert scored["importer"].tolist() == frame["importer"].tolist()
    assert scored["name"][0].startswith("'=")  # spreadsheet formula neutralised
    assert sorted(scored["rank"].astype(int)) == [1, 2, 3, 4]
    assert scored["score"][0] == scored["score"][3]  # same project, same score
    probability = scored["probability"].astype(float)
    assert probability.between(0, 1).all()
    # rank orders the file by calibrated probability (comparable across importers)
    assert probability[scored["rank"].astype(int).sort_values().index].is_monotonic_decreasing
    # rank_in_query: the model's order among the rows of the same importer (KAZ ×3, UZB ×1)
    kaz = scored[scored["importer"].str.upper() == "KAZ"]
    assert sorted(kaz["rank_in_query"].astype(int)) == [1, 2, 3]
    assert kaz.sort_values("rank_in_query")["score"].astype(float).is_monotonic_decreasing
    assert scored.loc[scored["importer"].str.upper() == "UZB", "rank_in_query"].astype(int).tolist() == [1]
    assert scored["percentile"].astype(float).between(0, 100).all()
    assert scored["model_version"].str.startswith("import-substitution-SCO/").all()
    assert "repeat" in proc.stderr and "recorded in MLflow" in proc.stdout


@pytest.mark.parametrize("bad, message", [
    ({"importer": "USA"}, "outside the bloc"),
    ({"supplier": "XXQ"}, "supplier: unknown country 'XXQ'"),
    ({"product": "999999"}, "not in the data bank"),
])
def test_score_rejects_bad_rows_without_output(demo_home, tmp_path, bad, message):
    home, _ = demo_home
    path, frame = _projects(DataBank(home / "bank"), tmp_path)
    for col, value in bad.items():
        frame.loc[2, col] = value
    frame.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    proc = run(home, "score", path, "--task", "import-substitution", "--output", out, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "line(s) 4" in proc.stderr
    assert not out.exists()


def test_a_list_beyond_the_row_limit_is_refused_before_any_work(demo_home, tmp_path, monkeypatch):
    home, _ = demo_home
    path, frame = _projects(DataBank(home / "bank"), tmp_path)  # 4 rows
    out = tmp_path / "scored.csv"
    monkeypatch.setenv("RECOMMENDER_MAX_ROWS", "3")
    proc = run(home, "score", path, "--task", "import-substitution", "--output", out, check=False)
    assert proc.returncode == 2 and "more than 3 rows, the most one scoring request takes" in proc.stderr
    assert "split the list" in proc.stderr and "Traceback" not in proc.stderr and not out.exists()
    monkeypatch.setenv("RECOMMENDER_MAX_ROWS", "a lot")
    proc = run(home, "score", path, "--task", "import-substitution", "--output", out, check=False)
    assert proc.returncode == 2 and "give a positive whole number" in proc.stderr and not out.exists()
    monkeypatch.setenv("RECOMMENDER_MAX_ROWS", "4")  # at the limit: scored
    run(home, "score", path, "--task", "import-substitution", "--output", out)
    assert len(pd.read_csv(out)) == len(frame)


def test_score_rejects_missing_columns_and_empty_files(demo_home, tmp_path):
    home, _ = demo_home
    path = tmp_path / "p.csv"
    pd.DataFrame({"importer": ["KAZ"], "product": ["010110"]}).to_csv(path, index=False)
    proc = run(home, "score", path, "--task", "import-substitution", check=False)
    assert proc.returncode == 2 and "['supplier'] missing" in proc.stderr
    path.write_text("partner_a,partner_b,product\n")
    proc = run(home, "score", path, "--task", "joint-projects", check=False)
    assert proc.returncode == 2 and "no project rows" in proc.stderr


def test_recommend_without_a_model_says_how_to_train(tmp_path):
    proc = run(tmp_path / "empty", "recommend", "--task", "joint-projects", check=False)
    assert proc.returncode == 2 and "recommender train --task joint-projects" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_tracking_store_on_loopback(demo_home):
    home, _ = demo_home
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "recommender", "--home", str(home), "ui", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
    try:
        deadline = time.time() + 90
        body = ""
        while time.time() < deadline:
            try:
                url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=50"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    body = resp.read().decode()
                    break
            except OSError:
                time.sleep(1)
        assert "import-substitution" in body and "joint-projects" in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_train_json_is_the_outcome_alone_on_stdout(tmp_path):
    """--json: stdout is one JSON document (progress and logs go to stderr), with the metrics the table shows."""
    from recommender.bank.synthetic import WorldSpec
    from recommender.config import Config
    from recommender.demo import build_demo_bank

    home = tmp_path / "home"
    list(build_demo_bank(Config(home=home), spec=WorldSpec.tiny(seed=5)))
    proc = run(home, "train", "--task", "joint-projects", "--horizon", "2", "--seeds", "1", "--param", "n_estimators=30", "--json")
    data = json.loads(proc.stdout)
    assert data["model"] == "joint-projects-SCO" and data["version"] == "1" and data["promoted"] is True
    assert data["decision_metric"] == "ndcg_at_10" and set(data["overall"]) >= {"model", "random"}
    assert 0 <= data["overall"]["model"]["ndcg_at_10"] <= 1 and set(data["by_year"]) == {str(y) for y in data["test_years"]}
    assert "train joint-projects" in proc.stderr
