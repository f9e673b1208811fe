"""The data bank: Parquet tables under the home, partitioned by year, with a manifest.

Layout::

    bank/CURRENT                      name of the live snapshot (replaced atomically)
    bank/snapshots/<id>/manifest.json every ingested source
    bank/snapshots/<id>/trade/year=YYYY/<source>.parquet
    bank/snapshots/<id>/capacity/year=YYYY/<source>.parquet
    bank/snapshots/<id>/geography/<source>.parquet
    bank/snapshots/<id>/products/products.parquet
    bank/.lock                        held by the one writer

A write builds a new snapshot in ``bank/staging`` (unchanged files are hard links, so this is
cheap), then publishes it by replacing ``CURRENT``. An interrupted or failed write leaves the
bank exactly as it was; the staging folder is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from features.resources import available_memory, usable_cpus
from features.trade import TradeView
from recommender.bank.cache import BankCache
from recommender.bank.remote import filesystem, is_remote, remote_errors
from recommender.bank.transaction import Transaction, staged_snapshot
from recommender.errors import BankEmptyError, RecommenderError

YEAR_PARTITIONED = ("trade", "capacity")
QUERY_MEMORY_FRACTION = 0.25
"""Share of the available memory an out-of-core query may hold before DuckDB spills to disk."""


class DataBank:
    """Read and write access to the bank under ``root`` (``Config.bank_dir``).

    ``root`` is a folder (local, or a shared filesystem mounted at the same path everywhere), or an
    fsspec URL such as ``s3://bucket/sco-bank``: a bank published there by
    :func:`recommender.bank.push.push`, read-only (a Dask cluster's workers read it without a shared filesystem).
    Object stores are reached with the filesystem's own settings: for S3, ``s3fs`` and the usual
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` (or fsspec's
    ``FSSPEC_S3_*`` variables).
    """

    def __init__(self, root: str | Path, *, lock_timeout: float = 5.0, snapshot: str | None = None):
        self.remote = is_remote(root)
        self.root: Path | str = str(root).rstrip("/") if self.remote else Path(str(root).removeprefix("file://"))
        self.lock_timeout = lock_timeout
        self.snapshot = snapshot  # read this snapshot instead of the live one (a build's every task sees the same data)
        self._codes: tuple[list[str], list[str]] | None = None
        self._pointer: str | None = None
        self.fs, self._base = filesystem(self.root)

    def require_writable(self) -> None:
        """Raise a clear error for a bank at a URL: it is written only by :func:`recommender.bank.push.push`."""
        if self.remote:
            raise RecommenderError(
                f"the data bank at {self.root} is read-only here: ingest into a local bank (the home's, or "
                f"--bank FOLDER) and publish it with `recommender bank push {self.root}`")

    # ---- reading -------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return "/".join((self._base, *parts))

    @property
    def snapshot_id(self) -> str | None:
        """The snapshot read: the pinned one, else the live one named by ``CURRENT``; ``None`` when empty."""
        with remote_errors(self):
            if self.snapshot is None:
                pointer = self._path("CURRENT")
                if not self.fs.exists(pointer):
                    return None
                name = self.fs.cat_file(pointer).decode().strip()
                if self.remote and name != self._pointer:  # a listing cached under an older snapshot is stale
                    self.fs.invalidate_cache(self._base)
                self._pointer = name
            else:
                name = self.snapshot
            return name if self.fs.isdir(self._path("snapshots", name)) else None

    def snapshot_names(self) -> list[str]:
        """Every snapshot the bank holds (the live one, the previous one, a writer's unpublished debris)."""
        folder = self._path("snapshots")
        with remote_errors(self):
            if not self.fs.exists(folder):
                return []
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False))

    @property
    def snapshot_path(self) -> str | None:
        """The live snapshot's folder (a path in the bank's filesystem), None before the first ingest."""
        name = self.snapshot_id
        return None if name is None else self._path("snapshots", name)

    def _location(self, path: str) -> str:
        """``path`` as DuckDB and Arrow name it: a plain path here, a URL (``s3://…``) for a remote bank."""
        return self.fs.unstrip_protocol(path) if self.remote else path

    @property
    def manifest(self) -> dict[str, Any]:
        snap = self.snapshot_path
        if snap is None:
            return {"version": 1, "sources": []}
        with remote_errors(self):
            return json.loads(self.fs.cat_file(f"{snap}/manifest.json"))

    @property
    def sources(self) -> list[dict[str, Any]]:
        return self.manifest["sources"]

    @property
    def classification(self) -> str:
        """The product classification of the bank's trade (its latest source's; ``"hs"`` when empty)."""
        return next((s["classification"] for s in reversed(self.sources) if s["table"] == "trade"), "hs")

    def has(self, table: str) -> bool:
        return bool(self.files(table))

    def manifest_hash(self) -> str:
        """sha256 of the live manifest: identifies exactly what data a model was trained on."""
        import hashlib

        return hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode()).hexdigest()[:16]

    def dataset(self, table: str) -> ds.Dataset:
        if not self.has(table):
            raise BankEmptyError(
                f"the data bank at {self.root} has no {table!r} table; ingest one first "
                f"(recommender ingest {table} PATH) or run `recommender demo`"
            )
        partitioning = ds.partitioning(pa.schema([("year", pa.int16())]), flavor="hive") if table in YEAR_PARTITIONED else None
        return ds.dataset(f"{self.snapshot_path}/{table}", format="parquet", partitioning=partitioning,
                          filesystem=self.fs if self.remote else None)

    def read(self, table: str, *, years: list[int] | None = None, columns: list[str] | None = None,
             filter: ds.Expression | None = None) -> pd.DataFrame:
        """Read a table (optionally some years and columns) as a DataFrame with string codes.

        A reader whose snapshot is retired by two writers publishing while it reads retries on the
        new one (writers keep the previous snapshot, so one publish never disturbs a reader).
        """
        for attempt in range(3):
            try:
                return self._read(table, years=years, columns=columns, filter=filter)
            except FileNotFoundError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read(self, table: str, *, years: list[int] | None, columns: list[str] | None,
              filter: ds.Expression | None) -> pd.DataFrame:
        dset = self.dataset(table)
        expr = filter
        if years is not None and table in YEAR_PARTITIONED:
            year_expr = ds.field("year").isin([int(y) for y in years])
            expr = year_expr if expr is None else expr & year_expr
        table = dset.to_table(columns=columns, filter=expr)
        for i, f in enumerate(table.schema):
            if pa.types.is_dictionary(f.type):
                table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
        out = table.to_pandas()
        if "year" in out.columns:
            out["year"] = out["year"].astype("int64")
        return out

    def files(self, table: str, years: Collection[int] | None = None) -> list[str]:
        """The snapshot's Parquet files of ``table`` (of ``years`` for a year-partitioned table), as
        DuckDB and Arrow name them: paths, or URLs for a remote bank."""
        snap = self.snapshot_path
        if snap is None:
            return []
        with remote_errors(self):
            if table in YEAR_PARTITIONED and years is not None:
                found = [p for y in sorted(set(years)) for p in self.fs.glob(f"{snap}/{table}/year={int(y)}/*.parquet")]
            else:
                found = self.fs.glob(f"{snap}/{table}/**/*.parquet") + self.fs.glob(f"{snap}/{table}/*.parquet")
        return sorted({self._location(p) for p in found})

    def local_files(self, table: str, years: Collection[int] | None = None) -> list[str]:
        """:meth:`files` as local paths: a remote bank's are downloaded once per machine into its cache.

        DuckDB could read them through fsspec, but every query would then move each file through
        Python again: a Dask joint-projects train on the 12-year BACI-width bank took 16.0 min
        from S3 against 6.3 min from a folder (benchmarks/results/remote-baci12.json). A snapshot's files never
        change, so a copy keyed by snapshot and path stays right; the cache
        (``RECOMMENDER_BANK_CACHE``, default a folder in the system's temporary folder) drops the
        snapshots the bank no longer holds whenever it takes in a new one.
        """
        files = self.files(table, years)
        if not self.remote:
            return files
        cache = BankCache(self.fs, self._location(self._path("snapshots")), held=lambda: set(self.snapshot_names()))
        with remote_errors(self):
            return cache.fetch(files)

    def rows_by_year(self, table: str = "trade") -> dict[int, int]:
        """Stored rows of each year of a year-partitioned table, from the Parquet footers (no data read)."""
        fs = self.fs if self.remote else None
        return {y: sum(pq.read_metadata(f, filesystem=fs).num_rows for f in self.files(table, [y])) for y in self.years(table)}

    def product_codes(self, level: int | None = None) -> list[str]:
        """Every product code of the trade, cut to ``level`` digits (default: as stored), sorted."""
        files = self.local_files("trade")
        if not files:
            raise BankEmptyError(f"the data bank at {self.root} has no trade; ingest some or run `recommender demo`")
        if self._codes is None or self._codes[0] != files:  # one scan per snapshot
            with self.query() as con:
                self._codes = (files, [r[0] for r in con.execute(
                    "SELECT DISTINCT CAST(product AS VARCHAR) FROM read_parquet($files)", {"files": files}).fetchall()])
        codes = self._codes[1]
        digits = max(len(c) for c in codes)
        if level is not None and level > digits:
            raise RecommenderError(f"--product-level {level} is finer than the bank's product codes ({digits} characters)")
        return sorted({c[:level] for c in codes} if level else set(codes))

    @contextmanager
    def query(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB connection for out-of-core queries over the bank's Parquet files.

        Threads: the CPUs this process may use. Memory: at most :data:`QUERY_MEMORY_FRACTION` of
        the memory available now (and no more than ``RECOMMENDER_QUERY_MEMORY``, e.g. ``4GB``);
        beyond it DuckDB spills to a temporary folder under the bank (a remote bank's: the system's
        temporary folder), removed afterwards. Queries read local files only: a remote bank's come
        from :meth:`local_files`.
        """
        limit = os.environ.get("RECOMMENDER_QUERY_MEMORY")
        if not limit:
            free = available_memory() or 8 << 30
            limit = f"{max(256, int(free * QUERY_MEMORY_FRACTION) >> 20)}MB"
        spill = Path(tempfile.gettempdir() if self.remote else self.root) / f".query-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        con = duckdb.connect(config={"threads": usable_cpus(), "memory_limit": limit, "temp_directory": str(spill)})
        # no progress bar: DuckDB draws it on stdout, into a Dask worker's log or a CSV written to stdout.
        # In Jupyter DuckDB refuses to change the setting without ipywidgets (and then draws nothing).
        with suppress(duckdb.InvalidInputException):
            con.execute("SET enable_progress_bar = false")
        try:
            with remote_errors(self):
                yield con
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def countries(self) -> set[str]:
        """Every exporter and importer of the trade (one streaming scan)."""
        files = self.local_files("trade")
        if not files:
            return set()
        with self.query() as con:
            rows = con.execute("SELECT DISTINCT CAST(exporter AS VARCHAR) FROM read_parquet($f) UNION "
                               "SELECT DISTINCT CAST(importer AS VARCHAR) FROM read_parquet($f)", {"f": files}).fetchall()
        return {r[0] for r in rows}

    def trade_view(self, countries: Collection[str], *, years: Collection[int] | None = None,
                   product_level: int | None = None) -> TradeView:
        """The :class:`~features.trade.TradeView` of ``years`` (default all) for ``countries``, out of core.

        Three DuckDB aggregations stream over the years' Parquet files: world exports by
        (year, exporter, product), world imports by (year, importer, product) and the flows with
        exporter or importer in ``countries``. Products are cut to ``product_level`` digits first
        (:func:`features.trade.aggregate_products`). Memory is that of the answers, not of the
        trade table: for a bloc of 10 of 220 countries, about a tenth of the flows.
        """
        years = sorted(int(y) for y in (years if years is not None else self.years("trade")))
        files = self.local_files("trade", years)
        members = sorted(set(countries))
        if not files:
            raise BankEmptyError(f"the data bank at {self.root} has no trade for years {years}; ingest some "
                                 "(recommender ingest trade PATH) or run `recommender demo`")
        level = max(len(c) for c in self.product_codes(product_level))
        source = (f"SELECT CAST(year AS BIGINT) AS year, CAST(exporter AS VARCHAR) AS exporter, "
                  f"CAST(importer AS VARCHAR) AS importer, substr(CAST(product AS VARCHAR), 1, {level}) AS product, "
                  f"value_usd FROM read_parquet($files)")
        queries = {
            "exports": f"SELECT year, exporter, product, sum(value_usd) AS value FROM ({source}) GROUP BY ALL ORDER BY ALL",
            "imports": f"SELECT year, importer, product, sum(value_usd) AS imports FROM ({source}) GROUP BY ALL ORDER BY ALL",
            "flows": f"SELECT year, exporter, importer, product, sum(value_usd) AS value_usd FROM ({source}) "
                     f"WHERE list_contains($members, exporter) OR list_contains($members, importer) GROUP BY ALL ORDER BY ALL",
        }
        out = {}
        with self.query() as con:
            for name, sql in queries.items():
                arguments = {"files": files, **({"members": members} if "$members" in sql else {})}
                out[name] = con.sql(sql, params=arguments).to_arrow_table().to_pandas()
        return TradeView(out["exports"], out["imports"], out["flows"], tuple(members))

    def years(self, table: str = "trade") -> list[int]:
        snap = self.snapshot_path
        if snap is None:
            return []
        with remote_errors(self):
            found = self.fs.glob(f"{snap}/{table}/year=*/*.parquet")
        return sorted({int(p.rsplit("/", 2)[1].split("=")[1]) for p in found})

    # ---- writing -------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Build a new snapshot; publish it only if the block finishes without an exception
        (:func:`recommender.bank.transaction.staged_snapshot`). Waits up to ``lock_timeout`` seconds
        for another writer to finish; removes a killed writer's debris first."""
        with self.writer_lock():
            self.remove_debris()
            with staged_snapshot(self.root, self.snapshot_path, self.manifest) as tx:
                yield tx

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the bank's one-writer lock (``bank/.lock``), waiting up to ``lock_timeout`` seconds.

        Held by every write, and by :func:`recommender.bank.push.push` while it copies the live
        snapshot (which a write could otherwise retire under it).
        """
        self.require_writable()
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".lock"))
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Timeout as exc:
            raise RecommenderError(
                f"the data bank at {self.root} is locked by another writer ({self.root / '.lock'}); "
                "wait for it to finish and try again"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def remove_debris(self) -> None:
        """What a killed writer leaves (the caller holds the lock): its staging folder and an unrenamed
        ``.CURRENT.<id>`` pointer. (An unpublished snapshot is removed by the next publish.)"""
        shutil.rmtree(self.root / "staging", ignore_errors=True)
        for debris in self.root.glob(".CURRENT.*"):
            debris.unlink(missing_ok=True)

    def tidy(self) -> bool:
        """Remove a killed writer's debris now, if no other writer holds the lock; True if it did.

        Every write does this first; a command that ends up writing nothing (an unchanged file)
        calls it so debris never outlives the next command.
        """
        if self.remote or not self.root.is_dir():
            return False
        lock = FileLock(str(self.root / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False  # a writer is at work; it removes the debris itself
        try:
            self.remove_debris()
            return True
        finally:
            lock.release()
