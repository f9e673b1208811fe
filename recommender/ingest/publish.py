"""The one publish step: overlaps, replacement, bank compatibility, the product table and the manifest record."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.bank import DataBank, Transaction
from recommender.errors import BankConflictError, Problem, RecommenderError
from recommender.ingest.common import file_sha256

WHOLE_TABLES = frozenset({"geography", "product_names"})
"""Tables without years: a new source replaces the whole table (with ``--replace``)."""


def _overlapping(sources: list[dict[str, Any]], table: str, years: set[int], indicators: set[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for src in sources:
        if src["table"] != table:
            continue
        if table in WHOLE_TABLES or (years & set(src["years"]) and (indicators is None or indicators & set(src.get("indicators", [])))):
            out.append(src)
    return out


def _source_id(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:40]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _whole_sources(bank: DataBank, table: str, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The bank's sources of ``table`` ingested with ``options`` and still whole (a source partly replaced
    since is not: ingesting its file again, with ``--replace``, restores it)."""
    return (s for s in bank.sources if s["table"] == table and s.get("options") == options and not s.get("partly_replaced"))


def _same_file(bank: DataBank, table: str, sha: str, options: dict[str, Any]) -> dict[str, Any] | None:
    """The bank's whole source of this very file, if there is one."""
    return next((s for s in _whole_sources(bank, table, options) if s["sha256"] == sha), None)


def already_ingested(bank: DataBank, table: str, path: Path, options: dict[str, Any],
                     sha: str | None = None) -> tuple[str, dict[str, Any] | None]:
    """``(sha256, source)``: the file's hash (``sha`` when already computed) and its whole source in the bank if it is there.

    An unchanged file thus returns at once, without parsing under the lock; it still removes a
    killed writer's debris (:meth:`DataBank.tidy`).
    """
    sha = sha or file_sha256(path)
    same = _same_file(bank, table, sha, options)
    if same is not None:
        bank.tidy()
    return sha, same


def _resolve_conflicts(tx: Transaction, bank: DataBank, table: str, years: set[int], replace: bool, path: Path,
                       indicators: set[str] | None = None) -> list[str]:
    # the transaction's own view: sources an earlier file of the same ingest already trimmed stay trimmed
    clash = [dict(s) for s in _overlapping(tx.manifest["sources"], table, years, indicators)]
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


def _bank_compatibility(bank: DataBank, classification: str, lengths: list[int]) -> list[Problem]:
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


def _update_products(tx: Transaction, bank: DataBank, codes: list[str], classification: str) -> None:
    """The bank's product list: every code seen and its classification.

    Sectors are not stored: they are derived from the code in one place
    (:func:`features.sectors.product_sectors`, applied when the pipeline loads its inputs).
    """
    new = pd.DataFrame({"product": pd.unique(pd.Series(codes, dtype="str")), "classification": classification})
    if bank.has("products"):
        old = bank.read("products", columns=["product", "classification"])
        new = pd.concat([old[~old["product"].isin(new["product"])], new], ignore_index=True)
    tx.write_table("products", "products", pa.Table.from_pandas(new.sort_values("product").reset_index(drop=True), preserve_index=False))


def _check_source(path: Path, format: str, formats: tuple[str, ...]) -> None:
    if not path.is_file():
        raise RecommenderError(f"{path}: no such file")
    if format not in formats:
        raise RecommenderError(f"unknown format {format!r}; choose one of {formats}")


def _record(tx: Transaction, *, source_id: str, table: str, path: Path, sha: str, format: str, rows: int,
            years: set[int], options: dict[str, Any], dropped: dict[str, int], classification: str | None = None,
            product_level: int | None = None, **extra: Any) -> dict[str, Any]:
    """Append this source's manifest entry to the transaction and return it."""
    entry = {"id": source_id, "table": table, "path": str(path.absolute()), "sha256": sha, "format": format, "rows": rows,
             "years": sorted(years), "classification": classification, "product_level": product_level,
             "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"), "options": options, "dropped": dropped, **extra}
    tx.manifest["sources"].append(entry)
    return entry
