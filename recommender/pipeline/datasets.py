"""Feature tables from the bank, one year at a time, kept in an on-disk feature cache.

A task's table for candidate year t needs trade of t, its lags t−3 and t−5
(:data:`features.assemble.FEATURE_LAGS`) and, for the labels, t + h; nothing else. So
:class:`YearBuilder` asks the bank for just those years (:meth:`DataBank.trade_view`, out of core:
world exports, world imports and the bloc's flows) and builds year t's candidates, features and
labels; peak memory is a few years' world grids plus one year's candidates, not the panel. The
local engine walks the years in order and keeps a sliding window of per-year views and
complexity tables; the Dask engine runs each year as its own task (:func:`build_year`).

Each finished year is stored in the feature cache (:mod:`recommender.pipeline.feature_cache`)
under the hash of what it reads, so a second ``train`` or ``recommend`` reads it back, and a bank
that gained a year or had one corrected rebuilds only the years that read a changed one.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Collection
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.assemble import BaseTables, build_base, lag_years
from features.complexity import add_dynamics, compute_complexity
from features.resources import parallel_workers, release_free_memory
from features.sectors import product_sectors
from features.trade import TradeView
from models.engine import Engine
from models.ranker import Log
from models.tasks import Task
from recommender.bank import DataBank
from recommender.errors import RecommenderError
from recommender.pipeline.feature_cache import DatasetKey, FeatureCache, dataset_key

__all__ = ["DatasetKey", "FeatureCache", "StoredTable", "YearBuilder", "build_year", "dataset_key", "task_table",
           "year_chunks"]


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
    _stage(table, Path(folder), year)
    return len(table)


def build_chunks(bank_root: str, snapshot: str, task: Task, bloc: tuple[str, ...], product_level: int | None,
                 chunks: list[list[int]], folder: str) -> int:
    """Consecutive chunks of years in one worker process of this machine (:func:`_build_here`): one
    :class:`YearBuilder` walks them in order (its sliding window reads each year's trade once) and each
    finished year is written to ``folder/year=Y.parquet``, where the parent adopts it. Returns the rows."""
    builder = YearBuilder(DataBank(bank_root, snapshot=snapshot), task, bloc, product_level=product_level)
    rows = 0
    for chunk in chunks:
        table = builder.table(chunk)
        for year in chunk:
            _stage(table[table["year"] == year], Path(folder), year)
        rows += len(table)
    return rows


def _stage(table: pd.DataFrame, folder: Path, year: int) -> None:
    """Write ``folder/year=Y.parquet`` under a temporary name first: a file under its name is complete."""
    tmp = folder / f".year={year}.parquet.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, folder / f"year={year}.parquet")


@dataclass
class StoredTable:
    """A task's whole table, with which years came from the cache and which were built."""

    table: pd.DataFrame
    key: DatasetKey
    reused_years: list[int]
    built_years: list[int]

    @property
    def reused(self) -> bool:
        """Every year came from the cache."""
        return not self.built_years

    def describe(self) -> str:
        """E.g. ``24 years reused, 1 built (2014)``: the cache's hits and misses, for the log and the run."""
        built = _year_runs(self.built_years)
        return f"{len(self.reused_years)} years reused, {len(self.built_years)} built" + (f" ({built})" if built else "")


def _year_runs(years: list[int]) -> str:
    runs = _consecutive(years)
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs)


def task_table(bank: DataBank, store: FeatureCache, task: Task, bloc: Collection[str], *, product_level: int,
               engine: Engine | None = None, log: Log = lambda _m: None) -> StoredTable:
    """The task's whole table (every year with candidates): cached years read back, the others built and stored.

    A year is reused when nothing it reads changed (:mod:`recommender.pipeline.feature_cache`); the
    years to build run in this process in chunks, or as one task each on a distributed ``engine``.
    """
    years = bank.years("trade")
    if not years:
        raise RecommenderError(f"the data bank at {bank.root} has no trade; ingest some or run `recommender demo`")
    prints = store.fingerprints()
    key = dataset_key(bank, task, bloc, product_level, prints)
    prints.save()
    if prints.hashed:
        log(f"features: hashed {prints.hashed} new bank file(s) to see which years changed")
    reused = store.years(key)
    missing = [y for y in years if y not in set(reused)]
    if missing:
        log(f"features: {len(reused)} of {len(years)} years reused from the cache; building {_year_runs(missing)}")
        if engine is not None and engine.distributed:
            _build_distributed(bank, store, key, task, product_level, missing, engine, log)
        else:
            _build_here(bank, store, key, task, product_level, missing, log)
            # the build's views and complexity are dropped: their pages go back before the table is read
            release_free_memory()
    else:
        log(f"features: all {len(years)} years reused from the cache ({key.family.digest})")
    for old in store.prune(key):
        log(f"features: removed {old}, a year of an earlier state of the bank")
    return StoredTable(store.read(key), key, reused, missing)


