"""Run a snippet in a fresh interpreter and measure wall time and peak RSS; record results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT / ".work"
RESULTS = ROOT / "results"

_WRAPPER = """
import json, time
def _vmhwm_mb():
    # peak resident set of this process image; unlike ru_maxrss it does not carry over exec()
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

_t0 = time.perf_counter()
{body}
_elapsed = time.perf_counter() - _t0
print("__RESULT__" + json.dumps({{"seconds": _elapsed, "peak_rss_mb": _vmhwm_mb(),
                                 "extra": globals().get("extra", {{}})}}))
"""


def measure(body: str, *, setup: str = "", env: dict[str, str] | None = None, repeat: int = 1) -> dict:
    """Run ``setup`` (not timed) then ``body`` (timed) in a new Python process.

    With ``repeat`` > 1 each run is a new process and the run with the median time is returned, with
    every run's seconds under ``runs_seconds`` (this machine's first touch of fresh memory varies by
    up to 2× between identical runs).
    """
    if repeat > 1:
        runs = sorted((measure(body, setup=setup, env=env) for _ in range(repeat)), key=lambda r: r["seconds"])
        return {**runs[len(runs) // 2], "runs_seconds": [r["seconds"] for r in runs]}
    code = textwrap.dedent(setup) + "\n" + _WRAPPER.format(body=textwrap.dedent(body))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark snippet failed:\n{proc.stderr[-4000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("__RESULT__"))
    return json.loads(line[len("__RESULT__"):])


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gb = round(mem_kb / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform()}


def record(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
