"""Train → MLflow → registry → champion → recommend, on the tiny synthetic world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.errors import ModelError
from models.tasks import IMPORT_SUBSTITUTION, JOINT_PROJECTS
from recommender.errors import RecommenderError
from recommender.outputs.recommend import recommend
from recommender.pipeline import train_task

FAST = {"n_estimators": "60"}


@pytest.fixture(scope="module")
def home(pipeline_home):
    return pipeline_home


def test_run_is_logged_with_metrics_params_artifacts_and_inputs(home):
    cfg, outcomes = home
    client = MlflowClient(cfg.mlflow_uri)
    record = outcomes[IMPORT_SUBSTITUTION].record
    run = client.get_run(record.run_id)
    assert client.get_experiment(run.info.experiment_id).name == IMPORT_SUBSTITUTION
    metrics = run.data.metrics
    for key in (
        "test_ndcg_at_10",
        "test_ndcg_at_5",
        "test_map_at_10",
        "test_precision_at_10",
        "test_auc_pr",
        "baseline_momentum_test_ndcg_at_10",
        "baseline_export_potential_test_ndcg_at_10",
        "baseline_random_test_ndcg_at_10",
    ):
        assert key in metrics, key
    assert metrics["test_ndcg_at_10"] == pytest.approx(
        outcomes[IMPORT_SUBSTITUTION].evaluation.overall["model"]["ndcg_at_10"]
    )
    history = client.get_metric_history(record.run_id, "test_ndcg_at_10_by_year")
    assert sorted(m.step for m in history) == outcomes[IMPORT_SUBSTITUTION].evaluation.test_years
    params = run.data.params
    assert (
        params["task"] == IMPORT_SUBSTITUTION
        and params["bloc"] == "SCO"
        and params["horizon"] == "2"
    )
    assert "lgbm_learning_rate" in params and params["lgbm_n_estimators"] == "60"
    assert run.data.tags["bank_manifest_hash"] and run.data.tags["code_version"]
    assert "NDCG@10" in run.data.tags["mlflow.note.content"]
    artifacts = {a.path for a in client.list_artifacts(record.run_id)}
    assert {
        "feature_importance.png",
        "model_vs_baselines.png",
        "metric_by_year.png",
        "per_year_metrics.csv",
        "top_test_recommendations.csv",
        "features.csv",
    } <= artifacts
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {
        f"{IMPORT_SUBSTITUTION}-SCO-candidates",
        f"{IMPORT_SUBSTITUTION}-SCO-test",
    }


def test_model_registered_under_task_and_bloc_with_champion(home):
    cfg, outcomes = home
    client = MlflowClient(cfg.mlflow_uri)
    for task, outcome in outcomes.items():
        champion = client.get_model_version_by_alias(f"{task}-SCO", "champion")
        assert str(champion.version) == outcome.record.version and outcome.record.promoted
        assert "no champion yet" in outcome.record.decision


def test_champion_moves_only_when_beaten_on_the_same_test_years(home):
    cfg, outcomes = home
    client = MlflowClient(cfg.mlflow_uri)
    first = outcomes[JOINT_PROJECTS]
    same = train_task(cfg, JOINT_PROJECTS, horizon=2, overrides=FAST)  # identical: does not beat it
    assert not same.record.promoted and "champion stays" in same.record.decision
    assert (
        str(client.get_model_version_by_alias(f"{JOINT_PROJECTS}-SCO", "champion").version)
        == first.record.version
    )
    worse = train_task(cfg, JOINT_PROJECTS, horizon=2, overrides={"n_estimators": "1"}, seed=5)
    assert (
        not worse.record.promoted
        or worse.evaluation.overall["model"]["ndcg_at_10"]
        > first.evaluation.overall["model"]["ndcg_at_10"]
    )
    other_years = train_task(
        cfg, JOINT_PROJECTS, horizon=2, overrides=FAST, test_years=[first.evaluation.test_years[0]]
    )
    assert not other_years.record.promoted and "not comparable" in other_years.record.decision
    forced = train_task(cfg, JOINT_PROJECTS, horizon=2, overrides=FAST, promote=True)
    assert forced.record.promoted
    assert (
        str(client.get_model_version_by_alias(f"{JOINT_PROJECTS}-SCO", "champion").version)
        == forced.record.version
    )


def test_failed_logging_leaves_no_run_and_no_version(home, monkeypatch):
    cfg, _ = home
    client = MlflowClient(cfg.mlflow_uri)
    exp = client.get_experiment_by_name(IMPORT_SUBSTITUTION)
    runs_before = {r.info.run_id for r in client.search_runs([exp.experiment_id])}
    versions_before = {
        v.version for v in client.search_model_versions(f"name='{IMPORT_SUBSTITUTION}-SCO'")
    }
    import mlflow.lightgbm

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mlflow.lightgbm, "log_model", boom)
    with pytest.raises(OSError, match="disk full"):
        train_task(cfg, IMPORT_SUBSTITUTION, horizon=2, overrides=FAST)
    assert {r.info.run_id for r in client.search_runs([exp.experiment_id])} == runs_before
    assert {
        v.version for v in client.search_model_versions(f"name='{IMPORT_SUBSTITUTION}-SCO'")
    } == versions_before


def test_recommend_ranks_every_candidate_with_reasons(home):
    cfg, _ = home
    table, version = recommend(cfg, IMPORT_SUBSTITUTION)
    assert list(table.columns[:7]) == ["year", "importer", "supplier", "product", "score", "probability", "rank"]
    assert version.startswith(f"{IMPORT_SUBSTITUTION}-SCO/")
    assert table["probability"].between(0, 1).all()  # the champion's calibration, loaded from its run
    assert (table["importer"] != table["supplier"]).all()
    for _, group in table.groupby(["importer", "year"]):
        assert group.sort_values("rank")["score"].is_monotonic_decreasing
        assert group["rank"].min() == 1 and group["rank"].is_unique
    assert table["reasons"].str.len().gt(10).all()
    top = recommend(cfg, JOINT_PROJECTS, top=2, countries=["KAZ"])[0]
    assert (top["partner_a"] < top["partner_b"]).all() and top["rank"].max() <= 2
    assert ((top["partner_a"] == "KAZ") | (top["partner_b"] == "KAZ")).all()
    assert set(top["partner_a_name"]) | set(top["partner_b_name"]) >= {"Kazakhstan"}


def test_recommend_errors_are_clear(home):
    cfg, _ = home
    with pytest.raises(RecommenderError, match=r"--country 'USA' \(USA\) is not a member of SCO"):
        recommend(cfg, IMPORT_SUBSTITUTION, countries=["USA"])
    with pytest.raises(RecommenderError, match="--country: unknown country 'Atlantis'"):
        recommend(cfg, IMPORT_SUBSTITUTION, countries=["Atlantis"])
    with pytest.raises(RecommenderError, match="not in the data bank"):
        recommend(cfg, IMPORT_SUBSTITUTION, year=1990)
    with pytest.raises(ModelError, match="no champion model 'import-substitution-KAZ-UZB'"):
        recommend(cfg.with_bloc("KAZ,UZB"), IMPORT_SUBSTITUTION)


def test_scores_are_finite(home):
    cfg, _ = home
    table, _ = recommend(cfg, JOINT_PROJECTS)
    assert np.isfinite(table["score"]).all() and len(table) > 0


def test_logged_dataset_schema_equals_mlflows_full_inference():
    from mlflow.types.utils import _infer_schema

    from models.tracking import dataset

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"importer": ["KAZ"] * 400, "product": [f"{i:06d}" for i in range(400)],
                          "rca": rng.random(400), "density": rng.random(400), "relevance": rng.integers(0, 3, 400).astype(float)})
    frame.loc[350, "density"] = np.nan  # missing only far beyond the first rows: must still be optional
    frame.loc[399, "relevance"] = np.nan
    fast = dataset(frame, "t").schema
    assert fast == _infer_schema(frame)
    assert [c.required for c in fast.inputs] == [True, True, True, False, False]


@pytest.mark.parametrize("case", ["strings", "missing_string", "late_non_string", "categorical", "pandas_string"])
def test_logged_dataset_digest_equals_mlflows(case):
    """models.tracking.pandas_digest is MLflow's compute_pandas_digest, without type() of every value."""
    from mlflow.data.digest_utils import compute_pandas_digest

    from models.tracking import pandas_digest

    rng = np.random.default_rng(1)
    n = 12_000  # beyond MLflow's 10,000 hashed rows: the string test reads every row, the hash the first ones
    frame = pd.DataFrame({"importer": rng.choice(["KAZ", "UZB", "CHN"], n), "product": [f"{i:06d}" for i in range(n)],
                          "rca": rng.random(n), "flag": rng.random(n) > 0.5, "year": np.full(n, 2010),
                          "relevance": rng.integers(0, 3, n).astype(float)})
    if case == "missing_string":
        frame.loc[11_500, "importer"] = None
    if case == "late_non_string":  # a non-string value after the hashed rows changes the digest
        frame["product"] = frame["product"].astype(object)
        frame.loc[11_999, "product"] = 7
    if case == "categorical":
        frame["importer"] = frame["importer"].astype("category")
    if case == "pandas_string":
        frame["importer"] = frame["importer"].astype("string")
    assert pandas_digest(frame) == compute_pandas_digest(frame)


