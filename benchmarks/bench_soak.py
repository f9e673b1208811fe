"""Soak: a team server under a secretariat's load (issue 31).

Starts a throw-away PostgreSQL on 127.0.0.1 (Debian's ``postgresql``, ``make postgres``) and the team
server on it with ``--auth``, exactly as ``recommender server`` runs for a team, and then for
``SOAK_SECONDS`` (default 600):

* ``SOAK_ANALYSTS`` (default 8) analysts, each a separate process with an account of its own, score
  lists of 1,000, 2,000, 5,000 or 10,000 import-substitution candidates with ``recommender score
  --service`` against a resident ``recommender scoring-service`` on the same machine (the CLI a user
  runs: process start, upload, the service's champion lookup and run record under the analyst's
  account, writing the file); with ``SOAK_SERVICE=0`` each ``recommender score`` starts cold instead
  (champion download, the year's candidates and features built per list: results in soak-cold.json);
* one process trains joint projects twice (each a new run and model version through the server);
* one reader lists the models (``recommender models``) and searches the runs (REST) in a loop;
* the server's memory (RSS of its whole process tree) is sampled every 5 s.

Reported: requests and rows served, errors (target 0), p50/p95 latency of a 1,000-row score
(target p95 ≤ 5 s on 2 cores), server memory over time (first vs last fifth: no growth trend),
and a check afterwards that every run the trainings created is FINISHED with its metrics and
model, and every version they registered is there. ``python -m benchmarks.run soak`` or ``make soak``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._harness import WORK, record

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SERVICE = os.environ.get("SOAK_SERVICE", "1") != "0"
"""Analysts score through a resident ``recommender scoring-service`` (default), or (``SOAK_SERVICE=0``) each
``recommender score`` starts cold: loads the champion and builds the year's candidates itself."""
ANALYSTS = int(os.environ.get("SOAK_ANALYSTS", "8"))
SIZES = (1_000, 2_000, 5_000, 10_000)
ADMIN, ADMIN_PASSWORD = "admin", "soak-admin-pw-6f2a"
FAST = ("--horizon", "2", "--seeds", "1", "--param", "n_estimators=40")
TARGET = {"errors": 0, "p95_seconds_1000_rows": 5.0}


def _env(user: str, password: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password, "COLUMNS": "160", **extra}


def _cli(home: Path, url: str, user: str, password: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recommender", "--home", str(home), "--tracking-uri", url, *map(str, args)],
                          capture_output=True, text=True, timeout=3600, env=_env(user, password, **extra))


def _tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


ANALYST = r"""
import json, os, subprocess, sys, time
import pandas as pd
home, url, user, password, pool, out, deadline, seed, service = sys.argv[1:10]
rng = __import__("numpy").random.default_rng(int(seed))
sizes = [1000, 2000, 5000, 10000]
cands = pd.read_csv(pool, dtype=str)
env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
env.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password, COLUMNS="160")
rows, i = [], 0
while time.time() < float(deadline):
    n = int(sizes[i % len(sizes)]); i += 1
    lst = f"{out}.{i}.csv"
    cands.sample(n, replace=True, random_state=int(rng.integers(1 << 31))).to_csv(lst, index=False)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "recommender", "--home", home, "--tracking-uri", url, "score", lst,
                           "--task", "import-substitution", "--output", f"{lst}.out.csv",
                           *(["--service", service] if service else [])], capture_output=True, text=True,
                          timeout=3600, env=env)
    seconds = time.time() - start
    ok = proc.returncode == 0 and len(pd.read_csv(f"{lst}.out.csv")) == n if proc.returncode == 0 else False
    run = [w for w in proc.stdout.split() if len(w) == 32 and w.isalnum()]
    rows.append({"user": user, "rows": n, "seconds": seconds, "ok": bool(ok), "run_id": run[0] if run else "",
                 "error": "" if ok else proc.stderr[-500:]})
    for f in (lst, f"{lst}.out.csv"):
        if os.path.exists(f):
            os.remove(f)
json.dump(rows, open(out, "w"))
"""


