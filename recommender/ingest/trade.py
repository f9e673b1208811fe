"""``ingest_trade``: one reader by format, the validator, then the publish step, in one bank transaction."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from recommender.bank import TRADE_SCHEMA, DataBank
from recommender.errors import DataValidationError, Problem
from recommender.ingest.baci import read_baci
from recommender.ingest.common import (
    TRADE_FORMATS,
    IngestResult,
    Progress,
    reading_errors,
)
from recommender.ingest.comtrade import read_comtrade
from recommender.ingest.publish import (
    _bank_compatibility,
    _check_source,
    _record,
    _resolve_conflicts,
    _source_id,
    _update_products,
    already_ingested,
)
from recommender.ingest.tidy import _NonNumeric, read_long
from recommender.ingest.validate import TradeValidator


@reading_errors
def ingest_trade(
    bank: DataBank,
    path: str | Path,
    *,
    format: str = "long",
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
        kept) or ``"long"`` (year, exporter, importer, product, value_usd; CSV or Parquet).
    columns : canonical → source column names for ``long`` and ``comtrade``.
    product_column : shortcut for ``columns["product"]`` (e.g. ``"section_code"``).
    classification : product classification; default ``"hs"``, or ``"hs-section"`` when the
        product column is ``section_code``.

    The file's sha256 is computed in a background thread while it is parsed; a file already in
    the bank (same hash and options) rolls the work back and reports ``unchanged``. Parsing,
    validation and Parquet writing overlap (a writer thread), so a BACI year streams through
    in bounded memory.
    """
    path = Path(path)
    _check_source(path, format, TRADE_FORMATS)
    columns = dict(columns or {})
    if product_column:
        columns["product"] = product_column
    if classification is None:
        classification = "hs-section" if columns.get("product") == "section_code" else "hs"
    options = {"format": format, "columns": columns, "classification": classification,
               "country_codes": str(country_codes) if country_codes else None}
    source_id = _source_id(path)
    sha, same = already_ingested(bank, "trade", path, options)
    if same is not None:
        return IngestResult(same, unchanged=True)
    dropped: dict[str, int] = {}
    if format == "baci":
        batches = read_baci(path, country_codes=Path(country_codes) if country_codes else None, dropped=dropped)
    elif format == "comtrade":
        batches = read_comtrade(path, columns=columns, dropped=dropped)
    else:
        batches = read_long(path, columns=columns, dropped=dropped)

    validator = TradeValidator()
    rows = 0
    years: set[int] = set()
    with ThreadPoolExecutor(max_workers=1) as writer:
        with bank.transaction() as tx:
            pending: list[Future] = []
            offset = 0
            try:
                for raw in batches:
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
            except _NonNumeric as exc:
                validator.problems.add("year is not a whole number", exc.year_rows, offset)
                validator.problems.add("value_usd is not a number", exc.value_rows, offset)
            except (pa.ArrowInvalid, ValueError) as exc:
                raise DataValidationError(str(path), [Problem(f"could not parse: {exc}")],
                                          hint="check the column types (years and values numeric, codes text)") from exc
            finally:
                for f in pending:
                    f.result()
            problems = validator.finish() + _bank_compatibility(bank, classification, sorted(validator.length_counts))
            if problems:
                raise DataValidationError(str(path), problems)
            if rows == 0:
                raise DataValidationError(str(path), [Problem("no trade rows left after dropping aggregates and self-flows", count=0)])
            if validator.self_flows:
                dropped["self-flows (exporter = importer)"] = validator.self_flows
            replaced = _resolve_conflicts(tx, bank, "trade", years, replace, path)
            _update_products(tx, bank, list(validator.products), classification)
            lengths = sorted(validator.length_counts)
            entry = _record(tx, source_id=source_id, table="trade", path=path, sha=sha, format=format, rows=rows,
                            years=years, options=options, dropped=dropped, classification=classification,
                            product_level=lengths[0] if lengths else None)
    return IngestResult(entry, dropped=dropped, replaced=replaced)