def test_disk_full_at_every_write_of_a_train_leaves_no_finished_run_and_no_version(tmp_path, monkeypatch):
    """Issue 31: ENOSPC raised at each write that recording a training makes through Python's file API (the charts
    and tables, their copies into the artifact store, the model's files and theirs: 34 for import substitution), one
    trial each, on the arguments of a real `train`. Every trial fails with "No space left on device"; afterwards no
    active run is new, no model version, no logged model READY that was not before, the champion unchanged; with
    space back the same call completes. (SQLite's own writes are C-level and not injected; the feature cache's
    writes are staged and tested in test_scale.py.)"""
    import builtins
    import errno
    import io

    import recommender.pipeline.training as training
    from recommender.bank.synthetic import WorldSpec
    from recommender.config import Config
    from recommender.demo import build_demo_bank

    cfg = Config(home=tmp_path / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.tiny(seed=7)))
    train_task(cfg, IMPORT_SUBSTITUTION, horizon=2, overrides=FAST)
    client = MlflowClient(cfg.mlflow_uri)
    name = f"{IMPORT_SUBSTITUTION}-SCO"
    exp = client.get_experiment_by_name(IMPORT_SUBSTITUTION).experiment_id
    log_training, call = training.log_training, {}

    def recorded(*args, **kwargs):  # keep the arguments of a real train's recording step
        call.update(args=args, kwargs=kwargs)
        return log_training(*args, **kwargs)

    monkeypatch.setattr(training, "log_training", recorded)
    train_task(cfg, IMPORT_SUBSTITUTION, horizon=2, overrides=FAST)

    def state():
        return ({(r.info.run_id, r.info.status) for r in client.search_runs([exp])},
                sorted(v.version for v in client.search_model_versions(f"name='{name}'")),
                client.get_model_version_by_alias(name, "champion").version)

    def ready():
        return {m.model_id for m in client.search_logged_models([exp]) if str(m.status).endswith("READY")}

    real, writes, full_at = io.open, [0], [0]

    def disk(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and any(c in mode for c in "wax+"):
            writes[0] += 1
            if writes[0] == full_at[0]:
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", disk)
    monkeypatch.setattr(io, "open", disk)
    log_training(*call["args"], **call["kwargs"])  # counting: the writes one recording makes
    total = writes[0]
    assert total >= 30, total
    before, models = state(), ready()
    for k in range(1, total + 1):
        writes[0], full_at[0] = 0, k
        with pytest.raises(OSError, match="No space left on device"):
            log_training(*call["args"], **call["kwargs"])
        assert state() == before and ready() <= models, f"write {k} of {total}"
    full_at[0] = 0
    log_training(*call["args"], **call["kwargs"])  # space back: it completes
    runs, versions, _ = state()
    assert len(versions) == len(before[1]) + 1 and sum(status == "FINISHED" for _, status in runs) == len(before[0]) + 1
