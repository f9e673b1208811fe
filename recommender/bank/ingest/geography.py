"""Country-pair geography (CEPII GeoDist layout): distance, contiguity, common official language."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recommender import countries
from recommender.bank import GEOGRAPHY_SCHEMA, DataBank
from recommender.bank.ingest.common import (
    GEOGRAPHY_ALIASES,
    IngestResult,
    reading_errors,
    resolve_columns,
)
from recommender.bank.ingest.publish import open_source, publish
from recommender.errors import DataValidationError, Problem, ProblemCollector
from recommender.tables import read_frame, read_header


@reading_errors
def ingest_geography(bank: DataBank, path: str | Path, *, columns: dict[str, str] | None = None,
                     replace: bool = False, sheet: str | None = None) -> IngestResult:
    """Country-pair geography (CEPII GeoDist layout): distance, contiguity, common official language."""
    columns = dict(columns or {})
    source = open_source(bank, path, table="geography", format="geography", formats=("geography",),
                         options={"columns": columns, **({"sheet": sheet} if sheet else {})})
    if isinstance(source, IngestResult):
        return source
    path = source.path
    header = read_header(path, sheet=sheet)
    found = resolve_columns(header, GEOGRAPHY_ALIASES, columns, required=["exporter", "importer", "distance_km"], source=str(path))
    raw = read_frame(path, sheet=sheet, codes=[found["exporter"], found["importer"]])
    frame = pd.DataFrame({k: raw[v] for k, v in found.items()})
    problems = ProblemCollector()
    for col in ("exporter", "importer"):
        frame[col] = countries.normalise(frame[col])
        problems.add_mask(f"{col} missing", frame[col].isna().to_numpy(), 0)
        bad = countries.unknown_codes(frame[col].dropna().unique())
        if bad:
            problems.add_mask(f"unknown {col} code(s) {', '.join(bad[:8])}", frame[col].isin(bad).to_numpy(), 0)
    frame["distance_km"] = pd.to_numeric(frame["distance_km"], errors="coerce")
    distance = frame["distance_km"]
    problems.add_mask("distance missing, not a finite number or negative",
                      (distance.isna() | (distance < 0) | ~np.isfinite(distance.fillna(0))).to_numpy(), 0)
    for col in ("contiguous", "common_language"):
        if col not in frame:
            frame[col] = np.int8(0)
            continue
        flag = pd.to_numeric(frame[col].replace({"true": "1", "false": "0", "True": "1", "False": "0"}), errors="coerce")
        problems.add_mask(f"{col} must be 0 or 1 (empty = 0)", ~(flag.isin([0, 1]) | frame[col].isna() | frame[col].astype(str).eq("")).to_numpy(), 0)
        frame[col] = flag.where(flag.isin([0, 1]), 0).fillna(0).astype("int8")  # checked before the narrowing cast
    problems.add_mask("duplicate pair", frame.duplicated(["exporter", "importer"]).to_numpy(), 0)
    if frame.empty:
        raise DataValidationError(str(path), [Problem("the file has no rows: an empty file is never a valid source (nothing was replaced)", count=0)])
    if problems:
        raise DataValidationError(str(path), problems.problems)
    table = pa.Table.from_pandas(frame[GEOGRAPHY_SCHEMA.names], schema=GEOGRAPHY_SCHEMA, preserve_index=False)
    return publish(source, lambda tx: tx.write_table("geography", source.id, table), rows=len(frame), replace=replace)