def run() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests import postgres

    if postgres.find_bin("initdb") is None:
        print("soak: PostgreSQL is not installed (`make postgres`); skipped")
        return {"skipped": True}
    from recommender.bank.synthetic import WorldSpec
    from recommender.config import Config
    from recommender.demo import build_demo_bank

    root = WORK / "soak"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    home, pg = root / "analyst", postgres.start_postgres()
    server = None
    try:
        list(build_demo_bank(Config(home=home), spec=WorldSpec.tiny(seed=7)))
        port = postgres.free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(root / "server.log", "w")
        server = subprocess.Popen([sys.executable, "-m", "recommender", "--home", str(root / "server-home"), "server",
                                   "--backend-store-uri", pg.uri(), "--artifacts-destination", str(root / "artifacts"),
                                   "--port", str(port), "--auth"], stdout=log, stderr=subprocess.STDOUT,
                                  env={**_env(ADMIN, ADMIN_PASSWORD), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
                                  start_new_session=True)
        _wait_ready(url, server)
        admin = lambda *a, **e: _checked(_cli(home, url, ADMIN, ADMIN_PASSWORD, *a, **e))  # noqa: E731
        admin("train", "--task", "import-substitution", *FAST)
        admin("train", "--task", "joint-projects", *FAST)
        pool = root / "candidates.csv"
        admin("recommend", "--task", "import-substitution", "--output", pool)
        pd.read_csv(pool, dtype=str)[["importer", "supplier", "product"]].to_csv(pool, index=False)
        users = [(f"analyst{i}", f"soak-analyst-pw-{i}-9c3d") for i in range(ANALYSTS)]
        pd.read_csv(pool, dtype=str).head(100).to_csv(root / "first.csv", index=False)
        admin("score", root / "first.csv", "--task", "import-substitution")  # creates the scoring experiment
        for user, password in users:
            admin("users", "add", user, RECOMMENDER_NEW_PASSWORD=password)
            admin("users", "grant", user, "--experiment", "import-substitution-scoring", "--permission", "EDIT")
        admin("users", "grant", "analyst0", "--experiment", "joint-projects", "--permission", "EDIT")
        admin("users", "grant", "analyst0", "--model", "joint-projects-SCO", "--permission", "EDIT")
        service = None
        if SERVICE:
            from tests.scoring_service import ScoringServiceProcess

            service = ScoringServiceProcess(home, root / "service.log", "--preload", "import-substitution",
                                            tracking_uri=url, env=_env(ADMIN, ADMIN_PASSWORD))
        try:
            return _soak(root, home, url, server, pool, users, service)
        finally:
            if service is not None:
                service.stop()
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=300)
        pg.stop()
        shutil.rmtree(pg.folder, ignore_errors=True)


def _soak(root: Path, home: Path, url: str, server: subprocess.Popen, pool: Path, users: list[tuple[str, str]],
          service=None) -> dict:
    import requests
    from mlflow import MlflowClient

    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = ADMIN, ADMIN_PASSWORD
    client = MlflowClient(url)
    versions_before = {mv.version for mv in client.search_model_versions("name='joint-projects-SCO'")}
    experiments = [client.get_experiment_by_name(n).experiment_id for n in ("import-substitution", "joint-projects")]
    start = time.time()
    deadline = start + SECONDS
    analysts = [subprocess.Popen([sys.executable, "-c", ANALYST, str(home), url, user, password, str(pool),
                                  str(root / f"{user}.json"), str(deadline), str(i), service.url if service else ""],
                                 env=_env(user, password))
                for i, (user, password) in enumerate(users)]
    memory, reads, trains = [], [], []

    def trainer():  # analyst0 trains joint projects twice, spread over the soak
        for _ in range(2):
            t = time.time()
            proc = _cli(home, url, users[0][0], users[0][1], "train", "--task", "joint-projects", *FAST)
            trains.append({"seconds": time.time() - t, "ok": proc.returncode == 0, "error": proc.stderr[-500:]})
            time.sleep(max(0.0, min(SECONDS / 3, deadline - time.time() - 120)))

    def reader():
        while time.time() < deadline:
            t = time.time()
            proc = _cli(home, url, users[-1][0], users[-1][1], "models", "--json")
            search = requests.post(url + "/api/2.0/mlflow/runs/search", json={"experiment_ids": experiments, "max_results": 100},
                                   auth=users[-1], timeout=300)
            reads.append({"seconds": time.time() - t, "ok": proc.returncode == 0 and search.status_code == 200,
                          "error": (proc.stderr + search.text)[-300:] if proc.returncode or search.status_code != 200 else ""})
            time.sleep(5)

    with ThreadPoolExecutor(2) as threads:
        jobs = [threads.submit(trainer), threads.submit(reader)]
        while time.time() < deadline or any(p.poll() is None for p in analysts):
            memory.append({"t": round(time.time() - start, 1), "rss_mb": round(_tree_rss(server.pid) / 2**20, 1),
                           **({"service_rss_mb": round(_tree_rss(service.process.pid) / 2**20, 1)} if service else {})})
            time.sleep(5)
        for job in jobs:
            job.result()
    for p in analysts:
        p.wait()
    scores = pd.DataFrame([row for user, _ in users for row in json.loads((root / f"{user}.json").read_text())])
    return _report(client, scores, pd.DataFrame(reads), pd.DataFrame(trains), pd.DataFrame(memory), versions_before, start,
                   service is not None)


