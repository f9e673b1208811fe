"""The Dask engine: on a LocalCluster of two workers, and on real ``dask scheduler`` / ``dask worker`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import tasks
from models.engine import LocalEngine, open_engine
from models.ranker import load_params
from recommender.bank import DataBank
from recommender.bank.synthetic import WorldSpec
from recommender.config import Config
from recommender.demo import build_demo_bank
from recommender.pipeline.datasets import FeatureCache, task_table
from tests.dask_processes import dask_cluster

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Config:
    cfg = Config(home=tmp_path_factory.mktemp("dask") / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.demo()))  # 40 × 300 × 16: on a tiny world NDCG@10 moves by 0.02 with any tree
    return cfg


def _params(run_id: str, cfg: Config) -> dict:
    return cfg.store.client().get_run(run_id).data.params


def test_a_worker_holds_its_part_once():
    """What a worker receives reaches LightGBM without a copy: ``lightgbm.dask``'s concatenation of the
    one part is a view, and so is LightGBM's float64 matrix of it (a copy per worker was the excess
    over 8 GB of the BACI-scale Dask fit)."""
    import pickle

    from lightgbm.basic import _data_from_pandas, _np2d_to_np1d
    from lightgbm.dask import _concat

    from models.engine import worker_part

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=500), "b": rng.integers(0, 5, size=500).astype(np.int8),
                          "c": rng.normal(size=500)})
    table.loc[7, "a"] = np.nan
    rows = np.arange(499, -1, -2)
    part = pickle.loads(pickle.dumps(worker_part(table, ["a", "b", "c"], rows)))  # as scattered to a worker
    block = part.to_numpy(dtype=np.float64, copy=False)
    assert np.shares_memory(block, part.to_numpy(dtype=np.float64, copy=False))  # one block, read in place
    matrix = _data_from_pandas(_concat([part]), "auto", "auto", None)[0]
    flat, _ = _np2d_to_np1d(matrix)
    assert np.shares_memory(flat, block)
    expected = table[["a", "b", "c"]].to_numpy(dtype=np.float64)[rows]
    np.testing.assert_array_equal(matrix, expected)  # NaN stays NaN, in the rows' order


def test_local_cluster_same_features_ndcg_within_001_and_scores(home: Config, tmp_path: Path):
    """LocalCluster of 2 workers: features identical, map_partitions scores exact, NDCG@10 within 0.01.

    A two-machine fit is not the local one: in LightGBM's data-parallel learning each machine finds
    the bin boundaries of its share of the features from its own rows. With bagging and column
    sampling off (here) that is the only difference: 0.5334 against the local 0.5386. Before the
    ranks were fixed (:class:`models.engine.RankedClient`) each fold fit took one of two rank
    orders, giving four results (0.5334, 0.5408, 0.5408, 0.5483), and the test needed 0.02; it now
    checks the issue's 0.01. That the engine's plumbing (parts, labels, query groups, early
    stopping) is exact is the one-worker test below.
    """
    from recommender.pipeline import load_model, train_task

    cfg = home
    bank = DataBank(cfg.bank_dir)
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=2)
    options = {"horizon": 2, "n_resamples": 50,
               "overrides": {"n_estimators": "40", "subsample": "1.0", "colsample_bytree": "1.0"}}
    local = train_task(cfg, tasks.JOINT_PROJECTS, **options)
    local_table = task_table(bank, FeatureCache(cfg.feature_dir), spec, cfg.bloc.members, product_level=6).table
    with open_engine("dask", workers=2) as engine:
        assert engine.workers == 2
        # features: every year a Dask task on the workers, into a store of its own
        lines: list[str] = []
        built = task_table(bank, FeatureCache(tmp_path / "features"), spec, cfg.bloc.members, product_level=6,
                           engine=engine, log=lines.append)
        assert not built.reused
        done = [line for line in lines if "done on dask" in line]  # progress: one line per year as it finishes
        assert len(done) == len(bank.years("trade")) and done[-1].count(f"({len(done)} of {len(done)})") == 1
        pd.testing.assert_frame_equal(built.table, local_table)
        distributed = train_task(cfg, tasks.JOINT_PROJECTS, engine=engine, **options)
        # scoring with map_partitions: the same booster gives the local scores exactly
        features = local.evaluation.features
        booster = load_model(cfg, tasks.JOINT_PROJECTS, f"models:/{local.record.model_name}/{local.record.version}").booster
        np.testing.assert_array_equal(engine.predict(booster, local_table, features),
                                      LocalEngine().predict(booster, local_table, features))
    a, b = (run.evaluation.overall["model"]["ndcg_at_10"] for run in (local, distributed))
    assert abs(a - b) <= 0.01, (a, b, [f.best_iteration for f in local.evaluation.folds],
                                [f.best_iteration for f in distributed.evaluation.folds])
    params = _params(distributed.record.run_id, cfg)
    assert params["engine"] == "dask" and params["engine_workers"] == "2"
    assert params["feature_cache_misses"] == "0"  # the local run built the same table
    assert _params(local.record.run_id, cfg)["feature_cache_hits"] == "0"
    assert _params(local.record.run_id, cfg)["engine"] == "local"


def _fold(cfg: Config) -> tuple:
    """The demo world's joint-projects table split as a fold: train before the last labelled year, validate on it."""
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=2)
    table = task_table(DataBank(cfg.bank_dir), FeatureCache(cfg.feature_dir), spec, cfg.bloc.members,
                       product_level=6).table
    labelled = table[table["relevance"].notna()]
    years = sorted(labelled["year"].unique())
    return spec, table, spec.feature_columns(table), labelled[labelled["year"] < years[-1]], labelled[labelled["year"] == years[-1]]


