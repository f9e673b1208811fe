"""Shared fixtures: a tiny synthetic world, an empty bank, the real data folder (or a skip)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recommender.bank import DataBank
from recommender.bank.synthetic import World, WorldSpec, generate_world
from recommender.config import TRACKING_ENV, Config, real_data_dir

#: The longest modules, started first: ``--dist loadfile`` hands modules out in collection order,
#: so a long module collected last would run alone at the end while the other worker idles.
SLOW_FIRST = ("test_dask.py", "test_team_mode.py", "test_remote_bank.py", "test_cli_usage.py", "test_notebooks.py", "test_tasks.py",
              "test_training_pipeline.py", "test_reliability.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


@pytest.fixture(autouse=True)
def _tracking_uri_left_alone():
    """No test may leave MLflow pointed at its own store.

    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI``, which every later ``Config`` of
    the worker process reads: the scenario test once scored against the Dask test's store, found no
    champion there and printed no scores. Read runs with ``cfg.store.client()``; log through
    ``cfg.store.active()``, which puts the URI back.
    """
    before = os.environ.get(TRACKING_ENV)
    yield
    assert os.environ.get(TRACKING_ENV) == before, f"the test left {TRACKING_ENV}={os.environ.get(TRACKING_ENV)!r} (was {before!r})"


@pytest.fixture(scope="session")
def tiny_world() -> World:
    return generate_world(WorldSpec.tiny(seed=7))


@pytest.fixture(scope="session")
def tiny_files(tiny_world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny_world.write(tmp_path_factory.mktemp("tiny_world"))


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return Config(home=tmp_path / "home", tracking_uri=None)


@pytest.fixture
def bank(cfg: Config) -> DataBank:
    return DataBank(cfg.bank_dir)


@pytest.fixture(scope="session")
def pipeline_home(tmp_path_factory):
    """A home with the tiny world's bank and one trained model per task (horizon 2, 60 rounds)."""
    from models.tasks import DIVERSIFICATION, IMPORT_SUBSTITUTION, JOINT_PROJECTS
    from recommender.demo import build_demo_bank
    from recommender.pipeline import train_task

    cfg = Config(home=tmp_path_factory.mktemp("pipeline") / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.tiny(seed=7)))
    outcomes = {
        task: train_task(cfg, task, horizon=2, overrides={"n_estimators": "60"})
        for task in (IMPORT_SUBSTITUTION, JOINT_PROJECTS, DIVERSIFICATION)
    }
    return cfg, outcomes


@pytest.fixture(scope="session")
def real_data() -> Path:
    folder = real_data_dir()
    if folder is None:
        pytest.skip("RECOMMENDER_REAL_DATA is not set to an existing folder")
    return folder


def bank_state(bank: DataBank) -> dict[str, bytes]:
    """Every file of the bank (but the lock) and its bytes: to prove nothing changed."""
    if not bank.root.exists():
        return {}
    return {
        str(p.relative_to(bank.root)): p.read_bytes()
        for p in sorted(bank.root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }
