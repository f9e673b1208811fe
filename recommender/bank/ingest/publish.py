"""The one publish step: overlaps, replacement, bank compatibility, the product table and the manifest record.

Every ingest follows one skeleton: :func:`open_source` checks the file and the format and returns
at once when the very file is already in the bank (same sha256 and options); the reader then
parses and validates everything, raising before any write; :func:`publish` writes the validated
data in one bank transaction that also resolves overlaps with older sources (``--replace``) and
records the source in the manifest. Trade, whose ingest spans many files in one transaction,
uses the same pieces (:func:`resolve_conflicts`, :func:`record_source`) inside its own loop.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.bank import DataBank, Transaction
from recommender.bank.ingest.common import IngestResult
from recommender.errors import BankConflictError, Problem, RecommenderError
from recommender.tables import file_sha256

WHOLE_TABLES = frozenset({"geography", "product_names"})
"""Tables without years: a new source replaces the whole table (with ``--replace``)."""


def overlapping_sources(sources: list[dict[str, Any]], table: str, years: set[int], indicators: set[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for src in sources:
        if src["table"] != table:
            continue
        if table in WHOLE_TABLES or (years & set(src["years"]) and (indicators is None or indicators & set(src.get("indicators", [])))):
            out.append(src)
    return out


def new_source_id(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:40]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def whole_sources(bank: DataBank, table: str, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The bank's sources of ``table`` ingested with ``options`` and still whole (a source partly replaced
    since is not: ingesting its file again, with ``--replace``, restores it)."""
    return (s for s in bank.sources if s["table"] == table and s.get("options") == options and not s.get("partly_replaced"))


def same_file(bank: DataBank, table: str, sha: str, options: dict[str, Any]) -> dict[str, Any] | None:
    """The bank's whole source of this very file, if there is one."""
    return next((s for s in whole_sources(bank, table, options) if s["sha256"] == sha), None)


def already_ingested(bank: DataBank, table: str, path: Path, options: dict[str, Any],
                     sha: str | None = None) -> tuple[str, dict[str, Any] | None]:
    """``(sha256, source)``: the file's hash (``sha`` when already computed) and its whole source in the bank if it is there.

    An unchanged file thus returns at once, without parsing under the lock; it still removes a
    killed writer's debris (:meth:`DataBank.tidy`).
    """
    sha = sha or file_sha256(path)
    same = same_file(bank, table, sha, options)
    if same is not None:
        bank.tidy()
    return sha, same


def resolve_conflicts(tx: Transaction, bank: DataBank, table: str, years: set[int], replace: bool, path: Path,
                       indicators: set[str] | None = None) -> list[str]:
    # the transaction's own view: sources an earlier file of the same ingest already trimmed stay trimmed
    clash = [dict(s) for s in overlapping_sources(tx.manifest["sources"], table, years, indicators)]
    if clash and not replace:
        names = ", ".join(f"{s['path']} (years {min(s['years'])}–{max(s['years'])})" if s.get("years") else s["path"] for s in clash)
        raise BankConflictError(
            f"{path}: overlaps {table} already in the bank from {names}; nothing was written. "
            "Pass --replace to replace the overlapping years."
        )
    replaced = []
    for src in clash:
        replaced.append(src["id"])
        entry = next(s for s in tx.manifest["sources"] if s["id"] == src["id"])
        if table in WHOLE_TABLES:
            tx.remove_table(table)
            tx.manifest["sources"].remove(entry)
            continue
        overlap = years & set(src["years"])
        # capacity conflicts are per (year, indicator): keep the source's other indicators of those years
        keep = (lambda t: pc.invert(pc.is_in(t.column("indicator"), pa.array(sorted(indicators))))) \
            if table == "capacity" and indicators else None
        removed, gone = tx.remove_source_years(table, src["id"], overlap, keep=keep)
        entry["years"] = sorted(set(entry["years"]) - gone)
        entry["rows"] = int(entry.get("rows", 0)) - removed  # the manifest's row count stays true
        if removed:
            entry["partly_replaced"] = sorted(set(entry.get("partly_replaced", [])) | overlap)  # years it lost rows in
        if keep is not None:
            entry["indicators"] = sorted(set(entry.get("indicators", [])) - (indicators if not entry["years"] else set()))
        if not entry["years"]:
            tx.manifest["sources"].remove(entry)
    return replaced