def test_a_dask_fit_is_reproducible(home: Config):
    """The same rows and seed give the same model on every fit, bagging and column sampling included.

    ``lightgbm.dask`` ranks the workers in the order ``Client.who_has`` lists the parts, which
    ``distributed`` takes from a set of keys; the rank decides which rows bin which features, so
    fits alternated between two models (eight fits in one process: two distinct predictions).
    :class:`models.engine.RankedClient` lists them as asked. Checked twice: the order itself, over
    thirty futures (a set would list them so by chance once in 30 factorial), and four fits' predictions.
    """
    from models.engine import RankedClient

    spec, table, features, train, valid = _fold(home)
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": "30"})  # shipped bagging and sampling
    with open_engine("dask", workers=2) as engine:
        futures = engine.client.scatter([f"part {i}" for i in range(30)])
        assert list(RankedClient(engine.client).who_has(futures)) == [f.key for f in futures]
        predictions = [engine.fit(train, valid, features, spec, params, seed=5).predict(table[features])
                       for _ in range(4)]
    for other in predictions[1:]:
        np.testing.assert_array_equal(other, predictions[0])


def test_one_worker_fit_is_the_local_fit(home: Config):
    """On one worker LightGBM's data-parallel learner is the serial one, so the Dask fit must predict
    exactly as the local fit on the same rows, and its early-stopping round (from the validation
    curve, as lightgbm.dask has no early stopping) must be the one LightGBM's callback keeps."""
    spec, table, features, train, valid = _fold(home)
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": "150"})
    local = LocalEngine().fit(train, valid, features, spec, params, seed=3)
    with open_engine("dask", workers=1) as engine:
        assert engine.workers == 1
        distributed = engine.fit(train, valid, features, spec, params, seed=3)
    assert 0 < local.best_iteration < 150  # early stopping acted, so the comparison below covers it
    assert distributed.best_iteration == local.best_iteration
    np.testing.assert_array_equal(distributed.predict(table[features]), local.predict(table[features]))


def test_weighted_rows_fit_on_one_worker_as_locally(home: Config):
    """Row weights (a world-trained task's sampled negatives) reach the workers with their rows: on one
    worker the weighted Dask fit predicts exactly as the weighted local fit, and differs from the unweighted."""
    from models.tasks import WEIGHT

    spec, table, features, train, valid = _fold(home)
    train = train.assign(**{WEIGHT: np.random.default_rng(0).choice([1.0, 3.0], len(train))})
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": "40"})
    local = LocalEngine().fit(train, None, features, spec, params, seed=3)
    with open_engine("dask", workers=1) as engine:
        distributed = engine.fit(train, None, features, spec, params, seed=3)
    np.testing.assert_array_equal(distributed.predict(table[features]), local.predict(table[features]))
    plain = LocalEngine().fit(train.drop(columns=WEIGHT), None, features, spec, params, seed=3)
    assert not np.array_equal(plain.predict(table[features]), local.predict(table[features]))


def test_small_scale_benchmark_on_both_engines_through_a_real_scheduler(tmp_path: Path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; the scale benchmark's pipeline
    (BACI CSVs per year, ingest, train and recommend import substitution) locally and through --scheduler."""
    from benchmarks import bench_scale

    with dask_cluster(tmp_path) as address:
        result = bench_scale.run("test", dask=True, scheduler=address, work=tmp_path / "bench", save=False)
        log = (tmp_path / "bench" / "steps.log").read_text()
        assert f"dask (2 worker(s) at {address})" in log
        assert result["same_candidate_counts"] == {"import-substitution": True}, result
        for engine in ("local", "dask"):
            for step in result[engine].values():
                assert step["seconds"] > 0 and step["peak_rss_gb"] > 0 and step["peak_during"]
        assert result["local"]["train_import-substitution"]["candidates"] > 0
        assert result["ingest_rows_per_s"] > 0 and result["flows"] > 50_000
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        refused = subprocess.run([BIN / "recommender", "--home", str(tmp_path / "bench" / "home-dask"), "train", "--task",
                                  "import-substitution", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"],
                                 env=env, capture_output=True, text=True, timeout=600)
        assert refused.returncode == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in refused.stderr
