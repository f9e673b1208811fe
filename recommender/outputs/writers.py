"""Writing result tables: CSV, Parquet or an Excel workbook by extension, atomically, spreadsheet-safe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender import workbooks
from recommender.errors import RecommenderError
from recommender.outputs.files import atomic_output, check_output

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


def write_table(frame: pd.DataFrame, path: str | Path, *, sheet: str = "results",
                about: list[tuple[str, str]] | None = None) -> Path:
    """Write ``frame`` to ``path`` (.csv, .parquet or .xlsx) via a temporary file and an atomic rename.

    An .xlsx gets ``frame`` on the sheet ``sheet`` and ``about`` (item, text) on a last sheet
    ``About`` (:func:`write_sheets`).
    """
    path = check_output(path)
    if path.suffix.lower() == ".xlsx":
        return write_sheets(path, [(sheet, frame)], about or [])
    with atomic_output(path) as tmp:
        if path.suffix.lower() == ".csv":
            neutralise_formulas(frame).to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path


def write_sheets(path: str | Path, sheets: list[tuple[str, pd.DataFrame]], about: list[tuple[str, str]]) -> Path:
    """An .xlsx workbook of ``sheets`` and a last sheet ``About`` (:func:`recommender.workbooks.write_workbook`),
    its text cells neutralised as in CSV, written atomically."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise RecommenderError(f"{path.name}: a workbook must end in .xlsx")
    with atomic_output(path) as tmp:
        try:
            workbooks.write_workbook(tmp, [(name, neutralise_formulas(frame)) for name, frame in sheets], about)
        except ValueError as exc:  # too many rows for a sheet
            raise RecommenderError(str(exc)) from exc
    return path
