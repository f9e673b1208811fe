"""A whole BACI HS6 world on one machine: ingest, train both tasks, recommend — and the same on Dask.

``python -m benchmarks.run scale`` (``make bench-scale``) writes a synthetic BACI-format world of
220 countries × 5,000 HS6 products × 25 years (one CSV per year, as CEPII ships it), then runs
the CLI steps an analyst would, each in its own process tree whose wall time and peak RSS
(the process and all its children, polled every 0.2 s) are recorded:

1. ``ingest trade`` of the 25 yearly CSVs (one transaction), plus capacity and geography;
2. ``train`` of both tasks at HS6 for SCO (``--seeds 1``);
3. ``recommend`` of every candidate of the last year, both tasks;
4. ``train --product-level 4`` (import substitution);
5. with ``--dask``: ``train`` and ``recommend`` of both tasks again on a 2-worker LocalCluster,
   in a second home on the same bank, whose candidate counts must equal the local ones.

Targets (issue 11, on a 2-core, 24 GB machine): every step ≤ 8 GB peak RSS, ingest ≥ 3 M rows/s,
each HS6 train ≤ 30 min, recommend ≤ 5 min. ``SCALE_SIZE=small`` runs the same pipeline on
40 × 300 × 12 (what the test suite runs, for both engines).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psutil

from benchmarks._harness import RESULTS, WORK, machine, record

SIZES = {
    "baci": {"countries": 220, "products": 5000, "years": 25, "horizon": 5, "min_flow": 3000.0},  # ≥ 200 M flows
    "baci12": {"countries": 220, "products": 5000, "years": 12, "horizon": 4, "min_flow": 3000.0},  # the same world, 12 years
    # issue 27's size: the first 15 years of the 25-year world's files (linked, not generated again)
    "baci15": {"countries": 220, "products": 5000, "years": 15, "horizon": 5, "min_flow": 3000.0, "first_years_of": "baci"},
    "small": {"countries": 40, "products": 300, "years": 12, "horizon": 3},
    # the test suite's run: import substitution only (its LocalCluster test trains joint projects on Dask)
    "test": {"countries": 24, "products": 120, "years": 10, "horizon": 2, "rounds": 20, "tasks": ("import-substitution",)},
}
TARGETS = {"peak_rss_gb": 8.0, "ingest_rows_per_s": 3e6, "train_minutes": 30.0, "recommend_minutes": 5.0}
TASKS = ("import-substitution", "joint-projects")


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and all its descendants (0 for any that just ended)."""
    total = 0
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # the step just ended
        return 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_step(name: str, args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run ``recommender ARGS`` and measure wall time and the peak RSS of its whole process tree."""
    start = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n$ recommender {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen([str(Path(sys.executable).parent / "recommender"), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        watched, peak, peak_at, done = psutil.Process(proc.pid), 0, 0, threading.Event()

        def poll() -> None:
            nonlocal peak, peak_at
            while not done.is_set():
                rss = tree_rss(watched)
                if rss > peak:
                    peak, peak_at = rss, log.stat().st_size
                done.wait(0.2)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        code = proc.wait()
        done.set()
        thread.join()
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"step {name} failed with exit {code}; see {log}")
    result = {"seconds": round(seconds, 1), "peak_rss_gb": round(peak / 1024**3, 2), "peak_during": _last_line(log, peak_at)}
    print(f"  {name}: {seconds / 60:.1f} min, peak RSS {result['peak_rss_gb']} GB (during: {result['peak_during']})", flush=True)
    return result


def _last_line(log: Path, end: int) -> str:
    """The last non-empty line of ``log`` before byte ``end``: what the step was doing at its peak."""
    start = max(0, end - 4096)
    with open(log, "rb") as f:
        f.seek(start)
        lines = [ln.strip() for ln in f.read(end - start).decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def write_world(size: str, folder: Path) -> tuple[dict, int]:
    """The synthetic BACI world's yearly CSVs, capacity and geography (cached by size); its flow count."""
    from recommender.bank.synthetic import WorldSpec, generate_world, write_baci

    dims = SIZES[size]
    marker = folder / "DONE"
    if not marker.exists() and "first_years_of" in dims:
        whole = folder.parent.parent / f"scale-{dims['first_years_of']}" / "data"
        write_world(dims["first_years_of"], whole)
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "baci").mkdir(parents=True)
        for csv in sorted((whole / "baci").glob("*.csv"))[: dims["years"]]:
            (folder / "baci" / csv.name).symlink_to(csv)
        for name in ("capacity.csv", "geography.csv"):
            (folder / name).symlink_to(whole / name)
        marker.write_text("ok")
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        spec = replace(WorldSpec.baci(n_years=dims["years"]), n_countries=dims["countries"], n_products=dims["products"],
                       n_capabilities=min(120, max(16, dims["products"] // 6)),
                       min_flow_usd=dims.get("min_flow", WorldSpec.baci().min_flow_usd))
        world = generate_world(spec)
        write_baci(world, folder / "baci")
        world.capacity().to_csv(folder / "capacity.csv", index=False)
        world.geography().to_csv(folder / "geography.csv", index=False)
        marker.write_text("ok")
    counted = folder / "flows.txt"  # counting 25 files' lines takes minutes: once per world
    if not counted.exists():
        rows = 0
        for csv in sorted((folder / "baci").glob("*.csv")):
            with open(csv, "rb") as f:
                rows += sum(1 for _ in f) - 1
        counted.write_text(str(rows))
    return dims, int(counted.read_text())


def trained(log: Path, step_start: int) -> dict:
    """What a train step printed last: its candidates ("candidates: N (") and its NDCG@10 ("NDCG@10: model X"); -1 if missing."""
    text = log.read_text()[step_start:]
    found = re.findall(r"candidates: ([\d,]+) \(", text)
    ndcg = re.findall(r"NDCG@10: model ([\d.]+)", text)
    pooled = re.findall(r"pooled AP: model ([\d.]+) vs best baseline (\S+) ([\d.]+)", text)  # diversification
    return {"candidates": int(found[-1].replace(",", "")) if found else -1,
            "ndcg_at_10": float(ndcg[-1]) if ndcg else -1,
            **({"pooled_ap": [{"population": who, "model": float(m), "best_baseline": b, "baseline": float(v)}
                              for who, (m, b, v) in zip(("bloc", "world150"), pooled[-2:] if len(pooled) > 1 else pooled, strict=False)]}
               if pooled else {})}


HS4 = "train_import-substitution_hs4"


def step_args(step: str, home: Path, data: Path, dims: dict, *, engine: str = "local", scheduler: str | None = None) -> list[str]:
    """The ``recommender`` command line of a benchmark step (``ingest_trade``, ``train_<task>``, ``recommend_<task>``, :data:`HS4`)."""
    options = ["--seeds", "1", "--horizon", str(dims["horizon"]),
               *(["--param", f"n_estimators={dims['rounds']}"] if "rounds" in dims else [])]
    where = ["--engine", engine, *(["--scheduler", scheduler] if scheduler else [])]
    if step.startswith("ingest_"):
        kind = step.removeprefix("ingest_")
        source = data / "baci" if kind == "trade" else data / f"{kind}.csv"
        return ["ingest", kind, str(source), *(["--format", "baci"] if kind == "trade" else [])]
    if step.endswith("_hs4"):  # HS4_STEP, or the same for another task
        task = step.removeprefix("train_").removesuffix("_hs4")
        return ["train", "--task", task, *options, "--product-level", "4", "--experiment", f"{task}-hs4"
                if task != "import-substitution" else "hs4"]
    command, task = step.split("_", 1)
    if command == "train":
        return ["train", "--task", task, *options, *where]
    return ["recommend", "--task", task, "--output", str(home / f"recommend-{task}.parquet"), *where]


def measure_step(step: str, home: Path, data: Path, env: dict[str, str], log: Path, dims: dict, *,
                 engine: str = "local", scheduler: str | None = None) -> dict:
    """Run one step in ``home``; trains also record their candidate count and NDCG@10, recommends their rows."""
    mark = len(log.read_text())
    args = step_args(step, home, data, dims, engine=engine, scheduler=scheduler)
    label = step if step.startswith("ingest_") or step.endswith("_hs4") else f"{step} ({engine})"
    result = run_step(label, args, {**env, "RECOMMENDER_HOME": str(home)}, log)
    if step.startswith("train_"):
        result |= trained(log, mark)
    elif step.startswith("recommend_"):
        import pyarrow.parquet as pq

        result["rows"] = pq.ParquetFile(args[args.index("--output") + 1]).metadata.num_rows
    return result


def pipeline(home: Path, data: Path, env: dict[str, str], log: Path, *, engine: str, ingest: bool,
             level4: bool, dims: dict, scheduler: str | None = None) -> dict:
    names = [*(["ingest_trade", "ingest_capacity", "ingest_geography"] if ingest else []),
             *(f"{command}_{task}" for task in dims.get("tasks", TASKS) for command in ("train", "recommend")),
             *([f"train_{dims.get('tasks', TASKS)[0]}_hs4"] if level4 else [])]
    return {name: measure_step(name, home, data, env, log, dims, engine=engine, scheduler=scheduler) for name in names}


def remeasure(steps: list[str], home: Path, data: Path, env: dict[str, str], log: Path, dims: dict) -> dict:
    """Run ``steps`` of the local half again on its home; a train first empties the feature store, so
    the measurement covers building the features as the first run's did. ``ingest_trade`` runs into
    an empty scratch home beside it (removed after), as the first run's did into an empty bank."""
    out = {}
    for step in steps:
        if step.startswith("train_"):
            shutil.rmtree(home / "features", ignore_errors=True)
        if step == "ingest_trade":
            scratch = home.with_name("home-ingest")
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                out[step] = measure_step(step, scratch, data, env, log, dims)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            continue
        out[step] = measure_step(step, home, data, env, log, dims)
    return out


def run(size: str | None = None, *, dask: bool | None = None, local: bool | None = None, work: Path | None = None,
        save: bool = True, scheduler: str | None = None) -> dict:
    """The benchmark at ``size`` (:data:`SIZES`; env ``SCALE_SIZE``, default ``baci``); with ``dask`` (env
    ``SCALE_DASK``, default on) again on a 2-worker LocalCluster, or on ``scheduler`` when given.

    ``SCALE_DASK_TASKS=import-substitution`` limits the Dask half to those tasks. ``SCALE_TASKS=diversification``
    runs those tasks instead of both (their HS6 train and recommend, and the first one's HS4 train), recorded
    as ``scale-<size>-<tasks>`` beside the two-task record; ``SCALE_HORIZON=3`` changes the size's horizon.
    ``local=False`` (env ``SCALE_LOCAL=0``) runs the Dask half alone, on the bank of an earlier local
    run of the same size, and compares with that run's recorded numbers (the halves of the BACI-size
    run take hours each); ``SCALE_REMEASURE=train_import-substitution,...`` first measures those
    local steps again on that bank (after a change that affects them) and records when;
    ``SCALE_DASK_REMEASURE=train_import-substitution`` does the same for steps of the Dask half, on
    its earlier home with its feature store kept (recorded as such), instead of running that half again.
    ``SCALE_DASK_ROUNDS=N`` caps the Dask half's boosting rounds at N: ``DaskLGBMRanker`` has no
    early stopping, so every fit there runs all of the spec's rounds (600) where the local fits stop
    after about 100; the cap keeps that half to hours, and is recorded.
    """
    size = size or os.environ.get("SCALE_SIZE", "baci")
    chosen = tuple(t for t in os.environ.get("SCALE_TASKS", "").split(",") if t)
    name = f"scale-{size}" + (f"-{'+'.join(chosen)}" if chosen else "")
    dask = (os.environ.get("SCALE_DASK", "1") == "1") if dask is None else dask
    local_run = (os.environ.get("SCALE_LOCAL", "1") == "1") if local is None else local
    work = work or WORK / f"scale-{size}"
    work.mkdir(parents=True, exist_ok=True)
    print(f"scale benchmark ({size}): writing the synthetic BACI world under {work}", flush=True)
    t0 = time.perf_counter()
    dims, flows = write_world(size, work / "data")
    if chosen:
        dims = {**dims, "tasks": chosen}
    if os.environ.get("SCALE_HORIZON"):  # diversification reads two lag years: 12 years leave 6 labelled at h = 4
        dims = {**dims, "horizon": int(os.environ["SCALE_HORIZON"])}
    print(f"  world: {flows:,} flows in {len(list((work / 'data' / 'baci').glob('*.csv')))} yearly CSVs "
          f"({time.perf_counter() - t0:.0f} s, cached for the next run)", flush=True)
    log = work / "steps.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    local_home = work / ("home-local" if not chosen else f"home-{'+'.join(chosen)}")
    remeasured: dict[str, str] = {}
    if local_run:
        shutil.rmtree(local_home, ignore_errors=True)
        local = pipeline(local_home, work / "data", env, log, engine="local", ingest=True, level4=size != "test", dims=dims)
    else:
        earlier = json.loads((RESULTS / f"{name}.json").read_text())
        local = earlier["local"]
        again = [s for s in os.environ.get("SCALE_REMEASURE", "").split(",") if s]
        # capacity and geography ingests take seconds: only the trade ingest is worth measuring alone
        choices = sorted(k for k in local if not k.startswith("ingest_") or k == "ingest_trade")
        if set(again) - set(choices):
            raise RuntimeError(f"SCALE_REMEASURE: {sorted(set(again) - set(choices))} cannot be measured again alone; "
                               f"choose among {choices}")
        if (dask or set(again) - {"ingest_trade"}) and not (local_home / "bank").exists():
            raise RuntimeError(f"SCALE_LOCAL=0 needs the bank of an earlier local run under {local_home}")
        on = f" on {machine()['cpu']}"  # the top-level machine is this run's; each step's own is kept here
        remeasured = {**earlier.get("remeasured", {}), **{s: datetime.now(UTC).isoformat(timespec="seconds") + on for s in again}}
        result_first_machine = earlier.get("first_run_machine", earlier.get("machine"))
        local = {**local, **remeasure(again, local_home, work / "data", env, log, dims)}
    tasks = dims.get("tasks", TASKS)
    result: dict = {"size": size, **dims, "flows": flows, "targets": TARGETS, "local": local}
    if not local_run:
        result["first_run_machine"] = result_first_machine
    if remeasured:
        result["remeasured"] = remeasured  # step → when it was measured again (later code), the rest from the first run
    if not local_run:  # the earlier run's Dask half stays in the record unless run or measured again below
        result.update({k: earlier[k] for k in ("dask_rounds", "dask", "same_candidate_counts") if k in earlier})
    dask_again = [s for s in os.environ.get("SCALE_DASK_REMEASURE", "").split(",") if s]
    if dask_again and not local_run:
        # the Dask half's steps again on its home, its feature store kept: what a later change to the
        # distributed fit costs, without the hours of building the features as Dask tasks again
        earlier_dask, rounds = earlier.get("dask", {}), earlier.get("dask_rounds")
        if set(dask_again) - set(earlier_dask):
            raise RuntimeError(f"SCALE_DASK_REMEASURE: choose among the recorded Dask steps {sorted(earlier_dask)}")
        again_dims = {**dims, **({"rounds": rounds} if rounds else {})}
        result["dask"] = {**earlier_dask, **{
            step: {**measure_step(step, work / "home-dask", work / "data", env, log, again_dims, engine="dask",
                                  scheduler=scheduler), "features": "reused from the feature store"}
            for step in dask_again}}
        result["remeasured"] = {**result.get("remeasured", {}),
                                **{f"dask {s}": datetime.now(UTC).isoformat(timespec="seconds") for s in dask_again}}
        dask = False
    if dask:
        dask_home = work / "home-dask"
        shutil.rmtree(dask_home, ignore_errors=True)
        dask_home.mkdir()
        os.symlink(local_home / "bank", dask_home / "bank")  # the shared bank; its own store and MLflow
        rounds = os.environ.get("SCALE_DASK_ROUNDS")
        on_dask = tuple(t for t in os.environ.get("SCALE_DASK_TASKS", ",".join(tasks)).split(",") if t)
        if rounds:
            result["dask_rounds"] = int(rounds)
        ran = pipeline(dask_home, work / "data", env, log, engine="dask", ingest=False, level4=False,
                       dims={**dims, "tasks": on_dask, **({"rounds": int(rounds)} if rounds else {})},
                       scheduler=scheduler)
        # with SCALE_LOCAL=0 and some tasks, the recorded Dask steps of the other tasks stay (copied above)
        result["dask"] = {**result.get("dask", {}), **ran}
        result["same_candidate_counts"] = {**result.get("same_candidate_counts", {}), **{
            t: ran[f"train_{t}"]["candidates"] == local[f"train_{t}"]["candidates"]
            and ran[f"recommend_{t}"]["rows"] == local[f"recommend_{t}"]["rows"] for t in on_dask}}
    steps = [s for part in ("local", "dask") for s in result.get(part, {}).values()]
    result["ingest_rows_per_s"] = round(flows / local["ingest_trade"]["seconds"])
    result["max_peak_rss_gb"] = max(s["peak_rss_gb"] for s in steps)
    result["meets"] = {
        "peak_rss": result["max_peak_rss_gb"] <= TARGETS["peak_rss_gb"],
        "ingest": result["ingest_rows_per_s"] >= TARGETS["ingest_rows_per_s"],
        "train": all(local[f"train_{t}"]["seconds"] <= TARGETS["train_minutes"] * 60 for t in tasks),
        "recommend": all(local[f"recommend_{t}"]["seconds"] <= TARGETS["recommend_minutes"] * 60 for t in tasks),
    }
    if save:
        record(name, result)
    return result


if __name__ == "__main__":
    print(run(sys.argv[1] if len(sys.argv) > 1 else None))
