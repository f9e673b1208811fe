"""Feature tables from the bank, one year at a time, kept in an on-disk feature cache.

A task's table for candidate year t needs trade of t, its lags t−3 and t−5
(:data:`features.assemble.FEATURE_LAGS`) and, for the labels, t + h; nothing else. So
:class:`YearBuilder` asks the bank for just those years (:meth:`DataBank.trade_view`, out of core:
world exports, world imports and the bloc's flows) and builds year t's candidates, features and
labels; peak memory is a few years' world grids plus one year's candidates, not the panel. The
local engine walks the years in order and keeps a sliding window of per-year views and
complexity tables; the Dask engine runs each year as its own task (:func:`build_year`).

The finished table is stored as one Parquet file per year under
``<home>/features/<key>/`` where the key hashes what determines it (:class:`DatasetKey`): the
bank's manifest hash, the bloc, the task's candidate and label options, the product level and
:data:`FEATURE_VERSION`. A second ``train`` or ``recommend`` on the same bank reads it back
instead of recomputing. A store entry is written in a temporary folder and renamed into place, so
a killed build never leaves a half table that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.assemble import BaseTables, build_base, lag_years
from features.complexity import add_dynamics, compute_complexity
from features.sectors import product_sectors
from features.trade import TradeView
from models.engine import Engine
from models.ranker import Log
from models.tasks import Task
from recommender.bank import DataBank
from recommender.errors import RecommenderError

FEATURE_VERSION = "2026.11-1"
"""Bump when any feature or label definition changes: every stored table is then rebuilt."""


@dataclass(frozen=True)
class DatasetKey:
    """What determines a task's feature table: change any field and the table is another one."""

    manifest_hash: str
    bloc: tuple[str, ...]
    task: dict  # Task.params(): name, horizon, candidate threshold, relevance thresholds
    product_level: int
    feature_version: str = FEATURE_VERSION

    @property
    def digest(self) -> str:
        blob = json.dumps({"manifest": self.manifest_hash, "bloc": list(self.bloc), "task": self.task,
                           "level": self.product_level, "features": self.feature_version}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dataset_key(bank: DataBank, task: Task, bloc: Collection[str], product_level: int) -> DatasetKey:
    return DatasetKey(bank.manifest_hash(), tuple(sorted(set(bloc))), task.params(), int(product_level))


class FeatureCache:
    """Feature tables under ``root`` (``<home>/features``), one folder per :class:`DatasetKey`."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: DatasetKey) -> Path:
        return self.root / key.digest

    def has(self, key: DatasetKey) -> bool:
        return (self.path(key) / "key.json").exists()

    def years(self, key: DatasetKey) -> list[int]:
        return sorted(int(p.stem.split("=")[1]) for p in self.path(key).glob("year=*.parquet")) if self.has(key) else []

    def read(self, key: DatasetKey, years: Collection[int] | None = None) -> pd.DataFrame:
        """The stored table (optionally some years), sorted as :meth:`Task.build_dataset` sorts."""
        wanted = self.years(key) if years is None else [y for y in self.years(key) if y in set(years)]
        if not wanted:
            return pd.DataFrame()
        # one Arrow table (the years' columns chained, not copied) converted column by column, each
        # Arrow buffer freed once converted: the peak is about one copy of the table, not the two of
        # reading every year into pandas and concatenating
        table = pa.concat_tables([pq.read_table(self.path(key) / f"year={y}.parquet") for y in wanted],
                                 promote_options="permissive")
        return table.to_pandas(self_destruct=True, split_blocks=True)

    def staging(self, key: DatasetKey) -> Path:
        """A fresh folder to write ``key``'s year files into before :meth:`publish`."""
        folder = self.root / f".staging-{key.digest}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True)
        return folder

    def publish(self, key: DatasetKey, staging: Path) -> None:
        """Move a finished staging folder into place (a concurrent builder's equal table wins)."""
        (staging / "key.json").write_text(json.dumps({**key.__dict__, "digest": key.digest}, indent=2, sort_keys=True))
        try:
            os.replace(staging, self.path(key))
        except OSError:  # another process published the same key first: its table is the same
            shutil.rmtree(staging, ignore_errors=True)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def prune(self, manifest_hash: str) -> list[str]:
        """Remove the tables of other bank states (the home has one bank: they can never be read again)."""
        removed = []
        for folder in self.root.glob("*/key.json"):
            if json.loads(folder.read_text()).get("manifest_hash") != manifest_hash:
                shutil.rmtree(folder.parent, ignore_errors=True)
                removed.append(folder.parent.name)
        return removed


class YearBuilder:
    """Builds a task's table year by year from the bank, reading only the years each one needs.

    Keeps the per-year trade views and complexity tables of a sliding window, so walking the
    years in order reads each year's trade once.
    """

    def __init__(self, bank: DataBank, task: Task, bloc: Collection[str], *, product_level: int | None = None):
        self.bank, self.task, self.bloc = bank, task, tuple(sorted(set(bloc)))
        self.bank_years = bank.years("trade")
        self.level = product_level
        self.capacity = bank.read("capacity") if bank.has("capacity") else None
        self.geography = bank.read("geography") if bank.has("geography") else None
        # the one product → sector mapping, for every code of the bank at this level
        self.products = product_sectors(bank.product_codes(product_level), bank.classification)
        self._views: dict[int, TradeView] = {}
        self._complexity: dict[int, pd.DataFrame] = {}

    def _view(self, years: Collection[int]) -> TradeView:
        missing = sorted(set(years) - set(self._views))
        if missing:
            fetched = self.bank.trade_view(self.bloc, years=missing, product_level=self.level)
            for y in missing:
                self._views[y] = fetched.restrict(lambda col, y=y: col == y)
        return TradeView.concat(self._views[y] for y in sorted(years))

    def _complexity_of(self, years: Collection[int]) -> pd.DataFrame:
        missing = sorted(set(years) - set(self._complexity))
        if missing:  # in one call, so the years run in parallel (compute_complexity); each kept as a slice
            table = compute_complexity(pd.concat([self._views[y].exports for y in missing], ignore_index=True))
            bounds = np.searchsorted(table["year"].to_numpy(), missing + [missing[-1] + 1])
            for y, start, stop in zip(missing, bounds[:-1], bounds[1:], strict=True):
                self._complexity[y] = table.iloc[start:stop].reset_index(drop=True)
        return add_dynamics(pd.concat([self._complexity[y] for y in sorted(years)], ignore_index=True))

    def base(self, years: Collection[int], *, labels: bool = True) -> tuple[BaseTables, pd.DataFrame]:
        """The feature families of ``years`` (each from years ≤ its own) and the bloc's flows for their labels.

        The flows hold years up to the last of ``years`` plus, with ``labels``, each year + h.
        """
        years = sorted(int(y) for y in years)
        inputs = sorted(lag_years(years, self.task.lags) & set(self.bank_years))
        later = sorted({y + self.task.horizon for y in years} & set(self.bank_years)) if labels else []
        view = self._view(sorted(set(inputs) | set(later)))
        now = view.restrict(lambda col: col <= years[-1])
        capacity = None if self.capacity is None else self.capacity[self.capacity["year"].isin(inputs)]
        base = build_base(now, self.bloc, capacity=capacity, geography=self.geography, products=self.products,
                          years=years, complexity=self._complexity_of(inputs), lags=self.task.lags)
        outcomes = view.flows
        if labels and self.task.needs_world_outcomes:  # labels read every country's exports (RCA) at t + h
            outcomes = self._complexity_of(later) if later else base.complexity.iloc[:0]
        self._forget(before=min(lag_years([years[-1] + 1], self.task.lags)))  # what the next years will not read again
        return base, outcomes

    def table(self, years: Collection[int], *, labels: bool = True) -> pd.DataFrame:
        """Candidates of ``years`` with features and, with ``labels``, relevance (NaN where year + h is missing)."""
        base, flows = self.base(years, labels=labels)
        return self.task.build_dataset(base, years, trade=flows)

    def _forget(self, *, before: int) -> None:
        for cache in (self._views, self._complexity):
            for y in [y for y in cache if y < before]:
                del cache[y]


CHUNK_ROWS = 5_000_000
"""Trade rows (as stored) of the candidate years built together: small banks in one pass, BACI HS6 a year at a time."""


def year_chunks(bank: DataBank, years: list[int], *, rows: int | None = None) -> list[list[int]]:
    """``years`` in consecutive runs whose stored trade rows stay within ``rows`` (at least one year each)."""
    rows = CHUNK_ROWS if rows is None else rows
    sizes = bank.rows_by_year("trade")
    chunks: list[list[int]] = [[]]
    total = 0
    for year in years:
        if chunks[-1] and total + sizes.get(year, 0) > rows:
            chunks.append([])
            total = 0
        chunks[-1].append(year)
        total += sizes.get(year, 0)
    return chunks


def build_year(bank_root: str, snapshot: str, task: Task, bloc: tuple[str, ...], product_level: int | None,
               year: int, folder: str | None) -> int | pd.DataFrame:
    """One year of a table as a task of its own (the Dask engine): build it, write ``folder/year=Y.parquet``
    and return the number of rows; without ``folder``, return the table itself.

    Reads the bank's snapshot ``snapshot`` (fixed when the build started, so every year sees the
    same data even if someone ingests meanwhile).
    """
    builder = YearBuilder(DataBank(bank_root, snapshot=snapshot), task, bloc, product_level=product_level)
    table = builder.table([year])
    if folder is None:
        return table
    table.to_parquet(Path(folder) / f"year={year}.parquet", index=False)
    return len(table)


def _build_here(bank: DataBank, task: Task, bloc: tuple[str, ...], product_level: int, years: list[int], folder: Path,
                log: Log) -> None:
    """Build the years in this process, in chunks, into ``folder``; the builder's caches go when it returns."""
    builder = YearBuilder(bank, task, bloc, product_level=product_level)
    for chunk in year_chunks(bank, years):
        table = builder.table(chunk)
        for year in chunk:
            table[table["year"] == year].to_parquet(folder / f"year={year}.parquet", index=False)
        log(f"features: years {chunk[0]}–{chunk[-1]} of {years[0]}–{years[-1]}: {len(table):,} candidates")


@dataclass
class StoredTable:
    table: pd.DataFrame
    key: DatasetKey
    reused: bool


def task_table(bank: DataBank, store: FeatureCache, task: Task, bloc: Collection[str], *, product_level: int,
               engine: Engine | None = None, log: Log = lambda _m: None) -> StoredTable:
    """The task's whole table (every year with candidates), from the store or built year by year and stored."""
    key = dataset_key(bank, task, bloc, product_level)
    if store.has(key):
        log(f"features: reusing the stored table {key.digest} ({len(store.years(key))} years)")
        return StoredTable(store.read(key), key, True)
    years = bank.years("trade")
    if not years:
        raise RecommenderError(f"the data bank at {bank.root} has no trade; ingest some or run `recommender demo`")
    staging = store.staging(key)
    try:
        if engine is not None and engine.distributed:
            snapshot = bank.snapshot_id
            # a bank at a URL assumes no filesystem shared with the workers: each year comes back
            # through Dask and is written here; a bank in a folder is shared, and each worker writes
            shared = None if bank.remote else str(staging)
            finished: list[int] = []

            def progress(year: int, result: int | pd.DataFrame) -> int:
                if isinstance(result, pd.DataFrame):
                    result.to_parquet(staging / f"year={year}.parquet", index=False)
                    result = len(result)
                finished.append(year)
                log(f"features: year {year} done on {engine.name} ({len(finished)} of {len(years)}): {result:,} candidates")
                return result

            rows = engine.map(lambda y: build_year(str(bank.root), snapshot, task, key.bloc, product_level, y, shared),
                              years, done=progress)
            log(f"features: {len(years)} years as {engine.name} tasks, {sum(rows):,} candidates")
        else:
            _build_here(bank, task, key.bloc, product_level, years, staging, log)
        store.publish(key, staging)
    except BaseException:
        store.discard(staging)
        raise
    for old in store.prune(key.manifest_hash):
        log(f"features: removed the stored table {old} of an earlier state of the bank")
    return StoredTable(store.read(key), key, False)