def bank_compatibility(bank: DataBank, classification: str, lengths: list[int]) -> list[Problem]:
    """A new trade source must use the bank's classification and product-code length."""
    problems = []
    for src in (s for s in bank.sources if s["table"] == "trade"):
        if src.get("classification") and src["classification"] != classification:
            problems.append(Problem(f"classification {classification!r} differs from the bank's {src['classification']!r} "
                                    f"(source {src['path']}); use a separate --home per classification", count=0))
        level = src.get("product_level")
        if level and lengths and lengths != [level]:
            problems.append(Problem(f"product codes of {'/'.join(map(str, lengths))} characters differ from the bank's {level} "
                                    f"(source {src['path']}); leading zeros lost? read codes as text", count=0))
        if problems:
            break
    return problems


def update_products(tx: Transaction, bank: DataBank, codes: list[str], classification: str) -> None:
    """The bank's product list: every code seen and its classification.

    Sectors are not stored: they are derived from the code in one place
    (:func:`features.sectors.product_sectors`, applied when the pipeline loads its inputs).
    """
    new = pd.DataFrame({"product": pd.unique(pd.Series(codes, dtype="str")), "classification": classification})
    if bank.has("products"):
        old = bank.read("products", columns=["product", "classification"])
        new = pd.concat([old[~old["product"].isin(new["product"])], new], ignore_index=True)
    tx.write_table("products", "products", pa.Table.from_pandas(new.sort_values("product").reset_index(drop=True), preserve_index=False))


def check_source(path: Path, format: str, formats: tuple[str, ...]) -> None:
    if not path.is_file():
        raise RecommenderError(f"{path}: no such file")
    if format not in formats:
        raise RecommenderError(f"unknown format {format!r}; choose one of {formats}")


def record_source(tx: Transaction, *, source_id: str, table: str, path: Path, sha: str, format: str, rows: int,
            years: set[int], options: dict[str, Any], dropped: dict[str, int], classification: str | None = None,
            product_level: int | None = None, **extra: Any) -> dict[str, Any]:
    """Append this source's manifest entry to the transaction and return it."""
    entry = {"id": source_id, "table": table, "path": str(path.absolute()), "sha256": sha, "format": format, "rows": rows,
             "years": sorted(years), "classification": classification, "product_level": product_level,
             "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"), "options": options, "dropped": dropped, **extra}
    tx.manifest["sources"].append(entry)
    return entry


@dataclass(frozen=True)
class Source:
    """A file on its way into the bank: its table, format, options and hash, and the id it will have."""

    bank: DataBank
    path: Path
    table: str
    format: str
    options: dict[str, Any]
    sha: str
    id: str


def open_source(bank: DataBank, path: str | Path, *, table: str, format: str, formats: tuple[str, ...],
                options: dict[str, Any]) -> Source | IngestResult:
    """The checked source, or the :class:`IngestResult` of an unchanged file already in the bank (nothing to do)."""
    path = Path(path)
    check_source(path, format, formats)
    sha, same = already_ingested(bank, table, path, options)
    if same is not None:
        return IngestResult(same, unchanged=True)
    return Source(bank, path, table, format, options, sha, new_source_id(path))


def publish(source: Source, write: Callable[[Transaction], None], *, rows: int, replace: bool, years: set[int] = frozenset(),
            dropped: dict[str, int] | None = None, indicators: set[str] | None = None, **extra: Any) -> IngestResult:
    """One transaction: resolve overlaps (refused unless ``replace``), ``write(tx)`` the data, record the source."""
    dropped = dropped or {}
    with source.bank.transaction() as tx:
        replaced = resolve_conflicts(tx, source.bank, source.table, set(years), replace, source.path, indicators)
        write(tx)
        entry = record_source(tx, source_id=source.id, table=source.table, path=source.path, sha=source.sha,
                              format=source.format, rows=rows, years=set(years), options=source.options, dropped=dropped,
                              **({"indicators": sorted(indicators)} if indicators is not None else {}), **extra)
    return IngestResult(entry, dropped=dropped, replaced=replaced)
