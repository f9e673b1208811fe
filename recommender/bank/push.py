"""``push``: publish the live snapshot of a local bank to object storage (``s3://bucket/bank``).

A Dask cluster without a shared filesystem reads its bank from object storage. The published
bank has the local layout (``CURRENT``, ``snapshots/<id>/…``) and the same commit rule: every file
of the snapshot is uploaded first, its ``manifest.json`` last, and only then is ``CURRENT`` (one
object, written by one atomic PUT) pointed at it. A reader therefore sees the old snapshot or the
new one, never a part; an interrupted push leaves the published bank as it was, and its partial
upload is removed by the next push. The previous snapshot is kept for readers still on it (a
training run pins the snapshot it started with); older ones are removed.

Files that the local bank shares with the snapshot already published (hard links: an ingest
links every unchanged file into its new snapshot) are copied inside the store (S3 CopyObject)
instead of uploaded again: adding capacity data to a BACI bank re-sends no trade.

One push at a time: a lock object (``.push-lock``, created only if absent) guards the store; the
local bank's writer lock is held too, so no ingest retires the snapshot being copied.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from recommender.bank import DataBank, remote_errors
from recommender.errors import BankEmptyError, RecommenderError

LOCK = ".push-lock"


@dataclass(frozen=True)
class PushResult:
    """What a push did (the JSON of ``recommender bank push --json``)."""

    url: str
    snapshot: str
    previous: str | None
    uploaded_files: int
    uploaded_bytes: int
    copied_files: int
    removed_snapshots: list[str]

    @property
    def unchanged(self) -> bool:
        return self.snapshot == self.previous

    def to_dict(self) -> dict:
        return asdict(self) | {"unchanged": self.unchanged}


def push(bank: DataBank, url: str, *, progress: Callable[[int], None] | None = None) -> PushResult:
    """Publish ``bank``'s live snapshot at ``url`` (an fsspec URL); see the module's docstring.

    ``progress(bytes)`` is called as each file is sent or copied.
    """
    if bank.remote:
        raise RecommenderError(f"push copies a local bank to object storage; {bank.root} is already remote")
    target = DataBank(url)
    if not target.remote:
        raise RecommenderError(f"{url} is not a URL: push publishes to object storage (s3://bucket/bank). A bank "
                               "in a shared folder needs no push: point --bank (or the home) at the folder")
    with bank.writer_lock(), _store_lock(target):
        snapshot = bank.snapshot_id
        if snapshot is None:
            raise BankEmptyError(f"the data bank at {bank.root} is empty; ingest some data before pushing it")
        local = Path(bank.root) / "snapshots" / snapshot
        previous = target.snapshot_id
        if snapshot == previous:
            return PushResult(url, snapshot, previous, 0, 0, 0, [])
        shared = _shared_files(Path(bank.root) / "snapshots" / previous) if previous else {}
        files = _data_files(local)
        uploaded = copied = sent = 0
        destination = target._path("snapshots", snapshot)
        with remote_errors(target):
            for path in files:
                stat = path.stat()
                dest = f"{destination}/{path.relative_to(local).as_posix()}"
                twin = shared.get((stat.st_dev, stat.st_ino))
                if twin is not None:
                    target.fs.copy(target._path("snapshots", previous, twin), dest)
                    copied += 1
                else:
                    target.fs.put_file(str(path), dest)
                    uploaded += 1
                    sent += stat.st_size
                if progress:
                    progress(stat.st_size)
            target.fs.pipe_file(f"{destination}/manifest.json", (local / "manifest.json").read_bytes())
            target.fs.pipe_file(target._path("CURRENT"), snapshot.encode())  # the commit: one atomic PUT
            keep = {snapshot, previous}
            removed = sorted(name for name in target.snapshot_names() if name not in keep)
            for name in removed:
                target.fs.rm(target._path("snapshots", name), recursive=True)
        return PushResult(url, snapshot, previous, uploaded, sent, copied, removed)


def _data_files(snapshot: Path) -> list[Path]:
    """A local snapshot's files but its manifest (sent last, as the commit's first half)."""
    return sorted(p for p in snapshot.rglob("*") if p.is_file() and p.name != "manifest.json")


def _shared_files(snapshot: Path) -> dict[tuple[int, int], str]:
    """(device, inode) → path in ``snapshot`` of every file: the files a newer snapshot hard-links.
    Empty when the published snapshot is no longer kept locally: everything is uploaded."""
    out = {}
    for path in _data_files(snapshot) if snapshot.is_dir() else []:
        stat = path.stat()
        out[(stat.st_dev, stat.st_ino)] = path.relative_to(snapshot).as_posix()
    return out


@contextmanager
def _store_lock(target: DataBank) -> Iterator[None]:
    """The store's push lock: an object created only if absent (S3's conditional write, ``If-None-Match``)."""
    lock = target._path(LOCK)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
    with remote_errors(target):
        try:
            with target.fs.open(lock, "xb") as f:
                f.write(json.dumps(holder).encode())
        except FileExistsError as exc:
            raise RecommenderError(
                f"another push to {target.root} is running ({_holder(target, lock)}), or a killed one left its lock: "
                f"if none is running, remove {target.root}/{LOCK} and push again") from exc
    try:
        yield
    finally:
        with remote_errors(target):
            target.fs.rm_file(lock)


def _holder(target: DataBank, lock: str) -> str:
    try:
        holder = json.loads(target.fs.cat_file(lock))
        return f"{holder['host']}, process {holder['pid']}, since {holder['since']}"
    except Exception:  # the lock vanished meanwhile, or is unreadable: say nothing more
        return "holder unknown"
