"""A real ``recommender scoring-service`` process on 127.0.0.1 for tests and benchmarks (not a test module)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.postgres import free_port

STARTUP = 600  # seconds: a loaded machine may take minutes to import, load the champions and build their scorers


class ScoringServiceProcess:
    """``recommender --home HOME [--tracking-uri URI] scoring-service --port P …`` with its log in ``log``."""

    def __init__(self, home: Path, log: Path, *options: str, tracking_uri: str | None = None, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        uri = ["--tracking-uri", tracking_uri] if tracking_uri else []
        self._out = open(log, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "recommender", "--home", str(home), *uri, "scoring-service", "--port", str(self.port),
             *options], stdout=self._out, stderr=subprocess.STDOUT, env=env or dict(os.environ), start_new_session=True)
        self.wait_ready()

    def wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the scoring service exited during start-up:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/health", timeout=10).json().get("ready"):
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the scoring service was not ready within {STARTUP} s:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=300)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        self._out.close()
