"""A bank published to S3 (``recommender bank push``) and read from there, by this process and by Dask
workers that cannot see the home: against an S3 server on 127.0.0.1 (:mod:`tests.s3`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from recommender.bank import DataBank, summary
from recommender.bank.cache import CACHE_ENV, cache_root
from recommender.bank.ingest import ingest_product_names
from recommender.bank.push import PushResult, push
from recommender.bank.synthetic import WorldSpec
from recommender.config import Config
from recommender.demo import build_demo_bank
from tests.dask_processes import dask_cluster
from tests.s3 import S3Server

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3Server:
    folder = tmp_path_factory.mktemp("s3")
    server = S3Server(folder / "server.log").start()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        patch.setenv(CACHE_ENV, str(folder / "cache"))  # this process's and the workers' copies of the banks' files
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # a client made before the endpoint was set would talk to AWS
        s3fs.S3FileSystem().mkdir("banks")
        try:
            yield server
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Config:
    cfg = Config(home=tmp_path_factory.mktemp("remote") / "home")
    list(build_demo_bank(cfg, spec=WorldSpec.tiny(seed=7)))
    return cfg


def _objects(s3: S3Server, url: str) -> dict[str, int]:
    """Every object under ``url`` and its size: to prove nothing changed."""
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    prefix = url.removeprefix("s3://")
    return {p: fs.size(p) for p in fs.find(prefix)}


def _data_files(bank: DataBank) -> int:
    """The Parquet files of the bank's live snapshot, every table."""
    return len(list((Path(bank.root) / "snapshots" / bank.snapshot_id).rglob("*.parquet")))


def _pushed_then_named(local: Config, tmp_path: Path, url: str, names: str) -> tuple[DataBank, PushResult, Path]:
    """A copy of the tiny bank (these tests ingest) pushed to ``url``, then product names ``names``
    ingested into it and not pushed yet: the bank, the first push's result and the names file."""
    cfg = Config(home=tmp_path / "home")
    shutil.copytree(local.bank_dir, cfg.bank_dir)
    bank = DataBank(cfg.bank_dir)
    first = push(bank, url)
    path = tmp_path / "names.csv"
    path.write_text(names)
    ingest_product_names(bank, path)
    return bank, first, path


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | (env or {})
    return subprocess.run([str(BIN / "recommender"), *args], capture_output=True, text=True, env=environment,
                          timeout=timeout)


def test_a_pushed_bank_reads_as_the_local_one(s3: S3Server, local: Config):
    bank = DataBank(local.bank_dir)
    result = push(bank, "s3://banks/same")
    assert not result.unchanged and result.uploaded_files == _data_files(bank) and result.copied_files == 0
    remote = DataBank("s3://banks/same")
    assert remote.remote and remote.snapshot_id == bank.snapshot_id
    assert remote.manifest_hash() == bank.manifest_hash()  # the feature store and models key on it
    assert remote.files("trade") and all(f.startswith("s3://banks/same/snapshots/") for f in remote.files("trade"))
    info, expected = summary(remote), summary(bank)
    assert info.pop("bank") == "s3://banks/same" and expected.pop("bank") == str(bank.root)
    assert info == expected
    assert remote.years("trade") == bank.years("trade") and remote.rows_by_year() == bank.rows_by_year()
    assert remote.product_codes(2) == bank.product_codes(2)
    members, years = ("CHN", "RUS", "KAZ"), bank.years("trade")[-3:]
    for got, want in zip(remote.trade_view(members, years=years, product_level=2).__dict__.values(),
                         bank.trade_view(members, years=years, product_level=2).__dict__.values(), strict=True):
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        else:
            assert got == want
    pd.testing.assert_frame_equal(remote.read("capacity"), bank.read("capacity"))
    # DuckDB read local copies, one per file, byte for byte the bank's
    copies = sorted(p for p in cache_root().rglob("*.parquet") if f"/{bank.snapshot_id}/trade/" in str(p))
    assert [p.relative_to(p.parents[3]) for p in copies] == \
        [Path(f).relative_to(Path(f).parents[3]) for f in bank.files("trade")]
    assert all(c.read_bytes() == Path(f).read_bytes() for c, f in zip(copies, bank.files("trade"), strict=True))
    assert not list(cache_root().rglob("*.part"))
    # pushed again unchanged: nothing sent
    again = push(bank, "s3://banks/same")
    assert again.unchanged and again.uploaded_files == again.copied_files == 0


