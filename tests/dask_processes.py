"""A real Dask cluster for the tests: ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def _wait_for(path: Path, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready after {timeout} s")
        time.sleep(0.5)


@contextmanager
def dask_cluster(folder: Path, *, workers: int = 2, wrap: Sequence[str] = ()) -> Iterator[str]:
    """Start a scheduler and ``workers`` single-threaded workers (each worker's command after the
    ``wrap`` prefix, e.g. a namespace), wait for all of them, yield the scheduler's address; stop
    them all on the way out. Logs: ``folder/scheduler.log``, ``folder/worker<i>.log``."""
    from distributed import Client

    file = folder / "scheduler.json"
    procs: list[subprocess.Popen] = []
    with ExitStack() as logs:
        def start(name: str, argv: list[str]) -> subprocess.Popen:
            log = logs.enter_context(open(folder / f"{name}.log", "w"))
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
            return procs[-1]

        try:
            scheduler = start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                            "--no-dashboard", "--scheduler-file", str(file)])
            _wait_for(file, scheduler, "dask scheduler")
            for i in range(workers):
                start(f"worker{i}", [*wrap, str(BIN / "dask"), "worker", "--scheduler-file", str(file), "--nworkers", "1",
                                     "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"])
            address = json.loads(file.read_text())["address"]
            with Client(address, timeout="120s") as client:
                client.wait_for_workers(workers, timeout=300)
            yield address
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
