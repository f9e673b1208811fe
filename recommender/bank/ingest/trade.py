"""``ingest_trade``: one reader by format, the validator, then the publish step, in one bank transaction."""

from __future__ import annotations

import glob
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from recommender.bank import TRADE_SCHEMA, DataBank, Transaction
from recommender.bank.ingest.baci import read_baci
from recommender.bank.ingest.common import TRADE_FORMATS, IngestResult, reading_errors
from recommender.bank.ingest.comtrade import read_comtrade
from recommender.bank.ingest.publish import (
    already_ingested,
    bank_compatibility,
    check_source,
    new_source_id,
    record_source,
    resolve_conflicts,
    same_file,
    update_products,
    whole_sources,
)
from recommender.bank.ingest.release import (
    looks_like_release,
    member_label,
    member_name,
    non_csv_names,
    product_codes_table,
    split_release,
)
from recommender.bank.ingest.tidy import NonNumeric, read_long
from recommender.bank.ingest.validate import TradeValidator
from recommender.errors import DataValidationError, Problem, RecommenderError
from recommender.tables import UNREADABLE, Progress, file_sha256, unreadable


@reading_errors
def ingest_trade(
    bank: DataBank,
    path: str | Path,
    *,
    format: str | None = None,
    columns: dict[str, str] | None = None,
    product_column: str | None = None,
    country_codes: str | Path | None = None,
    classification: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> IngestResult:
    """Validate a trade file and add it to the bank (atomically, or not at all).

    Parameters
    ----------
    format : ``"baci"`` (CEPII BACI ``t,i,j,k,v,q``), ``"comtrade"`` (UN Comtrade CSV, exports
        kept) or ``"long"`` (year, exporter, importer, product, value_usd; CSV, Parquet or a workbook);
        ``None``: ``"baci"`` for files named as in a BACI release, else ``"long"``.
    columns : canonical → source column names for ``long`` and ``comtrade``.
    product_column : shortcut for ``columns["product"]`` (e.g. ``"section_code"``).
    classification : product classification; default ``"hs"``, or ``"hs-section"`` when the
        product column is ``section_code``.

    The file's sha256 is computed first; a file already in the bank (same hash and options)
    reports ``unchanged`` without parsing. Parsing, validation and Parquet writing overlap (a
    writer thread), so a BACI year streams through in bounded memory.
    """
    return ingest_trade_files(bank, [Path(path)], format=format, columns=columns, product_column=product_column,
                              country_codes=country_codes, classification=classification, replace=replace,
                              progress=progress)[0]


def trade_files(specs: list[str | Path]) -> list[Path]:
    """Expand what a user names into files: a file, a folder (its CSV, Parquet and zip files), a glob."""
    out: list[Path] = []
    for spec in map(str, specs):
        if any(ch in spec for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        elif Path(spec).is_dir():
            found = sorted(p for p in Path(spec).iterdir() if p.is_file() and p.suffix.lower() in TRADE_SUFFIXES)
        else:
            found = [Path(spec)]
        if not found:
            raise RecommenderError(f"{spec}: no trade files there (CSV, Parquet or zip of CSVs)")
        out += found
    if len(set(out)) != len(out):
        raise RecommenderError("the same file is named twice: " + ", ".join(sorted({str(p) for p in out if out.count(p) > 1})))
    return out


def ingest_trade_files(
    bank: DataBank,
    paths: list[str | Path],
    *,
    format: str | None = None,
    columns: dict[str, str] | None = None,
    product_column: str | None = None,
    country_codes: str | Path | None = None,
    classification: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
    on_file: Callable[[int, int, str], None] | None = None,
    sheet: str | None = None,
) -> list[IngestResult]:
    """Ingest several trade files, e.g. a BACI release (one CSV per year, or a zip of them), as **one**
    bank transaction: every file is validated and published together, or nothing is written.

    Each file (or zip member) is its own source in the manifest. Files already in the bank are
    reported ``unchanged``; two files of one call may not hold the same year. ``on_file(i, n, name)``
    is called before each file is read (for a progress display); ``progress(rows)`` as rows stream.
    ``format`` ``None`` is ``"baci"`` when a file is named as in a BACI release (:mod:`.release`), else ``"long"``.
    """
    bank.require_writable()
    columns = dict(columns or {})
    if product_column:
        columns["product"] = product_column
    if classification is None:
        classification = "hs-section" if columns.get("product") == "section_code" else "hs"
    files = trade_files(paths)
    if format is None:
        format = "baci" if any(looks_like_release(p) for p in files) else "long"
    options = {"format": format, "columns": columns, "classification": classification,
               "country_codes": str(country_codes) if country_codes else None, **({"sheet": sheet} if sheet else {})}
    for path in files:
        check_source(path, format, TRADE_FORMATS)
    if country_codes is not None and not Path(country_codes).is_file():
        raise RecommenderError(f"--country-codes {country_codes}: no such file (BACI's country_codes_V*.csv, "
                               "beside the yearly files in the release); nothing was written")
    members = [(path, name) for path in files for name in (_zip_members(path) if _is_zip(path) else [None])]
    release = None
    if format == "baci":  # a release as CEPII ships it: its country and product codes beside the yearly files
        others = [n for spec in {*map(Path, map(str, paths)), *files} for n in non_csv_names(spec)]
        release = split_release(members, others)
        members = release.trade
        if not members:
            raise RecommenderError(f"{', '.join(map(str, paths))}: no yearly trade file (BACI_HS*_Y*_V*.csv) in the release")
        if country_codes is None and release.country_codes is not None:
            options["country_codes"] = member_name(release.country_codes)
        elif release.country_codes is not None:
            release.ignored.append(f"{member_name(release.country_codes)} (--country-codes {country_codes} given)")
            release.country_codes = None
    results: list[IngestResult | None] = [None] * len(members)
    seen_years: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix=".unzip-", dir=bank.root.parent if bank.root.parent.exists() else None) as tmp, \
            ExitStack() as stack:
        names_table = None
        if release is not None:
            if release.country_codes is not None:
                country_codes = _local(release.country_codes, Path(tmp))
            if release.product_codes is not None:
                names_path = _local(release.product_codes, Path(tmp))
                names_table = product_codes_table(names_path, member_label(release.product_codes))
        # plain files are hashed in the background, ahead of the parser (hashlib releases the GIL):
        # SHA-256 runs at ~170 MB/s on one core here, a third of a BACI ingest if it ran in line
        hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        stack.callback(hasher.shutdown, wait=True, cancel_futures=True)  # on an error, hash no further
        hashes = {path: hasher.submit(file_sha256, path) for path in files if not _is_zip(path)}
        # the next file is parsed while this one is validated and written (which leaves a core half idle)
        parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        stack.callback(parser.shutdown, wait=True, cancel_futures=True)
        ahead: dict[int, _ReadAhead] = {}

        def surely_new(path: Path) -> bool:
            """A plain file (hashed in the background) that no source of its size could be: it will be parsed."""
            return path in hashes and not _maybe_in_bank(bank, path.stat().st_size, options)

        def read_ahead(j: int) -> None:
            """Start parsing member ``j`` if it will surely be parsed."""
            if j < len(members) and j not in ahead and surely_new(members[j][0]):
                ahead[j] = _ReadAhead(_reader(members[j][0], format, columns, country_codes, sheet), parser)

        tx = None
        for i, (path, member) in enumerate(members):
            label = f"{path}!{member}" if member else str(path)
            if on_file:
                on_file(i, len(members), Path(member).name if member else path.name)
            local = _extract(path, member, Path(tmp)) if member else path
            try:
                size = local.stat().st_size
                if surely_new(path):
                    sha: str | Future = hashes[path]  # parse now, the hash is awaited when recorded
                else:
                    sha = hashes[path].result() if path in hashes else file_sha256(local)
                    if tx is None:  # before the transaction: an unchanged file may also tidy a killed writer's debris
                        sha, same = already_ingested(bank, "trade", local, options, sha)
                    else:
                        same = same_file(bank, "trade", sha, options)
                    if same is not None:
                        results[i] = IngestResult(same, unchanged=True)
                        continue
                if tx is None:
                    tx = stack.enter_context(bank.transaction())
                reader = ahead.pop(i, None) or _ReadAhead(_reader(local, format, columns, country_codes, sheet))
                results[i] = _ingest_one(tx, bank, reader, label, sha, size, format=format,
                                         classification=classification, options=options, replace=replace,
                                         progress=progress, seen_years=seen_years, parsed=lambda i=i: read_ahead(i + 1))
            except UNREADABLE as exc:
                raise unreadable(Path(label), exc) from exc
            finally:
                if member:
                    local.unlink(missing_ok=True)
        if names_table is not None:
            kept = _names_kept(bank, release, names_path, replace=replace)
            results.append(kept or _release_names(tx or stack.enter_context(bank.transaction()), bank, release,
                                                  names_path, names_table))
    if release is not None and results:
        results[-1].notes = release.notes() + results[-1].notes
    return results


def _local(member: tuple[Path, str | None], folder: Path) -> Path:
    path, inner = member
    return _extract(path, inner, folder) if inner else path


def _names_kept(bank: DataBank, release, path: Path, *, replace: bool) -> IngestResult | None:
    """The result when a release's product codes are not written: already the bank's names, or the user's own
    names are there (``ingest products``) and ``replace`` was not given; ``None`` when they are to be written."""
    sha = file_sha256(path)
    same = same_file(bank, "product_names", sha, _names_options(release))
    if same is not None:
        return IngestResult(same, unchanged=True)
    own = [s for s in bank.sources if s["table"] == "product_names" and s.get("format") != "baci-product-codes"]
    if own and not replace:
        kept = IngestResult({"table": "product_names", "path": member_label(release.product_codes), "sha256": sha,
                             "years": [], "rows": 0, "id": "-"}, unchanged=True)
        kept.notes.append(f"  product names kept: the bank has its own (from {Path(own[0]['path']).name}); "
                          "pass --replace to take the release's")
        return kept
    return None


def _names_options(release) -> dict:
    return {"vintage": release.vintage, "release": release.version}


def _release_names(tx: Transaction, bank: DataBank, release, path: Path, table: pa.Table) -> IngestResult:
    """A release's product codes as the bank's product names, in the trade's transaction (an earlier release's
    names, or the user's own when ``--replace`` was given, are replaced)."""
    label = member_label(release.product_codes)
    replaced = resolve_conflicts(tx, bank, "product_names", set(), True, Path(label))
    source_id = new_source_id(path)
    tx.write_table("product_names", source_id, table)
    entry = record_source(tx, source_id=source_id, table="product_names", path=Path(label), sha=file_sha256(path),
                          format="baci-product-codes", rows=table.num_rows, years=set(), options=_names_options(release),
                          dropped={}, classification="hs", bytes=path.stat().st_size)
    return IngestResult(entry, replaced=replaced)


TRADE_SUFFIXES = (".csv", ".parquet", ".zip", ".gz")


def _maybe_in_bank(bank: DataBank, size: int, options: dict) -> bool:
    """Whether a whole trade source with these options could be this file (same size, or a size not recorded)."""
    return any(s.get("bytes", size) == size for s in whole_sources(bank, "trade", options))


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _zip_members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.lower().endswith(".csv") and not n.startswith("__MACOSX"))
    except zipfile.BadZipFile as exc:
        raise DataValidationError(str(path), [Problem(f"not a readable zip archive: {exc}", count=0)]) from None
    if not names:
        raise DataValidationError(str(path), [Problem("the zip archive holds no CSV file", count=0)])
    return names


