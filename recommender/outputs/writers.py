"""Writing result tables: CSV or Parquet by extension, atomically, spreadsheet-safe."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.errors import RecommenderError

_FORMULA_FIRST = pa.array(["=", "+", "-", "@", "\t", "\r"], pa.string())
_NUMBER = r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$"


def neutralise_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Prefix with ``'`` the text cells a spreadsheet would run as formulas; missing stays missing.

    A cell is risky when it starts with ``= + - @``, a tab or a carriage return and is not a plain
    number such as ``-12.5`` (OWASP CSV-injection guidance). Arrow compute: each cell's first
    character is looked up in a set, and only a column with such a cell is matched against the
    number pattern, so a million clean cells take milliseconds.
    """
    first = pc.utf8_slice_codeunits(values, 0, 1)
    starts = pc.fill_null(pc.is_in(first, value_set=_FORMULA_FIRST.cast(first.type)), False)
    if not pc.any(starts).as_py():
        return values
    risky = pc.and_(starts, pc.invert(pc.fill_null(pc.match_substring_regex(values, _NUMBER), False)))
    return pc.if_else(risky, pc.binary_join_element_wise(pa.scalar("'", values.type), values, pa.scalar("", values.type)), values)


def neutralise_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """:func:`neutralise_text` of every text column and of the header; other columns as they are."""
    names = neutralise_text(pa.array([str(n) for n in batch.schema.names], pa.string())).to_pylist()
    columns = [neutralise_text(c) if pa.types.is_string(c.type) or pa.types.is_large_string(c.type) else c
               for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=names)


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`neutralise_text` of a DataFrame's text columns (object or string dtype) and its headers."""
    out = frame.copy()
    out.columns = neutralise_text(pa.array([str(c) for c in out.columns], pa.string())).to_pylist()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = out[col]
            text = pa.array(values.astype(str).to_numpy(dtype=object), pa.string(), mask=values.isna().to_numpy())
            safe = neutralise_text(text)
            if not safe.equals(text):
                out[col] = values.where(values.isna(), pd.Series(safe.to_numpy(zero_copy_only=False), index=values.index))
    return out


def check_output(path: str | Path) -> Path:
    """An output path must end in .csv or .parquet; a clear error otherwise."""
    path = Path(path)
    if path.suffix.lower() not in {".csv", ".parquet"}:
        raise RecommenderError(f"--output must end in .csv or .parquet; got {path.name!r}")
    return path


@contextmanager
def atomic_output(path: str | Path) -> Iterator[str]:
    """Yield a temporary file beside ``path``; it replaces ``path`` only if the block succeeds (else it is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` (.csv or .parquet) via a temporary file and an atomic rename."""
    path = check_output(path)
    with atomic_output(path) as tmp:
        if path.suffix.lower() == ".csv":
            neutralise_formulas(frame).to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path
