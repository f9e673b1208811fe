"""A throw-away PostgreSQL server on 127.0.0.1 for the team-mode tests (Debian's ``postgresql``, `make postgres`).

``initdb`` refuses to run as root, so under root the server runs as the ``postgres`` system user that
the Debian package creates. Password authentication (SCRAM) is on, as on a real installation.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    folder: Path
    port: int
    user: str = "recommender"
    password: str = "pg-secret-7d1f"  # checked to never appear in output, logs or MLflow

    def uri(self, database: str = "mlflow") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout,
                              cwd="/tmp", env={**os.environ, "PGPASSWORD": self.password})
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
        return done

    def start(self) -> Postgres:
        data, pwfile = self.folder / "data", self.folder / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run(find_bin("initdb"), "-D", str(data), "-U", self.user, "--pwfile", str(pwfile),
                  "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C")
        self.resume()
        self.createdb("mlflow")
        return self

    def resume(self) -> None:
        """Start the server again on its existing data folder and port (after :meth:`stop`)."""
        self._run(find_bin("pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "server.log"), "-w",
                  "-t", "300", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder}", "start")

    def createdb(self, name: str) -> None:
        self._run(find_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)

    def stop(self) -> None:
        self._run(find_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "-t", "300", "stop")


def start_postgres() -> Postgres:
    """Start a server in a fresh folder under the system temp dir; the caller stops it and removes ``folder``.

    Not under pytest's ``tmp_path``: its folders are private (0700), which the ``postgres`` user cannot enter.
    """
    folder = Path(tempfile.mkdtemp(prefix="recommender-pg-"))
    os.chmod(folder, 0o755)
    deadline = time.monotonic() + 300
    while True:
        try:
            return Postgres(folder, free_port()).start()
        except subprocess.CalledProcessError as exc:  # a port taken between free_port() and start: try another
            if "could not bind" not in (exc.stderr or "") + (exc.stdout or "") or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}") from exc
            shutil.rmtree(folder / "data", ignore_errors=True)