def _build_here(bank: DataBank, store: FeatureCache, key: DatasetKey, task: Task, product_level: int, years: list[int],
                log: Log) -> None:
    """Build ``years`` on this machine, consecutive runs in chunks; each year is stored as soon as it is built.

    Several chunks (years whose trade exceeds :data:`CHUNK_ROWS`, as a BACI release's do) are split into
    contiguous groups built by worker processes at once, one per usable CPU that memory allows
    (:func:`features.resources.parallel_workers`); one chunk is built in this process. The tables
    are the same either way: a year's features read only the years it needs."""
    chunks = [chunk for run in _consecutive(years) for chunk in year_chunks(bank, run)]
    sizes = bank.rows_by_year("trade")
    rows = [sum(sizes.get(y, 0) for y in chunk) for chunk in chunks]  # trade rows of each chunk
    per_row = BUILD_BYTES_PER_ROW_WORLD if task.needs_world_outcomes else BUILD_BYTES_PER_ROW
    workers = LOCAL_WORKERS or min(len(chunks), parallel_workers(max(rows) * per_row, headroom=BUILD_HEADROOM))
    if workers > 1:
        try:
            _build_in_workers(bank, store, key, task, product_level, chunks, rows, workers, log)
            return
        except BrokenProcessPool:
            log("features: a worker process ended abruptly (killed for memory, or started by a script whose calls are "
                "not under `if __name__ == \"__main__\":`, as Python's multiprocessing needs); building in this process")
    builder = YearBuilder(bank, task, key.family.bloc, product_level=product_level)
    for chunk in chunks:
        table = builder.table(chunk)
        for year in chunk:
            store.write(key, year, table[table["year"] == year])
        log(f"features: years {chunk[0]}–{chunk[-1]}: {len(table):,} candidates")


LOCAL_WORKERS: int | None = None
"""Worker processes of a local build; ``None``: one per usable CPU that memory allows, one for one chunk."""

BUILD_BYTES_PER_ROW = 260
"""Peak memory of a worker building a chunk, per trade row of the chunk (its sliding window of lag
years' views and complexity, the candidates). Measured: two workers on the 25-year BACI-width world
(largest year 20.6 M flows) peaked at 10.9 GB, 5.3 GB each."""

BUILD_BYTES_PER_ROW_WORLD = 400
"""The same for a task whose labels read every country's exports at t + h (diversification): two workers
on the 12-year BACI-width world (largest year 13.8 M flows) peaked at 10.9 GB, 5.3 GB each."""

BUILD_HEADROOM = 0.35
"""The share of available memory the workers may hold together: on 24 GB a BACI HS6 release builds in one
process (a training stays within 8 GB), a world of half its yearly flows, or a machine of 64 GB, in two."""


def _build_in_workers(bank: DataBank, store: FeatureCache, key: DatasetKey, task: Task, product_level: int,
                      chunks: list[list[int]], rows: list[int], workers: int, log: Log) -> None:
    """:func:`build_chunks` in ``workers`` processes (spawned: no inherited threads), each on a contiguous
    group of chunks balanced by their trade ``rows``; finished years are adopted into the cache as they appear."""
    weights = np.cumsum(rows)
    cut = np.searchsorted(weights, weights[-1] * np.arange(1, workers) / workers)
    groups = [g for g in np.split(np.arange(len(chunks)), np.unique(np.clip(cut, 1, len(chunks) - 1))) if len(g)]
    staging = store.staging(key)
    expected = {y for chunk in chunks for y in chunk}
    adopted: set[int] = set()

    def adopt() -> None:
        for path in sorted(staging.glob("year=*.parquet")):
            year = int(path.stem.split("=", 1)[1])
            store.adopt(key, staging, year)
            adopted.add(year)
            log(f"features: year {year} built ({len(adopted)} of {len(expected)}, {len(groups)} worker processes)")

    pool = ProcessPoolExecutor(len(groups), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(build_chunks, str(bank.root), bank.snapshot_id, task, key.family.bloc, product_level,
                               [chunks[i] for i in group], str(staging)) for group in groups]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=2, return_when=FIRST_COMPLETED)
            adopt()
            for future in done:
                future.result()  # a worker's error is this build's
        adopt()
    except BaseException:  # an error, Ctrl-C or SIGTERM: the workers stop now, not after their years
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        store.discard(staging)
    if adopted != expected:
        raise RecommenderError(f"feature build: years {sorted(expected - adopted)} were not built")


def _consecutive(years: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for y in sorted(years):
        if runs and y == runs[-1][-1] + 1:
            runs[-1].append(y)
        else:
            runs.append([y])
    return runs


def _build_distributed(bank: DataBank, store: FeatureCache, key: DatasetKey, task: Task, product_level: int,
                       years: list[int], engine: Engine, log: Log) -> None:
    snapshot = bank.snapshot_id
    staging = store.staging(key)
    try:
        # a bank at a URL assumes no filesystem shared with the workers: each year comes back
        # through Dask and is written here; a bank in a folder is shared, and each worker writes
        shared = None if bank.remote else str(staging)
        finished: list[int] = []

        def progress(year: int, result: int | pd.DataFrame) -> int:
            if isinstance(result, pd.DataFrame):
                store.write(key, year, result)
                result = len(result)
            else:
                store.adopt(key, staging, year)
            finished.append(year)
            log(f"features: year {year} done on {engine.name} ({len(finished)} of {len(years)}): {result:,} candidates")
            return result

        rows = engine.map(lambda y: build_year(str(bank.root), snapshot, task, key.family.bloc, product_level, y, shared),
                          years, done=progress)
        log(f"features: {len(years)} years as {engine.name} tasks, {sum(rows):,} candidates")
    finally:
        store.discard(staging)
