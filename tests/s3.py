"""An S3-compatible server on 127.0.0.1 for the remote-bank tests: moto's standalone server.

moto (PyPI) answers the S3 REST protocol over HTTP, conditional writes (``If-None-Match``) included;
the code under test talks to it through s3fs and botocore exactly as to AWS or MinIO. MinIO and
Ceph's gateway are not reachable from this project's registries (PyPI, Debian, npm) without a
whole Ceph cluster, hence moto. Its data lives in the server process's memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.postgres import free_port

#: AWS_* settings every client of the server needs (this process, the CLI, Dask workers).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "recommender", "AWS_SECRET_ACCESS_KEY": "s3-secret-4b2e",
               "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    log: Path
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def start(self, timeout: float = 300) -> S3Server:
        """Start the server and wait until it answers (a generous deadline: CI machines are loaded)."""
        self.port = free_port()
        with self.log.open("w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the S3 server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=10).close()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the S3 server did not answer within {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