def test_a_push_sends_only_what_changed_and_keeps_the_previous_snapshot(s3: S3Server, local: Config, tmp_path: Path):
    bank, first, names = _pushed_then_named(local, tmp_path, "s3://banks/grow", "code,name\n01,Live animals\n02,Meat\n")
    second = push(bank, "s3://banks/grow")
    files = _data_files(bank)
    # every file but the new names is a hard link to the published snapshot's: copied in the store
    assert second.previous == first.snapshot and second.uploaded_files == 1 and second.copied_files == files - 1
    assert second.uploaded_bytes < 10_000
    assert second.removed_snapshots == []
    pinned = DataBank("s3://banks/grow", snapshot=first.snapshot)  # a run that started before the push
    assert summary(pinned)["trade"] == summary(DataBank("s3://banks/grow"))["trade"]
    names.write_text("code,name\n01,Live animals\n02,Meat and offal\n")
    ingest_product_names(bank, names, replace=True)
    cached = DataBank("s3://banks/grow").local_files("trade")
    folder = Path(cached[0]).parents[3]  # the cache of this bank: one folder per snapshot
    assert {p.name for p in folder.iterdir()} == {first.snapshot, second.snapshot}  # pinned, then live
    third = push(bank, "s3://banks/grow")
    assert third.removed_snapshots == [first.snapshot]  # the previous one (second) stays for its readers
    DataBank("s3://banks/grow").local_files("trade", [2003])
    assert {p.name for p in folder.iterdir()} == {second.snapshot, third.snapshot}  # the retired one's copies went
    snapshots = {p.split("/")[3] for p in _objects(s3, "s3://banks/grow/snapshots")}
    assert snapshots == {second.snapshot, third.snapshot}
    remote = DataBank("s3://banks/grow")
    pd.testing.assert_frame_equal(remote.read("products"), bank.read("products"))


