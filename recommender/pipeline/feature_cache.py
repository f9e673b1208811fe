"""The on-disk feature cache: one file per task table year, keyed by the content of what it reads.

A task's table for candidate year t reads the trade of t and its lags (:func:`year_inputs`), the
trade of t + h for the labels, the capacity of the lag years, and, whatever the year, the
geography and the bank's product codes. Each stored year file is named by the hash of exactly
those inputs, as content (the SHA-256 of the bank's Parquet files of each year; a file the bank
carries over unchanged between snapshots is hard-linked and hashed once, :class:`Fingerprints`),
plus the bloc, the task's options, the product level and :data:`FEATURE_VERSION`. So:

* adding a year to the bank builds that year and the h years whose labels it completes, and
  reuses every other year;
* a corrected year (a new BACI release re-issuing 2012) rebuilds exactly the years that read
  2012: 2012 itself, the years whose lags reach it, and the year whose label is 2012;
* a new geography or product list (which every year reads) rebuilds all of them.

Layout: ``<home>/features/<family>/key.json`` (bloc, task, level, version: :class:`TableFamily`)
and ``<family>/year=<t>-<digest>.parquet``. Each file is written under a temporary name and
renamed into place, so a killed build leaves only whole years, which the next run reuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.assemble import lag_years
from models.tasks import Task
from recommender.bank import DataBank
from recommender.tables import file_sha256

FEATURE_VERSION = "2026.12-2"
"""Bump when any feature or label definition changes: every stored year is then rebuilt."""


def _digest(blob: object) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def year_inputs(task: Task, year: int) -> tuple[list[int], list[int]]:
    """(trade years, capacity years) that year ``year``'s candidates, features and labels read."""
    features = sorted(lag_years([year], task.lags))
    return sorted({*features, year + task.horizon}), features


class Fingerprints:
    """SHA-256 of a bank's year files, remembered by file identity (device, inode, size, mtime).

    The bank never rewrites a file in place (a snapshot hard-links the files it keeps and writes new
    ones beside them), so an identity seen before has the same content; the memo lives in the
    cache folder (``fingerprints.json``), not in the bank, which may be read-only.
    """

    def __init__(self, path: Path):
        self.path = path
        try:
            self._memo: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self._memo = {}
        self._used: set[str] = set()
        self.hashed = 0

    def file(self, name: str) -> str:
        st = os.stat(name)
        ident = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        self._used.add(ident)
        if ident not in self._memo:
            self._memo[ident] = file_sha256(Path(name))
            self.hashed += 1
        return self._memo[ident]

    def table_years(self, bank: DataBank, table: str, years: Iterable[int]) -> dict[int, str | None]:
        """Content hash of each year of a year-partitioned table (None: the bank has no such year)."""
        held = set(bank.years(table)) if bank.has(table) else set()
        return {int(y): (_digest(sorted(self.file(f) for f in bank.local_files(table, [y]))) if y in held else None)
                for y in years}

    def table(self, bank: DataBank, table: str) -> str | None:
        files = bank.local_files(table) if bank.has(table) else []
        return _digest(sorted(self.file(f) for f in files)) if files else None

    def save(self) -> None:
        """Keep the identities used by this bank state (older ones name files that are gone)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}-{uuid.uuid4().hex[:6]}")
        tmp.write_text(json.dumps({k: v for k, v in self._memo.items() if k in self._used}))
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class TableFamily:
    """What a task table is, whatever the data: change a field and every year is another file."""

    bloc: tuple[str, ...]
    task: dict  # Task.params(): name, horizon, candidate threshold, relevance thresholds
    product_level: int
    feature_version: str = FEATURE_VERSION

    @property
    def digest(self) -> str:
        return _digest({"bloc": list(self.bloc), "task": self.task, "level": self.product_level,
                        "features": self.feature_version})


@dataclass(frozen=True)
class DatasetKey:
    """A task table of one bank state: its family and, for each candidate year, the digest of its inputs."""

    family: TableFamily
    manifest_hash: str  # the bank state (what the model's run records); not part of the year digests
    years: dict[int, str]  # candidate year → digest of what it reads

    @property
    def digest(self) -> str:
        return _digest({"family": self.family.digest, "years": self.years})


def dataset_key(bank: DataBank, task: Task, bloc: Collection[str], product_level: int,
                fingerprints: Fingerprints | None = None) -> DatasetKey:
    """The key of ``task``'s table on ``bank``: one digest per trade year of the bank."""
    family = TableFamily(tuple(sorted(set(bloc))), task.params(), int(product_level))
    prints = fingerprints or Fingerprints(Path(os.devnull))
    years = bank.years("trade")
    needs = {y: year_inputs(task, y) for y in years}
    trade = prints.table_years(bank, "trade", sorted({t for tr, _ in needs.values() for t in tr}))
    capacity = prints.table_years(bank, "capacity", sorted({c for _, cap in needs.values() for c in cap}))
    shared = {"geography": prints.table(bank, "geography"), "classification": bank.classification,
              "products": _digest(bank.product_codes(product_level))}
    digests = {y: _digest({"family": family.digest, "year": y, "shared": shared,
                           "trade": {t: trade[t] for t in tr}, "capacity": {c: capacity[c] for c in cap}})
               for y, (tr, cap) in needs.items()}
    return DatasetKey(family, bank.manifest_hash(), digests)


