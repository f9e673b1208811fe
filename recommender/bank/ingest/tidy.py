"""Tidy trade tables (CSV or Parquet): ``year, exporter, importer, product, value_usd`` under any mapped names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recommender.bank.ingest.common import (
    TRADE_ALIASES,
    YEAR_RANGE,
    resolve_columns,
)
from recommender.tables import read_frames, read_header


def table_from_frame(df: pd.DataFrame) -> pa.Table:
    year = pd.to_numeric(df["year"], errors="coerce")
    value = pd.to_numeric(df["value_usd"], errors="coerce")
    bad_year = year.isna() & df["year"].notna()
    bad_value = value.isna() & df["value_usd"].notna()
    if bad_year.any() or bad_value.any():
        raise NonNumeric(np.flatnonzero(bad_year), np.flatnonzero(bad_value))
    quantity = pd.to_numeric(df["quantity"], errors="coerce") if "quantity" in df else pd.Series(np.nan, index=df.index)
    return pa.table(
        {
            # checked before the narrowing cast: a fractional or out-of-range year becomes -1, which validation rejects
            "year": pa.array(year.where((year % 1 == 0) & year.between(*YEAR_RANGE), -1).fillna(-1).astype("int64"),
                             pa.int64()).cast(pa.int16()),
            "exporter": pa.array(df["exporter"].astype(object), pa.string()),
            "importer": pa.array(df["importer"].astype(object), pa.string()),
            "product": pa.array(df["product"].astype(object), pa.string()),
            "value_usd": pa.array(value.to_numpy(dtype=float), pa.float64(), from_pandas=True),
            "quantity": pa.array(quantity.to_numpy(dtype=float), pa.float64(), from_pandas=True),
        }
    )


class NonNumeric(Exception):
    def __init__(self, year_rows: np.ndarray, value_rows: np.ndarray):
        self.year_rows, self.value_rows = year_rows, value_rows


def read_long(path: Path, *, columns: dict[str, str], dropped: dict[str, int], sheet: str | None = None) -> Iterator[pa.Table]:
    """A tidy CSV, Parquet or workbook table (``sheet``): year, exporter, importer, product, value_usd [, quantity]."""
    found = resolve_columns(read_header(path, sheet=sheet), TRADE_ALIASES, columns,
                            required=["year", "exporter", "importer", "product", "value_usd"], source=str(path))
    codes = [found[c] for c in ("exporter", "importer", "product")]
    for chunk in read_frames(path, list(dict.fromkeys(found.values())), sheet=sheet, codes=codes):
        yield table_from_frame(pd.DataFrame({canon: chunk[src] for canon, src in found.items()}))
