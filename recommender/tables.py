"""The one reader of users' tables (CSV, Parquet or a workbook), with one rule for missing values.

Every file the application reads from a user — trade, capacity, geography, BACI country codes,
projects to score — goes through :func:`read_batches` (Arrow record batches, what scoring
streams), or :func:`read_frames` / :func:`read_frame` (the same as pandas). CSV is parsed by
Arrow's streaming reader: about 3× faster than ``pandas.read_csv`` on a million project rows.
Workbooks (``.xlsx``, ``.xlsm``, ``.xlsb``, ``.xls``, ``.ods``) are read by calamine
(:mod:`recommender.workbooks`), one sheet, every cell as text.

**Text.** Columns asked for as text are read as text and never reinterpreted: product codes
keep their leading zeros, ``"NA"`` stays Namibia, and Parquet numbers become their shortest
exact decimal text (``2010``, ``0.1``, ``1e+20``), so every reader parses numbers the same way.

**Missing.** A cell is missing exactly when it is empty (CSV) or null (Parquet); nothing else
is. ``"NA"``, ``"null"``, ``"nan"`` and ``"-"`` are text, and each validator says what it
thinks of them.

**Unreadable files** (empty, not UTF-8, truncated or not really CSV/Parquet) raise one
:class:`~recommender.errors.DataValidationError` naming the file, never a parser's traceback.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recommender import workbooks
from recommender.errors import DataValidationError, Problem, RecommenderError

Progress = Callable[[int], None]
"""Told how many more rows (or bytes) a long read has done: progress bars and log lines."""

PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
UNREADABLE = (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, pa.ArrowInvalid)
"""What reading a malformed file raises: empty, not UTF-8, truncated or not really CSV/Parquet."""


def is_parquet(path: Path) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def is_table_file(path: Path) -> bool:
    """CSV (or .txt), Parquet or a workbook: what :func:`read_batches` reads."""
    return is_parquet(path) or workbooks.is_workbook(path) or Path(path).suffix.lower() in {".csv", ".txt"}


def unreadable(path: Path, exc: BaseException) -> DataValidationError:
    """The one message for a file that cannot be read at all."""
    message = str(exc)
    reason = "the file is empty" if isinstance(exc, pd.errors.EmptyDataError) else \
        "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in message else \
        f"could not read it ({type(exc).__name__}: {message})"
    return DataValidationError(str(path), [Problem(reason, count=0)],
                               hint="give a UTF-8 CSV with a header row, a Parquet file or an .xlsx workbook")


def _flat_schema(path: Path, columns: list[str] | None = None) -> pa.Schema:
    """A Parquet file's schema, refused with the column's name when a wanted column is nested (list,
    struct, map: one value per cell is what every table here holds)."""
    schema = pq.ParquetFile(path).schema_arrow
    nested = [f"{f.name} ({f.type})" for f in schema if (columns is None or f.name in columns) and pa.types.is_nested(f.type)]
    if nested:
        raise DataValidationError(str(path), [Problem(f"column(s) {', '.join(nested)} hold lists or records, not one value "
                                                      "per cell", count=0)],
                                  hint="flatten them (one row per value) or drop them before ingesting or scoring")
    return schema


def _no_sheet(path: Path, sheet: str | None) -> None:
    if sheet is not None:
        raise RecommenderError(f"{path}: --sheet {sheet!r} applies to workbooks (.xlsx, .xls, .ods); "
                               f"this is a {'Parquet' if is_parquet(path) else 'CSV'} file: drop --sheet")


def read_header(path: Path, *, sheet: str | None = None) -> list[str]:
    """Column names, without reading the rows; a CSV's must be unique.

    A CSV's header is its first line that is not empty: Arrow's reader, which reads the rows with
    these names as text columns, skips empty lines too. A workbook's is its sheet's first row
    (:func:`recommender.workbooks.read_sheet`, ``sheet`` chosen as it says).
    """
    if workbooks.is_workbook(path):
        return workbooks.read_sheet(path, sheet).column_names
    _no_sheet(path, sheet)
    try:
        if is_parquet(path):
            return list(pq.ParquetFile(path).schema_arrow.names)  # a nested column is refused when it is read
        with open(path, encoding="utf-8-sig", newline="") as f:
            names = next((row for row in csv.reader(f) if row), None)
    except UNREADABLE as exc:
        raise unreadable(path, exc) from exc
    if names is None:
        raise unreadable(path, pd.errors.EmptyDataError())
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataValidationError(str(path), [Problem(f"column name(s) {repeated} appear more than once in the header", count=0)],
                                  hint="give each column one name")
    return names


def _as_text(batch: pa.RecordBatch, text: bool | Collection[str]) -> pa.RecordBatch:
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if (text is True or (text and name in text)) and not pa.types.is_string(column.type):
            column = pc.cast(column, pa.string())  # nulls stay null; numbers keep their exact text
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def read_batches(path: Path, columns: list[str] | None = None, *, text: bool | Collection[str] = True,
                 chunk_rows: int = 1_000_000, sheet: str | None = None,
                 codes: Collection[str] = ()) -> Iterator[pa.RecordBatch]:
    """The file as Arrow record batches of at most ``chunk_rows`` rows, ``columns`` only (all when None).

    ``text``: True reads every column as text; a collection reads those columns as text and keeps
    Parquet's own types for the others (a CSV or a workbook is all text either way). A CSV row with
    more or fewer fields than the header is refused, with its line number. ``sheet`` and ``codes``
    concern workbooks: the sheet to read, and the columns that hold codes, where a date or a
    formula is refused (:func:`recommender.workbooks.read_sheet`).
    """
    if workbooks.is_workbook(path):
        table = workbooks.read_sheet(path, sheet, codes=tuple(codes))
        table = table.select(columns) if columns is not None else table
        yield from table.to_batches(max_chunksize=chunk_rows)
        return
    _no_sheet(path, sheet)
    try:
        if is_parquet(path):
            _flat_schema(path, columns)
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
                yield _as_text(batch, text)
        else:
            yield from _csv_batches(path, columns, chunk_rows)
    except UNREADABLE as exc:
        raise unreadable(path, exc) from exc


def _csv_batches(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Arrow's streaming CSV reader, every column text, empty cells missing; re-cut to ``chunk_rows``."""
    header = read_header(path)
    ragged: list[pacsv.InvalidRow] = []

    def refuse(row: pacsv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=4 << 20, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=refuse),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True,
                                             null_values=[""], include_columns=columns))
    held: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        held.append(batch)
        rows += batch.num_rows
        while rows >= chunk_rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, chunk_rows).combine_chunks().to_batches()[0]
            held, rows = table.slice(chunk_rows).to_batches(), rows - chunk_rows
    if rows:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]
    if ragged:
        lines = [r.number - 2 for r in ragged if r.number is not None]  # Problem rows are 0-based data rows
        raise DataValidationError(str(path), [Problem(f"a different number of fields than the header's {len(header)}",
                                                      rows=lines, count=len(ragged))],
                                  hint="check the separators and quotes on these lines")


def read_frames(path: Path, columns: list[str] | None = None, *, text: bool | Collection[str] = True,
                chunk_rows: int = 1_000_000, sheet: str | None = None, codes: Collection[str] = ()) -> Iterator[pd.DataFrame]:
    """:func:`read_batches` as pandas DataFrames."""
    for batch in read_batches(path, columns, text=text, chunk_rows=chunk_rows, sheet=sheet, codes=codes):
        yield batch.to_pandas()


def read_frame(path: Path, columns: list[str] | None = None, *, text: bool | Collection[str] = True,
               sheet: str | None = None, codes: Collection[str] = ()) -> pd.DataFrame:
    """The whole file as one DataFrame (see :func:`read_frames`); an empty file body gives no rows."""
    frames = list(read_frames(path, columns, text=text, sheet=sheet, codes=codes))
    if frames:
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return pd.DataFrame({c: pd.Series(dtype="str") for c in (columns or read_header(path, sheet=sheet))})


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """The file's SHA-256 (hex), read in ``chunk``-byte blocks: how the bank and scoring runs name a source."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