def _extract(path: Path, member: str, folder: Path) -> Path:
    """One zip member to ``folder`` (one at a time: disk use is one year's CSV, not the release's)."""
    target = folder / Path(member).name
    with zipfile.ZipFile(path) as archive, archive.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return target


class _ReadAhead:
    """A file's reader (its batches and what it dropped); with ``pool``, the first batch is read there
    at once. For a BACI year read whole, that first batch is the parse of the whole file, on every core."""

    def __init__(self, reader: tuple[Iterator[pa.Table], dict[str, int]], pool: ThreadPoolExecutor | None = None) -> None:
        self.batches, self.dropped = reader
        self._first = pool.submit(next, self.batches, None) if pool is not None else None

    def __iter__(self) -> Iterator[pa.Table]:
        first = self._first.result() if self._first is not None else next(self.batches, None)
        if first is not None:
            yield first
            yield from self.batches


def _reader(path: Path, format: str, columns: dict, country_codes: str | Path | None,
            sheet: str | None = None) -> tuple[Iterator[pa.Table], dict[str, int]]:
    """The batches of one trade file in the bank's schema (not yet validated), and the dict its reader
    fills with the rows it drops (aggregates, sub-totals) by reason."""
    dropped: dict[str, int] = {}
    if format == "baci":
        return read_baci(path, country_codes=Path(country_codes) if country_codes else None, dropped=dropped), dropped
    if format == "comtrade":
        return read_comtrade(path, columns=columns, dropped=dropped), dropped
    return read_long(path, columns=columns, dropped=dropped, sheet=sheet), dropped


