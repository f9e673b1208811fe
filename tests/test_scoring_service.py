"""The resident scoring service (``recommender scoring-service``) and ``recommender score --service``, as processes.

Each test starts the real service on 127.0.0.1 and runs the real CLI against it; readiness is waited for
with generous timeouts, never a fixed sleep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from recommender.config import Config
from tests.scoring_service import ScoringServiceProcess


def _cli(cfg: Config, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECOMMENDER_SCORING"))}
    proc = subprocess.run([sys.executable, "-m", "recommender", "--home", str(cfg.home), *map(str, args)],
                          capture_output=True, text=True, timeout=1800, env={**env, "COLUMNS": "200"})
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def served(pipeline_home, tmp_path_factory):
    cfg, _ = pipeline_home
    folder = tmp_path_factory.mktemp("service")
    pool = folder / "pool.csv"
    _cli(cfg, "recommend", "--task", "import-substitution", "--output", pool)
    service = ScoringServiceProcess(cfg.home, folder / "service.log", "--preload", "import-substitution")
    try:
        yield cfg, service, pd.read_csv(pool, dtype=str)[["importer", "supplier", "product"]]
    finally:
        service.stop()


def test_the_service_scores_exactly_what_the_cli_scores_and_records_the_run(served, tmp_path):
    cfg, service, pool = served
    projects = tmp_path / "projects.csv"
    pool.sample(300, replace=True, random_state=3).to_csv(projects, index=False)
    _cli(cfg, "score", projects, "--task", "import-substitution", "--output", tmp_path / "local.csv")
    for attempt in range(2):  # the second answer comes from the scorer the first one used
        proc = _cli(cfg, "score", projects, "--task", "import-substitution", "--output", tmp_path / f"served{attempt}.csv",
                    "--service", service.url)
        assert f"on {service.url}" in proc.stdout and "recorded in MLflow as run" in proc.stdout
        assert (tmp_path / f"served{attempt}.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    run_id = proc.stdout.split("recorded in MLflow as run ")[1].split()[0]
    from mlflow import MlflowClient

    client = MlflowClient(cfg.mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["rows"] == "300"
    assert run.data.params["input"] == str(projects.absolute())  # the analyst's file, not the service's copy of it
    stored = Path(client.download_artifacts(run_id, "served1.csv", str(tmp_path)))
    assert stored.read_bytes() == (tmp_path / "local.csv").read_bytes()


def test_a_list_that_does_not_validate_is_one_sentence_about_the_analysts_file_and_nothing_written(served, tmp_path):
    cfg, service, _ = served
    bad = tmp_path / "bad.csv"
    bad.write_text("importer,supplier,product\nKAZ,XXX,01\n")
    proc = _cli(cfg, "score", bad, "--task", "import-substitution", "--output", tmp_path / "out.csv", "--service", service.url,
                check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did not score bad.csv: bad.csv: rejected" in proc.stderr and "unknown country 'XXX'" in proc.stderr
    assert str(cfg.home / "service") not in proc.stderr and not (tmp_path / "out.csv").exists()
    missing = _cli(cfg, "score", bad, "--task", "joint-projects", "--bloc", "ASEAN", "--output", tmp_path / "out.csv",
                   "--service", service.url, check=False)
    assert missing.returncode == 2 and "no champion model 'joint-projects-ASEAN'" in missing.stderr
    assert not list((cfg.home / "service").glob("request-*"))  # the service kept nothing of either request


def test_without_a_service_the_client_says_so_in_one_sentence(pipeline_home, tmp_path):
    from tests.postgres import free_port

    cfg, _ = pipeline_home
    projects = tmp_path / "p.csv"
    projects.write_text("importer,supplier,product\n")
    proc = _cli(cfg, "score", projects, "--task", "import-substitution", "--output", tmp_path / "o.csv",
                "--service", f"http://127.0.0.1:{free_port()}", check=False)
    assert proc.returncode == 2 and "cannot reach the scoring service" in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1 and not (tmp_path / "o.csv").exists()


def test_a_list_over_the_body_limit_is_refused_and_the_service_dying_mid_request_leaves_no_file(pipeline_home, served, tmp_path):
    cfg, _, pool = served
    big = tmp_path / "big.csv"
    pool.sample(120_000, replace=True, random_state=5).to_csv(big, index=False)
    assert big.stat().st_size > 2**20
    service = ScoringServiceProcess(cfg.home, tmp_path / "small.log", "--max-body-mb", "1")
    try:
        proc = _cli(cfg, "score", big, "--task", "import-substitution", "--output", tmp_path / "o.csv", "--service",
                    service.url, check=False)
        assert proc.returncode == 2 and "over this service's limit of 1 MB (--max-body-mb)" in proc.stderr
        assert not (tmp_path / "o.csv").exists()
    finally:
        service.stop()

    service = ScoringServiceProcess(cfg.home, tmp_path / "dies.log")
    client = subprocess.Popen([sys.executable, "-m", "recommender", "--home", str(cfg.home), "score", big, "--task",
                               "import-substitution", "--output", tmp_path / "o.csv", "--service", service.url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not list((cfg.home / "service").glob("request-*/in/big.csv")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the list has reached the service: it is scoring
    service.kill()
    out, err = client.communicate(timeout=600)
    assert client.returncode == 2 and "Traceback" not in err, err
    assert "the scoring service at" in err and "nothing was written" in err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv.*"))


def test_the_service_reuses_a_scorer_until_the_bank_changes(pipeline_home, tmp_path):
    """In process: the second list is served from the first one's scorer; a new bank snapshot (an ingest)
    is a new scorer, so no answer comes from a bank that is no longer live."""
    import shutil

    from recommender.bank import DataBank
    from recommender.bank.ingest import ingest_product_names
    from recommender.service.app import ScoreRequest, ScoringService

    source, _ = pipeline_home
    cfg = Config(home=tmp_path / "home")
    shutil.copytree(source.home, cfg.home)
    candidates = pd.DataFrame({"importer": ["KAZ", "UZB"], "supplier": ["CHN", "RUS"], "product": ["040110", "060110"]})
    projects = tmp_path / "p.csv"
    candidates.to_csv(projects, index=False)
    service = ScoringService(cfg)

    def score(name: str):
        return service.score(ScoreRequest("import-substitution", projects, tmp_path / name))

    first, second = score("a.csv"), score("b.csv")
    assert (first.cached, second.cached) == (False, True) and first.run_id != second.run_id
    names = tmp_path / "names.csv"
    pd.DataFrame({"product": ["040110"], "name": ["Live animals, renamed"]}).to_csv(names, index=False)
    ingest_product_names(DataBank(cfg.bank_dir), names)
    third = score("c.csv")
    assert not third.cached and len(service.status()["scorers"]) == 2
    assert "Live animals, renamed" in (tmp_path / "c.csv").read_text() and "Live animals, renamed" not in (tmp_path / "b.csv").read_text()