def _report(client, scores: pd.DataFrame, reads: pd.DataFrame, trains: pd.DataFrame, memory: pd.DataFrame,
            versions_before: set[str], start: float, service: bool) -> dict:
    new = [client.get_model_version("joint-projects-SCO", v) for v in
           sorted({mv.version for mv in client.search_model_versions("name='joint-projects-SCO'")} - versions_before)]
    complete = []
    for mv in new:
        run = client.get_run(mv.run_id)
        artifacts = {a.path for a in client.list_artifacts(mv.run_id)}
        complete.append(run.info.status == "FINISHED" and "test_ndcg_at_10" in run.data.metrics and "per_year_metrics.csv" in artifacts)
    recorded = 0
    for row in scores[scores["ok"]].itertuples():
        run = client.get_run(row.run_id) if row.run_id else None
        recorded += bool(run and run.info.status == "FINISHED" and run.data.params.get("rows") == str(row.rows)
                         and client.list_artifacts(row.run_id))
    small = scores[scores["rows"] == 1_000]["seconds"]
    fifth = max(1, len(memory) // 5)
    errors = int((~scores["ok"]).sum() + (~reads["ok"]).sum() + (~trains["ok"]).sum())
    out = {
        "seconds": SECONDS, "analysts": ANALYSTS, "list_sizes": list(SIZES),
        "scoring": "resident service (recommender scoring-service, score --service)" if service else "cold CLI per list",
        "score_requests": len(scores), "rows_scored": int(scores.loc[scores["ok"], "rows"].sum()),
        "score_seconds_by_size": {str(n): {"p50": round(float(g.median()), 2), "p95": round(float(np.percentile(g, 95)), 2),
                                           "count": len(g)} for n, g in scores.groupby("rows")["seconds"]},
        "p50_seconds_1000_rows": round(float(small.median()), 2), "p95_seconds_1000_rows": round(float(np.percentile(small, 95)), 2),
        "reads": len(reads), "read_p95_seconds": round(float(np.percentile(reads["seconds"], 95)), 2) if len(reads) else None,
        "trainings": len(trains), "training_seconds": [round(float(s), 1) for s in trains["seconds"]],
        "errors": errors, "error_samples": [e for e in pd.concat([scores["error"], reads.get("error", pd.Series(dtype=str)),
                                                                 trains["error"]]).tolist() if e][:5],
        "server_rss_mb": {"first_fifth_mean": round(float(memory["rss_mb"][:fifth].mean()), 1),
                          "last_fifth_mean": round(float(memory["rss_mb"][-fifth:].mean()), 1),
                          "max": float(memory["rss_mb"].max()), "samples": memory.to_dict("records")},
        **({"service_rss_mb": {"first_fifth_mean": round(float(memory["service_rss_mb"][:fifth].mean()), 1),
                               "last_fifth_mean": round(float(memory["service_rss_mb"][-fifth:].mean()), 1),
                               "max": float(memory["service_rss_mb"].max())}} if service else {}),
        "versions_created": len(new), "versions_complete": int(sum(complete)),
        "scoring_runs_complete": recorded,
        "wall_seconds": round(time.time() - start, 1), "target": TARGET,
    }
    out["met"] = bool(out["errors"] == 0 and out["p95_seconds_1000_rows"] <= TARGET["p95_seconds_1000_rows"]
                      and out["versions_complete"] == out["versions_created"] == len(trains)
                      and recorded == int(scores["ok"].sum()))
    print(f"soak: {out['score_requests']} scores ({out['rows_scored']:,} rows), {out['reads']} reads, {len(trains)} trainings, "
          f"{errors} errors; 1,000 rows p50 {out['p50_seconds_1000_rows']} s p95 {out['p95_seconds_1000_rows']} s; server RSS "
          f"{out['server_rss_mb']['first_fifth_mean']} → {out['server_rss_mb']['last_fifth_mean']} MB; versions "
          f"{out['versions_complete']}/{out['versions_created']} complete, scoring runs {recorded}/{int(scores['ok'].sum())} "
          "complete", flush=True)
    record("soak" if service else "soak-cold", out)
    return out


def _checked(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    if proc.returncode:
        raise RuntimeError(f"soak set-up failed: {proc.args[-6:]}: {proc.stderr[-2000:]}")
    return proc


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the team server exited during start-up; see its server.log")
        try:
            if requests.get(url + "/health", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError("the team server did not answer within 600 s")


if __name__ == "__main__":
    run()