def test_an_interrupted_push_changes_nothing_and_the_next_one_completes(s3: S3Server, local: Config, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    bank, first, _ = _pushed_then_named(local, tmp_path, "s3://banks/cut", "code,name\n01,Live animals\n")
    before = _objects(s3, "s3://banks/cut")
    calls = {"n": 0}
    fs = DataBank("s3://banks/cut").fs  # fsspec's cached instance: the one the push uses
    copy = fs.copy

    def failing_copy(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the snapshot
        return copy(*args, **kwargs)

    monkeypatch.setattr(fs, "copy", failing_copy)
    with pytest.raises(KeyboardInterrupt):
        push(bank, "s3://banks/cut")
    monkeypatch.undo()
    after = _objects(s3, "s3://banks/cut")
    assert after["banks/cut/CURRENT"] == before["banks/cut/CURRENT"]
    assert DataBank("s3://banks/cut").snapshot_id == first.snapshot  # readers still see the old snapshot whole
    assert not any(p.endswith(".push-lock") for p in after)  # the lock went with the failed push
    partial = {p for p in after if p not in before}
    assert partial and all(p.startswith(f"banks/cut/snapshots/{bank.snapshot_id}/") for p in partial)
    assert not any(p.endswith("manifest.json") for p in partial)
    done = push(bank, "s3://banks/cut")
    assert done.snapshot == bank.snapshot_id and done.previous == first.snapshot
    pd.testing.assert_frame_equal(DataBank("s3://banks/cut").read("products"), bank.read("products"))


def test_a_running_push_holds_the_store(s3: S3Server, local: Config):
    import s3fs

    push(DataBank(local.bank_dir), "s3://banks/busy")
    s3fs.S3FileSystem().pipe_file("banks/busy/.push-lock", json.dumps(
        {"host": "analyst-7", "pid": 4242, "since": "2026-11-23T10:00:00+00:00"}).encode())
    before = _objects(s3, "s3://banks/busy")
    done = _cli("--home", str(local.home), "bank", "push", "s3://banks/busy", env=s3.env)
    assert done.returncode == 2, done.stderr
    assert "another push to s3://banks/busy is running (analyst-7, process 4242" in done.stderr
    assert "remove s3://banks/busy/.push-lock" in done.stderr
    assert _objects(s3, "s3://banks/busy") == before


def test_a_remote_bank_is_read_only_and_its_failures_are_clear(s3: S3Server, local: Config, tiny_files, tmp_path: Path):
    push(DataBank(local.bank_dir), "s3://banks/ro")
    before = _objects(s3, "s3://banks/ro")
    home = str(tmp_path / "home")
    for args in (["ingest", "trade", str(tiny_files["trade"])], ["ingest", "capacity", str(tiny_files["capacity"])],
                 ["ingest", "geography", str(tiny_files["geography"])], ["demo"]):
        done = _cli("--home", home, "--bank", "s3://banks/ro", *args, env=s3.env)
        assert done.returncode == 2 and "s3://banks/ro is read-only here" in done.stderr, (args, done.stderr)
        assert "recommender bank push s3://banks/ro" in done.stderr
    assert _objects(s3, "s3://banks/ro") == before
    info = _cli("--home", home, "--bank", "s3://banks/ro", "bank", "info", "--json", env=s3.env)
    assert info.returncode == 0 and json.loads(info.stdout)["trade"] == summary(DataBank(local.bank_dir))["trade"]
    empty = _cli("--home", home, "--bank", "s3://banks/none", "bank", "info", env=s3.env)
    assert empty.returncode == 0 and "push" in empty.stdout and "is empty" in empty.stdout
    missing = _cli("--home", home, "bank", "push", "s3://no-such-bucket/bank", env=s3.env)
    assert missing.returncode == 2 and "bucket does not exist" in missing.stderr
    down = _cli("--home", home, "--bank", "s3://banks/ro", "bank", "info",
                env=s3.env | {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "2"})
    assert down.returncode == 2 and "cannot use the data bank at s3://banks/ro" in down.stderr
    assert "AWS_ENDPOINT_URL" in down.stderr and "Traceback" not in down.stderr


def test_dask_workers_that_cannot_see_the_home_train_from_the_pushed_bank(s3: S3Server, local: Config, tmp_path: Path):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, each worker in a mount namespace where
    an empty tmpfs hides the home's folder: no shared filesystem. They read the bank from S3 and send each
    feature year back through Dask; the features equal a local build from the local bank."""
    from distributed import Client

    from models import tasks
    from recommender.pipeline.datasets import FeatureCache, task_table

    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    assert probe.returncode == 0, f"this test hides a folder from the workers with `unshare --mount` (root): {probe.stderr}"
    push(DataBank(local.bank_dir), "s3://banks/cluster")
    hidden = tmp_path / "hidden"
    cfg = Config(home=hidden / "home")
    cfg.home.mkdir(parents=True)
    hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'mount -t tmpfs hidden "{hidden}" && exec "$0" "$@"']
    with dask_cluster(tmp_path, wrap=hide) as address:
        with Client(address, timeout="120s") as client:
            seen = client.run(os.path.exists, str(cfg.home))
        assert seen and not any(seen.values()), seen  # the workers cannot see the home
        assert cfg.home.exists()
        done = _cli("--home", str(cfg.home), "--bank", "s3://banks/cluster", "train", "--task", "joint-projects",
                    "--horizon", "2", "--engine", "dask", "--scheduler", address, "--param", "n_estimators=30", env=s3.env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"dask (2 worker(s) at {address})" in done.stderr
    run = cfg.store.client().get_run(re.search(r"MLflow run ([0-9a-f]{32})", done.stdout).group(1))
    assert run.data.params["engine"] == "dask" and run.data.params["feature_cache_hits"] == "0"
    assert any(i.dataset.source and "s3://banks/cluster" in i.dataset.source for i in run.inputs.dataset_inputs)
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=2)
    level = int(run.data.params["product_level"])
    remote = task_table(DataBank("s3://banks/cluster"), FeatureCache(cfg.feature_dir), spec, cfg.bloc.members,
                        product_level=level)
    assert remote.reused  # the table the workers built
    here = task_table(DataBank(local.bank_dir), FeatureCache(tmp_path / "features"), spec, cfg.bloc.members,
                      product_level=level)
    assert not here.reused
    pd.testing.assert_frame_equal(remote.table, here.table)
