"""Crashes and concurrency: a writer killed with SIGKILL at every step of its write transaction leaves the
bank exactly old or exactly new; two concurrent writers and a reader never see anything in between."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from recommender.bank import DataBank
from recommender.bank.ingest import ingest_trade

ROOT = Path(__file__).resolve().parents[1]

# Runs one ingest in a fresh interpreter with every file-system step of the bank's write path counted;
# with KILL_AT = "<step>:<n>" the process SIGKILLs itself just before the n-th call of that step.
CRASHER = textwrap.dedent("""
    import json, os, shutil, signal, sys
    from pathlib import Path
    import pyarrow.parquet as pq
    import recommender.bank  # noqa: F401  (the module whose calls are counted)

    kill_at, full_at, counts = os.environ.get("KILL_AT", ""), os.environ.get("FULL_AT", ""), {}

    def hook(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            if f"{name}:{counts[name]}" == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if f"{name}:{counts[name]}" == full_at:  # the disk fills up at this write
                raise OSError(28, os.strerror(28))
            return fn(*args, **kwargs)
        return wrapper

    os.link, os.replace, os.fsync = hook("link", os.link), hook("replace", os.replace), hook("fsync", os.fsync)
    os.unlink, shutil.rmtree = hook("unlink", os.unlink), hook("rmtree", shutil.rmtree)
    pq.write_table = hook("write_table", pq.write_table)
    pq.ParquetWriter.write_table = hook("write_batch", pq.ParquetWriter.write_table)
    Path.write_text = hook("write_text", Path.write_text)

    from recommender.bank import DataBank
    from recommender.bank.ingest import ingest_trade
    ingest_trade(DataBank(sys.argv[1]), Path(sys.argv[2]), replace=True)
    print("COUNTS" + json.dumps(counts))
""")


def _logical(root: Path) -> tuple:
    """What a reader sees: the trade rows and the sources (ids aside)."""
    bank = DataBank(root)
    trade = bank.read("trade").sort_values(["year", "exporter", "importer", "product"]).reset_index(drop=True)
    return trade.to_csv(index=False), sorted((Path(s["path"]).name, tuple(s["years"]), s["rows"]) for s in bank.sources)


def _crash(bank_root: Path, path: Path, kill_at: str, *, full_at: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CRASHER, str(bank_root), str(path)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "KILL_AT": kill_at, "FULL_AT": full_at}, timeout=600)


def _bytes(root: Path) -> dict[str, str]:
    """Every file of the bank by relative path, with its SHA-256: the byte-identical check."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory, tiny_world):
    folder = tmp_path_factory.mktemp("crash")
    base = folder / "base"
    trade = tiny_world.trade
    years = sorted(trade["year"].unique())
    first = folder / "first.parquet"
    trade.to_parquet(first)
    ingest_trade(DataBank(base), first)
    newer = trade[trade["year"].isin(years[-2:])].assign(value_usd=lambda t: t["value_usd"] * 2)
    second = folder / "second.parquet"
    newer.to_parquet(second)  # replaces the last two years: rewrites, links, unlinks and publishes
    clean = folder / "clean"
    shutil.copytree(base, clean)
    proc = _crash(clean, second, "")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.split("COUNTS", 1)[1])
    return {"base": base, "second": second, "old": _logical(base), "new": _logical(clean), "counts": counts}


