"""A disk that really fills up: the bank and the MLflow store on a tmpfs of a few megabytes mounted by the test.

The kernel's ENOSPC then reaches every writer as it would on a user's full disk: Arrow's C++ Parquet
writer, SQLite's C code (``database or disk is full``), LightGBM's model file and Python's own writes.
test_reliability.py and test_training_pipeline.py inject the error at every write one by one; here it
comes from a real file system at several fill levels. Mounting needs root (or CAP_SYS_ADMIN); where
the machine refuses the mount the tests skip and say so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow import MlflowClient

from recommender.bank import DataBank
from recommender.bank.synthetic import WorldSpec
from recommender.config import Config
from recommender.demo import build_demo_bank

ROOT = Path(__file__).resolve().parents[1]
FAST = ("--horizon", "2", "--seeds", "1", "--param", "n_estimators=40")
TASK, MODEL = "import-substitution", "import-substitution-SCO"


@contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` mounted at ``where`` for the test's duration."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a small file system ({mounted.stderr.strip()}); "
                    "the injected-ENOSPC tests cover the same writes")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _available(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


@contextmanager
def filled(disk: Path, leave: int) -> Iterator[None]:
    """Fill the disk so that only ``leave`` bytes stay free (rounded to pages); free it all again after."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as handle:
        size = max(_available(disk) - leave, 0)
        if size:
            os.posix_fallocate(handle.fileno(), 0, size)
    try:
        yield
    finally:
        filler.unlink()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run([sys.executable, "-m", "recommender", "--home", str(home), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=1800, env={"COLUMNS": "200", **env})


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` (folders too), files with their SHA-256: the byte-identical check."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("error:"), proc.stderr[-3000:]
    return proc.stderr


def test_ingest_on_a_full_disk_keeps_the_old_snapshot_byte_identical(tiny_world, tmp_path):
    trade = tiny_world.trade
    years = sorted(trade["year"].unique())
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    trade.to_parquet(first)
    trade[trade["year"].isin(years[-2:])].assign(value_usd=lambda t: t["value_usd"] * 2).to_parquet(second)
    with small_disk(tmp_path / "disk", 48) as disk:
        home = disk / "home"
        assert _cli(home, "ingest", "trade", str(first)).returncode == 0
        before = _tree(home / "bank")
        probe = disk / "probe"  # how much one replacing ingest writes: the snapshot it adds
        shutil.copytree(home, probe)
        free = _available(disk)
        assert _cli(probe, "ingest", "trade", "--replace", str(second)).returncode == 0
        needs = free - _available(disk)
        shutil.rmtree(probe)
        assert needs > 128 * 1024, needs
        refused = []
        for leave in (0, needs // 32, needs // 8, needs // 4, needs // 2, needs * 3 // 4):
            with filled(disk, leave):
                proc = _cli(home, "ingest", "trade", "--replace", str(second))
            message = _one_sentence(proc)
            assert "No space left on device" in message and "nothing was half-written" in message, message
            assert _tree(home / "bank") == before, f"{leave} bytes free: the bank changed"
            refused.append(leave)
        # space is back: the same ingest works, and readers see the new years
        assert _cli(home, "ingest", "trade", "--replace", str(second)).returncode == 0
        replaced = DataBank(home / "bank").read("trade")
        assert replaced[replaced["year"] == years[-1]]["value_usd"].sum() == pytest.approx(
            2 * trade[trade["year"] == years[-1]]["value_usd"].sum())
    print(f"\nreal full disk: ingest refused at {len(refused)} fill levels ({', '.join(map(str, refused))} bytes free "
          f"of the {needs} it needs), the bank byte-identical each time")


def _store(client: MlflowClient) -> tuple:
    """What must not change when a train fails: finished runs, versions (each with its model), the champion."""
    experiment = client.get_experiment_by_name(TASK).experiment_id
    finished = {r.info.run_id for r in client.search_runs([experiment], "attributes.status = 'FINISHED'")}
    versions = sorted((v.version, v.status) for v in client.search_model_versions(f"name='{MODEL}'"))
    ready = {m.model_id for m in client.search_logged_models([experiment]) if str(m.status).endswith("READY")}
    return finished, versions, client.get_model_version_by_alias(MODEL, "champion").version, ready


def test_train_on_a_full_disk_leaves_no_finished_run_and_no_version(tmp_path):
    """SQLite's own writes fail in C here (the injected test cannot reach them)."""
    with small_disk(tmp_path / "disk", 96) as disk:
        home = disk / "home"
        list(build_demo_bank(Config(home=home), spec=WorldSpec.tiny(seed=7)))
        assert _cli(home, "train", "--task", TASK, *FAST).returncode == 0  # builds the feature cache too
        client = MlflowClient(Config(home=home).mlflow_uri)
        free = _available(disk)
        assert _cli(home, "train", "--task", TASK, *FAST).returncode == 0
        needs = free - _available(disk)  # what one more train writes: runs, metrics, artifacts, a model version
        assert needs > 64 * 1024, needs
        messages, seen = set(), []
        for leave in (0, needs // 32, needs // 8, needs // 4, needs // 2):
            before = _store(client)
            with filled(disk, leave):
                proc = _cli(home, "train", "--task", TASK, *FAST)
            message = _one_sentence(proc)
            assert "No space left on device" in message or "database or disk is full" in message, message
            messages.add("sqlite" if "database or disk is full" in message else "file")
            seen.append(f"{leave} bytes free: {'SQLite' if 'database or disk is full' in message else 'a file write'}")
            after = _store(client)
            assert after[:3] == before[:3] and after[3] <= before[3], f"{leave} bytes free: {before} -> {after}"
        assert messages == {"sqlite", "file"}, messages  # both kinds of writer met the full disk
        # space is back: a train completes, and no run is left RUNNING by the failed ones
        before = _store(client)
        assert _cli(home, "train", "--task", TASK, *FAST).returncode == 0
        after = _store(client)
        assert len(after[0]) == len(before[0]) + 1 and len(after[1]) == len(before[1]) + 1
        experiment = client.get_experiment_by_name(TASK).experiment_id
        assert not client.search_runs([experiment], "attributes.status = 'RUNNING'")
    print(f"\nreal full disk: train ({needs} bytes) refused at {len(seen)} fill levels, nothing recorded as finished: "
          + "; ".join(seen))
