"""A new BACI release adds a year: retrain on the bank that gained it, against a cold train of the same bank.

The synthetic BACI world's yearly files (:func:`benchmarks.bench_scale.write_world`) are ingested
without their last year and a task is trained (which fills the feature cache); then the last year
is ingested, as the next release would bring it, and the task is trained again: the timed
**incremental** train. Last, the feature cache is removed and the same bank is trained **cold**.
Each train is a ``recommender train`` process (wall time and peak RSS of its process tree), with
its log lines timed so the result says where the time went.

Target (issue 30): incremental ≤ 40 % of the cold train. ``INCREMENTAL_SIZE`` picks the world
(:data:`benchmarks.bench_scale.SIZES` plus ``mid``; default ``mid``), ``INCREMENTAL_TASKS`` the
tasks (default import-substitution).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from benchmarks._harness import WORK, record
from benchmarks.bench_scale import SIZES, run_step, step_args, write_world

MID = {"countries": 120, "products": 1200, "years": 20, "horizon": 5}


def _ingest_years(home: Path, files: list[Path], env: dict[str, str], log: Path, name: str) -> dict:
    folder = home.parent / f"release-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for f in files:  # a release folder holding just these years (links, not copies)
        (folder / f.name).symlink_to(f)
    return run_step(f"ingest {name}", ["ingest", "trade", str(folder), "--format", "baci"], env, log)


def _cache_counts(log: Path, start: int) -> dict:
    text = log.read_text()[start:]
    hit = re.findall(r"features: (\d+) of (\d+) years reused", text)
    every = re.findall(r"features: all (\d+) years reused", text)
    folds = re.findall(r"models: (\d+) fold model\(s\) reused, (\d+) fit", text)
    fits = {"fit_models_reused": int(folds[-1][0]) if folds else 0, "fit_models_fit": int(folds[-1][1]) if folds else -1}
    if hit:
        return {"reused": int(hit[-1][0]), "built": int(hit[-1][1]) - int(hit[-1][0])} | fits
    return ({"reused": int(every[-1]), "built": 0} if every else {"reused": -1, "built": -1}) | fits


def _train(task: str, home: Path, data: Path, dims: dict, env: dict[str, str], log: Path, label: str) -> dict:
    mark = len(log.read_text())
    result = run_step(f"{label} {task}", step_args(f"train_{task}", home, data, dims), env, log)
    return result | {"feature_cache": _cache_counts(log, mark)}


def run(size: str | None = None) -> dict:
    size = size or os.environ.get("INCREMENTAL_SIZE", "mid")
    sizes = {**SIZES, "mid": MID}
    dims = sizes[size]
    SIZES.setdefault(size, dims)  # write_world reads the dimensions from SIZES
    work = WORK / f"incremental-{size}"
    data = WORK / f"scale-{size}" / "data"
    _, flows = write_world(size, data)
    tasks = os.environ.get("INCREMENTAL_TASKS", "import-substitution").split(",")
    out: dict = {"size": size, **{k: v for k, v in dims.items() if k != "tasks"}, "flows": flows,
                 "target": "incremental train seconds <= 40% of the cold train's, per task"}
    years = sorted((data / "baci").glob("BACI_*.csv"))
    for task in tasks:
        home = work / task / "home"
        shutil.rmtree(home.parent, ignore_errors=True)
        home.mkdir(parents=True)
        env = {**os.environ, "RECOMMENDER_HOME": str(home)}
        log = home.parent / "log.txt"
        log.write_text("")
        steps: dict = {"ingest_first_years": _ingest_years(home, years[:-1], env, log, "first-years")}
        for kind in ("capacity", "geography"):
            run_step(f"ingest {kind}", step_args(f"ingest_{kind}", home, data, dims), env, log)
        steps["train_without_last_year"] = _train(task, home, data, dims, env, log, "train (years 1..n-1)")
        steps["ingest_last_year"] = _ingest_years(home, years[-1:], env, log, "last-year")
        steps["train_incremental"] = _train(task, home, data, dims, env, log, "train (incremental)")
        shutil.rmtree(home / "features")
        steps["train_cold"] = _train(task, home, data, dims, env, log, "train (cold)")
        steps["ratio"] = steps["train_incremental"]["seconds"] / steps["train_cold"]["seconds"]
        out[task] = steps
    out["met"] = all(out[t]["ratio"] <= 0.40 for t in tasks)
    record(f"incremental-{size}", out)
    return out