def _kill_points(counts: dict[str, int]) -> list[str]:
    """First, middle and last call of every step (every call of rare steps)."""
    points = []
    for step, n in sorted(counts.items()):
        points += [f"{step}:{i}" for i in sorted({1, (n + 1) // 2, n})]
    return points


def test_sigkill_at_every_step_leaves_old_or_new(crash_setup, tmp_path):
    old, new = crash_setup["old"], crash_setup["new"]
    assert old != new
    points = _kill_points(crash_setup["counts"])
    assert len(points) >= 12 and {"replace", "fsync", "link", "write_text"} <= set(crash_setup["counts"])
    outcomes = {}
    for point in points:
        root = tmp_path / point.replace(":", "-")
        shutil.copytree(crash_setup["base"], root)
        proc = _crash(root, crash_setup["second"], point)
        assert proc.returncode == -9, (point, proc.returncode, proc.stderr[-2000:])  # really killed
        state = _logical(root)
        assert state in (old, new), point
        outcomes[point] = "new" if state == new else "old"
        # the next writer cleans the debris and completes the same ingest
        again = ingest_trade(DataBank(root), crash_setup["second"], replace=True)
        assert again.unchanged or _logical(root) == new
        assert _logical(root) == new, point
        assert not (root / "staging").exists() and not list(root.glob(".CURRENT.*")), point
        assert len(list((root / "snapshots").iterdir())) <= 2, point
    # both outcomes occur: kills before the CURRENT rename keep the old bank, kills after it the new one
    assert set(outcomes.values()) == {"old", "new"}, outcomes
    print(f"\ncrash points survived: {len(points)} ({sum(v == 'old' for v in outcomes.values())} old, "
          f"{sum(v == 'new' for v in outcomes.values())} new)")


WRITES = ("write_table", "write_batch", "write_text", "link", "replace", "fsync")
"""The steps at which a full disk can fail a write (removing files frees space: unlink and rmtree do not fail so)."""


def test_disk_full_at_every_write_leaves_the_bank_byte_identical(crash_setup, tmp_path):
    """Issue 31: ENOSPC injected at every call of every write step of an ingest (not a sample)."""
    counts = crash_setup["counts"]
    points = [f"{step}:{i}" for step in WRITES for i in range(1, counts.get(step, 0) + 1)]
    assert len(points) >= 20
    outcomes = {"old": 0, "new": 0}
    for point in points:
        root = tmp_path / point.replace(":", "-")
        shutil.copytree(crash_setup["base"], root, copy_function=shutil.copy2)
        before = _bytes(root)
        proc = _crash(root, crash_setup["second"], "", full_at=point)
        assert proc.returncode != 0 and "No space left on device" in proc.stderr, (point, proc.stderr[-2000:])
        if _bytes(root) == before:  # the old snapshot, byte for byte, and no debris
            outcomes["old"] += 1
        else:  # only a write after the commit (CURRENT replaced: the fsync of its folder) may fail on the new bank
            assert _logical(root) == crash_setup["new"], point
            outcomes["new"] += 1
        again = ingest_trade(DataBank(root), crash_setup["second"], replace=True)  # space is back: the ingest works
        assert again.unchanged or _logical(root) == crash_setup["new"], point
        assert _logical(root) == crash_setup["new"], point
    assert outcomes["new"] <= 1, outcomes
    print(f"\ndisk full at {len(points)} writes: {outcomes['old']} refused with the bank byte-identical, "
          f"{outcomes['new']} after the commit")


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from recommender.bank import DataBank
    from recommender.bank.ingest import ingest_trade
    ingest_trade(DataBank(sys.argv[1], lock_timeout=600), Path(sys.argv[2]))
""")

READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from recommender.bank import DataBank
    bank, seen, errors = DataBank(sys.argv[1]), [], []
    stop = Path(sys.argv[2])
    while not stop.exists():
        try:
            t = bank.read("trade")
            seen.append([len(t), round(float(t["value_usd"].sum()), 3)])
        except Exception as exc:  # any error a reader could meet is a failure of the test
            errors.append(repr(exc))
    print("SEEN" + json.dumps({"seen": seen, "errors": errors}))
""")


def _state(frame: pd.DataFrame) -> list:
    return [len(frame), round(float(frame["value_usd"].sum()), 3)]


@pytest.mark.parametrize("trial", range(3))
def test_two_writers_and_a_reader(tiny_world, tmp_path, trial):
    trade = tiny_world.trade
    years = sorted(trade["year"].unique())
    base, a, b = trade[trade["year"].isin(years[:4])], trade[trade["year"].isin(years[4:7])], trade[trade["year"].isin(years[7:])]
    files = {}
    for name, frame in (("base", base), ("a", a), ("b", b)):
        files[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(files[name])
    root = tmp_path / "bank"
    ingest_trade(DataBank(root), files["base"])
    stop = tmp_path / "stop"
    env = {**os.environ}
    reader = subprocess.Popen([sys.executable, "-c", READER, str(root), str(stop)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0 + trial)  # the reader is reading before, during and after the writes
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(files[n])], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in ("a", "b")]
    results = [w.communicate(timeout=900) + (w.returncode,) for w in writers]
    stop.touch()
    out, err = reader.communicate(timeout=900)
    for _stdout, stderr, code in results:
        assert code == 0, stderr[-3000:]  # both writers succeed: the second waits for the first's lock
    report = json.loads(out.split("SEEN", 1)[1])
    assert report["errors"] == []
    valid = [_state(base), _state(pd.concat([base, a])), _state(pd.concat([base, b])), _state(pd.concat([base, a, b]))]
    assert report["seen"] and all(s in valid for s in report["seen"]), {tuple(s) for s in report["seen"]} - {tuple(v) for v in valid}
    assert _state(DataBank(root).read("trade")) == valid[-1]
    assert sorted(Path(s["path"]).name for s in DataBank(root).sources) == ["a.parquet", "b.parquet", "base.parquet"]
    print(f"\ntrial {trial}: {len(report['seen'])} consistent reads, {len({tuple(s) for s in report['seen']})} distinct states")
