"""The one reader of users' tables (CSV or Parquet), with one rule for missing values.

Every file the application reads from a user — trade, capacity, geography, BACI country codes,
projects to score — goes through :func:`read_frames` or :func:`read_frame`.

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

from collections.abc import Collection, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recommender.errors import DataValidationError, Problem

PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
UNREADABLE = (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, pa.ArrowInvalid)
"""What reading a malformed file raises: empty, not UTF-8, truncated or not really CSV/Parquet."""


def is_parquet(path: Path) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def unreadable(path: Path, exc: BaseException) -> DataValidationError:
    """The one message for a file that cannot be read at all."""
    reason = "the file is empty" if isinstance(exc, pd.errors.EmptyDataError) else \
        "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"could not read it ({type(exc).__name__}: {exc})"
    return DataValidationError(str(path), [Problem(reason, count=0)],
                               hint="give a UTF-8 CSV with a header row, or a Parquet file")


def read_header(path: Path) -> list[str]:
    """Column names, without reading the rows."""
    try:
        if is_parquet(path):
            return list(pq.ParquetFile(path).schema_arrow.names)
        return list(pd.read_csv(path, nrows=0).columns)
    except UNREADABLE as exc:
        raise unreadable(path, exc) from exc


def _as_text(batch: pa.RecordBatch, text: bool | Collection[str]) -> pd.DataFrame:
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if (text is True or (text and name in text)) and not pa.types.is_string(column.type):
            column = pc.cast(column, pa.string())  # nulls stay null; numbers keep their exact text
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pandas()


def read_frames(path: Path, columns: list[str] | None = None, *, text: bool | Collection[str] = True,
                chunk_rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """The file in chunks of ``chunk_rows``, ``columns`` only (all when None).

    ``text``: True reads every column as text; a collection reads those columns as text and keeps
    Parquet's own types for the others (a CSV is all text either way).
    """
    try:
        if is_parquet(path):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
                yield _as_text(batch, text)
        else:
            yield from pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_values=[""],
                                   chunksize=chunk_rows)
    except UNREADABLE as exc:
        raise unreadable(path, exc) from exc


def read_frame(path: Path, columns: list[str] | None = None, *, text: bool | Collection[str] = True) -> pd.DataFrame:
    """The whole file as one DataFrame (see :func:`read_frames`); an empty file body gives no rows."""
    frames = list(read_frames(path, columns, text=text))
    if frames:
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return pd.DataFrame({c: pd.Series(dtype="str") for c in (columns or read_header(path))})
