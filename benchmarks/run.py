"""Run benchmarks and write benchmarks/results/*.json and benchmarks/RESULTS.md.

Usage: ``python -m benchmarks.run [ingest complexity features scoring ...]`` (default: all).
"""

from __future__ import annotations

import importlib
import json
import sys

from benchmarks._harness import RESULTS, ROOT

BENCHMARKS = ["ingest", "complexity", "features", "scoring", "quality"]


def write_summary() -> None:
    lines = ["# Benchmark results", "", "Written by `make bench` (`python -m benchmarks.run`). Raw numbers: `results/*.json`.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        m = data["machine"]
        lines += [f"## {data['benchmark']}", "", f"{data['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}", ""]
        lines += ["```json", json.dumps({k: v for k, v in data.items() if k not in {"machine", "benchmark", "date"}}, indent=2), "```", ""]
    (ROOT / "RESULTS.md").write_text("\n".join(lines))


def main(names: list[str]) -> None:
    for name in names or BENCHMARKS:
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
        except ModuleNotFoundError:
            print(f"{name}: not available yet")
            continue
        print(f"== {name}", flush=True)
        result = module.run()
        print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=2), flush=True)
    write_summary()


if __name__ == "__main__":
    main(sys.argv[1:])
