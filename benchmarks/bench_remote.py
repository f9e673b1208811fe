"""A BACI-width bank on S3: push it, read it, and train joint projects on Dask from it.

``python -m benchmarks.run remote`` takes the bank of the 12-year BACI-width world that
``SCALE_SIZE=baci12 make bench-scale`` ingested (220 countries × 5,000 HS6 products × 12 years,
130 M flows; ``benchmarks/.work/scale-baci12/home-mid/bank``), hard-links it into a scratch home
(the scale benchmark's own bank is never written), starts an S3 server on 127.0.0.1
(:mod:`tests.s3`, moto's) and measures, each step a CLI process tree (wall time, peak RSS):

1. ``bank push`` of the whole bank; then ``ingest products`` of a small names file and a second
   push, which must copy the unchanged files inside the store instead of uploading them;
2. ``bank info --json`` from the folder and from S3 (a full streaming scan of the trade);
3. ``train --task joint-projects --engine dask`` (a 2-worker LocalCluster, ``SCALE_DASK_ROUNDS``
   rounds, default 100) from the folder bank and from the S3 bank, each in an empty home: the
   features are built by the workers, from the folder or through S3. Candidate counts must agree,
   and so must the test NDCG@10 to the last digit: the features are the same and a Dask fit is
   reproducible (:class:`models.engine.RankedClient`).

Local copies of the bank's files (:mod:`recommender.bank.cache`) go to a cache under the work
folder, emptied before each step that reads from S3, so each such step pays for its downloads.

The S3 server is an in-memory emulator in one Python process on this same 2-core machine, so the
S3 numbers are those of reading through s3fs and botocore over loopback against a slow server,
not of AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psutil

from benchmarks._harness import RESULTS, WORK, record
from benchmarks.bench_scale import SIZES, run_step, trained

SOURCE = WORK / "scale-baci12" / "home-mid" / "bank"
URL = "s3://bench/bank"


def _size(folder: Path) -> int:
    """Bytes of the live snapshot's files."""
    snap = folder / "snapshots" / (folder / "CURRENT").read_text().strip()
    return sum(p.stat().st_size for p in snap.rglob("*") if p.is_file())


def _test_ndcg(home: Path) -> float:
    """The full-precision ``test_ndcg_at_10`` of the one training run in ``home``'s MLflow store."""
    from mlflow.tracking import MlflowClient

    from recommender.config import Config

    client = MlflowClient(Config(home=home).mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "metrics.test_ndcg_at_10 > -1")
    return runs[0].data.metrics["test_ndcg_at_10"]


def run() -> dict:
    from tests.s3 import S3Server

    if not (SOURCE / "CURRENT").exists():
        raise SystemExit(f"no bank at {SOURCE}: run `SCALE_SIZE=baci12 SCALE_DASK=0 make bench-scale` first")
    work = WORK / "remote"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    home = work / "home"
    home.mkdir()
    subprocess.run(["cp", "-al", str(SOURCE), str(home / "bank")], check=True)  # hard links: same inodes, no copy
    log = work / "steps.log"
    log.write_text("")
    server = S3Server(work / "s3.log").start()
    cache = work / "cache"  # emptied before each read from S3: each step pays for its downloads
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | server.env | \
        {"RECOMMENDER_HOME": str(home), "RECOMMENDER_BANK_CACHE": str(cache)}
    rounds = int(os.environ.get("SCALE_DASK_ROUNDS", "100"))
    dims = SIZES["baci12"]
    out: dict = {"bank": "scale-baci12 (220 countries × 5,000 HS6 products × 12 years)", "s3_server": "moto (in memory, 127.0.0.1)",
                 "bank_bytes": _size(home / "bank"), "dask_rounds": rounds}
    try:
        import s3fs

        os.environ.update(server.env)
        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("bench")
        steps = out["steps"] = {}
        steps["push"] = run_step("push", ["bank", "push", URL, "--json"], env, log)
        steps["push"]["mb_per_s"] = round(out["bank_bytes"] / 1e6 / steps["push"]["seconds"], 1)
        names = work / "names.csv"
        names.write_text("code,name\n010121,Pure-bred breeding horses\n010129,Horses other than pure-bred breeding\n")
        run_step("ingest_names", ["ingest", "products", str(names)], env, log)
        mark = len(log.read_text())
        steps["push_again"] = run_step("push_again", ["bank", "push", URL, "--json"], env, log)
        text = log.read_text()[mark:]
        pushed = json.loads(text[text.index("{"):text.rindex("}") + 1])
        steps["push_again"] |= {k: pushed[k] for k in ("uploaded_files", "uploaded_bytes", "copied_files")}
        steps["info_folder"] = run_step("info_folder", ["bank", "info", "--json"], env, log)
        shutil.rmtree(cache, ignore_errors=True)
        steps["info_s3"] = run_step("info_s3", ["--bank", URL, "bank", "info", "--json"], env, log)
        for where, bank in (("folder", str(home / "bank")), ("s3", URL)):
            train_home = work / f"home-train-{where}"
            shutil.rmtree(cache, ignore_errors=True)
            mark = len(log.read_text())
            steps[f"train_joint-projects_{where}"] = run_step(
                f"train_joint-projects_{where}",
                ["--home", str(train_home), "--bank", bank, "train", "--task", "joint-projects", "--seeds", "1",
                 "--horizon", str(dims["horizon"]), "--param", f"n_estimators={rounds}", "--engine", "dask"], env, log)
            steps[f"train_joint-projects_{where}"] |= trained(log, mark) | {"test_ndcg_at_10": _test_ndcg(train_home)}
        out["s3_server_rss_gb"] = round(psutil.Process(server.process.pid).memory_info().rss / 1024**3, 2)
    finally:
        server.stop()
    trains = [steps[f"train_joint-projects_{w}"] for w in ("folder", "s3")]
    out["same_candidate_counts"] = len({t["candidates"] for t in trains}) == 1 and trains[0]["candidates"] != -1
    out["same_ndcg"] = len({t["test_ndcg_at_10"] for t in trains}) == 1  # the same features, and a reproducible Dask fit
    earlier = RESULTS / "remote-baci12.json"  # kept: the numbers of commit 38044e3, before local copies
    if earlier.exists() and "before_local_copies" in (kept := json.loads(earlier.read_text())):
        out["before_local_copies"] = kept["before_local_copies"]
    record("remote-baci12", out)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
