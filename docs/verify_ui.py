"""Check in a real headless browser that the MLflow UI shows the experiments and a run's artifacts.

Usage: ``python -m docs.verify_ui [--home HOME] [--port PORT]`` (needs Debian's ``chromium``).
Starts ``recommender ui`` on 127.0.0.1, loads the experiment page and a training run's artifact
page in headless Chromium, checks the rendered DOM for the run name and the artifact files, and
saves screenshots to docs/ui-experiment.png and docs/ui-run-artifacts.png. Exits 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1400,900", "--virtual-time-budget=20000"]


def get(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def chromium(url: str, *, screenshot: Path | None = None) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        args = [browser, *FLAGS, f"--user-data-dir={profile}"]
        if screenshot is not None:
            subprocess.run([*args, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
        return subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=os.environ.get("RECOMMENDER_HOME", ".recommender"))
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "recommender", "--home", args.home, "ui", "--port", str(args.port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(120):
            try:
                experiments = get(f"{base}/ajax-api/2.0/mlflow/experiments/search?max_results=50")["experiments"]
                break
            except OSError:
                time.sleep(1)
        else:
            print("the UI did not start")
            return 1
        exp = next(e for e in experiments if e["name"] == "import-substitution")
        runs = get(f"{base}/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1})["runs"]
        run = runs[0]["info"]
        ok = True
        dom = chromium(f"{base}/#/experiments/{exp['experiment_id']}/runs", screenshot=DOCS / "ui-experiment.png")
        found = run["run_name"] in dom
        print(f"experiment page lists run {run['run_name']!r}: {found}")
        ok &= found
        dom = chromium(f"{base}/#/experiments/{exp['experiment_id']}/runs/{run['run_id']}/artifacts/model_vs_baselines.png",
                       screenshot=DOCS / "ui-run-artifacts.png")
        for name in ("feature_importance.png", "model_vs_baselines.png", "metric_by_year.png", "per_year_metrics.csv"):
            present = name in dom
            print(f"run artifacts page shows {name}: {present}")
            ok &= present
        with urllib.request.urlopen(f"{base}/get-artifact?path=model_vs_baselines.png&run_uuid={run['run_id']}", timeout=10) as resp:
            png = resp.read()
        served = png[:4] == b"\x89PNG"
        print(f"artifact model_vs_baselines.png served as a PNG ({len(png):,} bytes): {served}")
        ok &= served
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
