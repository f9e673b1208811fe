"""A machine's local copies of a remote bank's files, for DuckDB to read at local speed.

A published snapshot never changes (:mod:`recommender.bank.push` writes a new one), so a copy keyed
by the snapshot and the file's path stays right for as long as the snapshot lives. Files are
downloaded together (fsspec fetches them concurrently) to temporary names and renamed into
place, so two processes of one machine (two Dask workers) never read a half-written copy; at
worst both download the same file once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_ENV = "RECOMMENDER_BANK_CACHE"


def cache_root() -> Path:
    """``RECOMMENDER_BANK_CACHE``, else ``recommender-bank-cache`` in the system's temporary folder."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "recommender-bank-cache")


@dataclass(frozen=True)
class BankCache:
    """Local copies of the files under ``snapshots`` (a bank's ``…/snapshots`` URL) in ``folder``.

    ``held()`` names the snapshots the bank holds now: when a snapshot first enters the cache,
    the copies of snapshots the bank no longer holds are removed (the bank keeps the previous
    one for runs still reading it, and so does the cache).
    """

    fs: Any
    snapshots: str
    held: Callable[[], set[str]]
    root: Path | None = None

    @property
    def folder(self) -> Path:
        return (self.root or cache_root()) / hashlib.sha256(self.snapshots.encode()).hexdigest()[:16]

    def fetch(self, urls: list[str]) -> list[str]:
        """Local paths of ``urls`` (files of this bank's snapshots), downloading those not cached yet."""
        prefix = self.snapshots.rstrip("/") + "/"
        if any(not url.startswith(prefix) for url in urls):
            raise ValueError(f"not files of {self.snapshots}: {[u for u in urls if not u.startswith(prefix)][:3]}")
        local = [self.folder / url.removeprefix(prefix) for url in urls]
        missing = [(url, path) for url, path in zip(urls, local, strict=True) if not path.exists()]
        if missing:
            self._forget_retired({path.relative_to(self.folder).parts[0] for _, path in missing})
            parts = [path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.part") for _, path in missing]
            try:
                for part in parts:
                    part.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get([url for url, _ in missing], [str(part) for part in parts])
                for (_, path), part in zip(missing, parts, strict=True):
                    os.replace(part, path)
            finally:
                for part in parts:
                    part.unlink(missing_ok=True)
        return [str(path) for path in local]

    def _forget_retired(self, entering: set[str]) -> None:
        if not self.folder.is_dir():
            return
        cached = {p.name for p in self.folder.iterdir() if p.is_dir()}
        if entering <= cached:
            return
        for name in cached - self.held() - entering:
            shutil.rmtree(self.folder / name, ignore_errors=True)
