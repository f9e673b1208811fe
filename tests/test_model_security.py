"""`--model-uri` never runs foreign code: only native LightGBM boosters from the project's own store load."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pytest

from models.errors import ModelError, UnsafeModelError
from models.loading import read_native_booster
from models.tasks import IMPORT_SUBSTITUTION
from recommender.outputs.recommend import recommend


class Payload(mlflow.pyfunc.PythonModel):
    """A pickled model whose unpickling writes ``marker``: what an attacker would ship."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))

    def predict(self, context, model_input):  # pragma: no cover - never reached
        return model_input


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recommender", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory) -> tuple[Path, Path]:
    """A pickle-flavoured MLflow model on disk, and the file its loading would create."""
    folder = tmp_path_factory.mktemp("evil")
    marker = folder / "pwned.txt"
    mlflow.pyfunc.save_model(str(folder / "model"), python_model=Payload(str(marker)), pip_requirements=["mlflow"])
    assert not marker.exists()
    return folder / "model", marker


def test_the_payload_really_runs_code_when_mlflow_loads_it(evil_model, tmp_path):
    """Sanity check of the threat: MLflow's own loader executes the payload (in a throw-away copy)."""
    model, _ = evil_model
    marker = tmp_path / "proof.txt"
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=Payload(str(marker)), pip_requirements=["mlflow"])
    with contextlib.suppress(Exception):  # the payload returns None, so loading then fails: too late
        mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("form", ["{path}", "file://{path}", "http://127.0.0.1:9/model", "s3://bucket/model",
                                  "models:/../../etc", "runs:/not-a-run/model"])
def test_uris_outside_the_store_are_refused(pipeline_home, evil_model, form):
    cfg, _ = pipeline_home
    model, marker = evil_model
    with pytest.raises(UnsafeModelError, match="not accepted"):
        recommend(cfg, IMPORT_SUBSTITUTION, model_uri=form.format(path=model))
    assert not marker.exists()


def test_cli_refuses_a_path_with_one_clear_message(pipeline_home, evil_model):
    cfg, _ = pipeline_home
    model, marker = evil_model
    for command in (["recommend", "--task", IMPORT_SUBSTITUTION], ["score", str(model / "MLmodel"), "--task", IMPORT_SUBSTITUTION]):
        proc = _cli(cfg.home, *command, "--model-uri", str(model))
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "not accepted" in proc.stderr
    assert not marker.exists()


def test_pickled_models_in_the_store_are_refused(pipeline_home, tmp_path):
    """Even a model registered in the project's own store is loaded only if it is a native booster."""
    cfg, _ = pipeline_home
    marker = tmp_path / "pwned.txt"
    with cfg.store.active() as client, \
            mlflow.start_run(experiment_id=client.get_experiment_by_name(IMPORT_SUBSTITUTION).experiment_id) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Payload(str(marker)),
                                       registered_model_name=f"{IMPORT_SUBSTITUTION}-SCO", pip_requirements=["mlflow"])
    for uri in (f"models:/{IMPORT_SUBSTITUTION}-SCO/{info.registered_model_version}", f"runs:/{run.info.run_id}/model"):
        with pytest.raises(UnsafeModelError, match="only native LightGBM"):
            recommend(cfg, IMPORT_SUBSTITUTION, model_uri=uri)
        proc = _cli(cfg.home, "score", "missing.csv", "--task", IMPORT_SUBSTITUTION, "--model-uri", uri)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not marker.exists()
    client.delete_model_version(f"{IMPORT_SUBSTITUTION}-SCO", info.registered_model_version)


def test_flavour_checks(tmp_path):
    """The MLmodel file decides: a sklearn-pickled LightGBM model or an escaping path is refused."""
    X, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 2)
    native = tmp_path / "native"
    mlflow.lightgbm.save_model(booster, str(native))
    assert read_native_booster(native, "native").model_to_string() == booster.model_to_string()
    pickled = tmp_path / "pickled"
    mlflow.lightgbm.save_model(lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(X, y), str(pickled),
                               serialization_format="cloudpickle")
    with pytest.raises(UnsafeModelError, match="pickled format"):
        read_native_booster(pickled, "pickled")
    (native / "MLmodel").write_text((native / "MLmodel").read_text().replace("data: model.lgb", "data: ../pickled/../x.lgb"))
    with pytest.raises(UnsafeModelError, match="outside the model folder"):
        read_native_booster(native, "escape")
    with pytest.raises(UnsafeModelError, match="no MLmodel"):
        read_native_booster(tmp_path, "empty")


def test_accepted_forms_still_load(pipeline_home):
    cfg, outcomes = pipeline_home
    record = outcomes[IMPORT_SUBSTITUTION].record
    for uri in (f"models:/{record.model_name}/{record.version}", f"models:/{record.model_name}@champion",
                f"runs:/{record.run_id}/model"):
        table, used = recommend(cfg, IMPORT_SUBSTITUTION, top=1, model_uri=uri)
        assert used == uri and len(table) > 0
    with pytest.raises(ModelError, match="could not find model"):
        recommend(cfg, IMPORT_SUBSTITUTION, model_uri=f"models:/{record.model_name}/999")


def test_a_killed_training_run_is_marked_failed_by_the_next(tmp_path):
    import socket

    from models.store import Store
    from models.tracking import fail_orphans

    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    client = store.client()
    exp = store.experiment_id("t", "test")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = client.create_run(exp, tags={"host": socket.gethostname(), "pid": str(dead.pid)}).info.run_id
    alive = client.create_run(exp, tags={"host": socket.gethostname(), "pid": str(os.getpid())}).info.run_id
    elsewhere = client.create_run(exp, tags={"host": "another-machine", "pid": str(dead.pid)}).info.run_id
    assert fail_orphans(client, exp) == [orphan]
    assert client.get_run(orphan).info.status == "FAILED"
    assert client.get_run(alive).info.status == client.get_run(elsewhere).info.status == "RUNNING"
    # a version registered by the killed run is listed as such by `recommender models`, never as champion
    from models.champion import registered_versions

    client.create_registered_model("t-SCO")
    client.create_model_version("t-SCO", source=str(tmp_path / "m1"), run_id=orphan)
    client.create_model_version("t-SCO", source=str(tmp_path / "m2"), run_id=alive)
    client.set_terminated(alive, status="FINISHED")
    client.set_registered_model_alias("t-SCO", "champion", "2")
    listed = {r["version"]: r["status"] for r in registered_versions(client)}
    assert listed == {1: "failed run", 2: "champion"}