class FeatureCache:
    """Feature tables under ``root`` (``<home>/features``): a folder per family, a file per year."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def fingerprints(self) -> Fingerprints:
        return Fingerprints(self.root / "fingerprints.json")

    def folder(self, key: DatasetKey) -> Path:
        return self.root / key.family.digest

    def path(self, key: DatasetKey, year: int) -> Path:
        return self.folder(key) / f"year={year}-{key.years[year]}.parquet"

    def years(self, key: DatasetKey) -> list[int]:
        """The candidate years of ``key`` the cache holds."""
        return sorted(y for y in key.years if self.path(key, y).exists())

    def has(self, key: DatasetKey) -> bool:
        return bool(key.years) and len(self.years(key)) == len(key.years)

    def read(self, key: DatasetKey, years: Collection[int] | None = None) -> pd.DataFrame:
        """The stored years (default all of ``key``'s), sorted as :meth:`Task.build_dataset` sorts."""
        wanted = [y for y in self.years(key) if years is None or y in set(years)]
        if not wanted:
            return pd.DataFrame()
        # one Arrow table (the years' columns chained, not copied) converted column by column, each
        # Arrow buffer freed once converted: the peak is about one copy of the table, not two
        table = pa.concat_tables([pq.read_table(self.path(key, y)) for y in wanted], promote_options="permissive")
        return table.to_pandas(self_destruct=True, split_blocks=True)

    def write(self, key: DatasetKey, year: int, table: pd.DataFrame) -> None:
        """Store one year whole: written under a temporary name, then renamed into place."""
        target = self._target(key, year)
        tmp = target.with_name(f".{target.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            table.to_parquet(tmp, index=False)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def staging(self, key: DatasetKey) -> Path:
        """A fresh folder where workers write ``year=Y.parquet`` files before :meth:`adopt`."""
        folder = self.root / f".staging-{key.family.digest}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True)
        return folder

    def adopt(self, key: DatasetKey, staging: Path, year: int) -> None:
        """Move a worker's finished ``staging/year=Y.parquet`` into the cache."""
        os.replace(staging / f"year={year}.parquet", self._target(key, year))

    def _target(self, key: DatasetKey, year: int) -> Path:
        """Where ``year`` goes, its family folder made and described (``key.json``) first."""
        target = self.path(key, year)
        family = target.parent / "key.json"
        if not family.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = family.with_name(f".key-{uuid.uuid4().hex[:6]}.json")
            tmp.write_text(json.dumps({**key.family.__dict__, "digest": key.family.digest}, indent=2, sort_keys=True))
            os.replace(tmp, family)
        return target

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def prune(self, key: DatasetKey) -> list[str]:
        """Remove ``key``'s family's year files of other bank states and any temporary debris."""
        removed = []
        keep = {self.path(key, y).name for y in key.years}
        for f in self.folder(key).glob("*"):
            if f.name != "key.json" and f.name not in keep:
                f.unlink(missing_ok=True)
                removed.append(f.name)
        for staging in self.root.glob(f".staging-{key.family.digest}-*"):
            if _dead(staging.name.split("-")[2]):
                shutil.rmtree(staging, ignore_errors=True)
        return removed


def _dead(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False