def _ingest_one(tx: Transaction, bank: DataBank, reader: _ReadAhead, label: str, sha: str | Future, size: int, *,
                format: str, classification: str, options: dict, replace: bool, progress: Progress | None,
                seen_years: dict[int, str], parsed: Callable[[], None] | None = None) -> IngestResult:
    """Validate and write one file's batches into the open transaction ``tx``; its manifest entry is added.

    ``parsed()`` is called once the first batch is in (for a BACI year, the file is parsed by then).
    """
    source_id = new_source_id(Path(label.rsplit("!", 1)[-1]))
    dropped = reader.dropped
    validator = TradeValidator()
    rows = 0
    years: set[int] = set()
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: list[Future] = []
        offset = 0
        try:
            for raw in reader:
                if parsed is not None and offset == 0:
                    parsed()
                n = raw.num_rows
                table = validator.check(raw, offset)
                offset += n
                if not validator.problems:
                    year_values = pc.unique(table.column("year")).to_pylist()
                    for year in year_values:
                        part = table if len(year_values) == 1 else table.filter(pc.equal(table.column("year"), year))
                        sink = tx.open_writer("trade", year, source_id, TRADE_SCHEMA)
                        pending.append(writer.submit(sink.write_table, part))
                        years.add(int(year))
                    rows += table.num_rows
                    while len(pending) > 1:  # bound memory: one batch written while the next is parsed
                        pending.pop(0).result()
                if progress:
                    progress(n)
        except NonNumeric as exc:
            validator.problems.add("year is not a whole number", exc.year_rows, offset)
            validator.problems.add("value_usd is not a number", exc.value_rows, offset)
        except DataValidationError:
            raise  # already one clear message (e.g. a nested Parquet column)
        except (pa.ArrowInvalid, ValueError) as exc:
            raise DataValidationError(label, [Problem(f"could not parse: {exc}")],
                                      hint="check the column types (years and values numeric, codes text)") from exc
        finally:
            for f in pending:
                f.result()
    problems = validator.finish() + bank_compatibility(bank, classification, sorted(validator.length_counts))
    twice = sorted(y for y in years if y in seen_years)
    if twice:
        problems.append(Problem(f"year(s) {twice} also in {seen_years[twice[0]]} of this ingest; give each year once",
                                count=0))
    if problems:
        raise DataValidationError(label, problems)
    if rows == 0:
        raise DataValidationError(label, [Problem("no trade rows left after dropping aggregates and self-flows", count=0)])
    seen_years.update({y: Path(label).name for y in years})
    if validator.self_flows:
        dropped["self-flows (exporter = importer)"] = validator.self_flows
    replaced = resolve_conflicts(tx, bank, "trade", years, replace, Path(label))
    update_products(tx, bank, list(validator.products), classification)
    lengths = sorted(validator.length_counts)
    entry = record_source(tx, source_id=source_id, table="trade", path=Path(label),
                    sha=sha.result() if isinstance(sha, Future) else sha, format=format, rows=rows, years=years,
                    options=options, dropped=dropped, classification=classification,
                    product_level=lengths[0] if lengths else None, bytes=size)
    tx.seal("trade", years)  # this file's years are done: to disk while the next file is read
    return IngestResult(entry, dropped=dropped, replaced=replaced)
