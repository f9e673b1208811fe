"""Production capacity: national accounts (UN SNAAMA), wide tables (Penn World Table) and UNIDO INDSTAT."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender import countries
from recommender.bank import CAPACITY_SCHEMA, DataBank, Transaction
from recommender.bank.ingest.common import (
    CAPACITY_ALIASES,
    CAPACITY_FORMATS,
    NON_NEGATIVE_INDICATORS,
    YEAR_RANGE,
    IngestResult,
    reading_errors,
    resolve_columns,
)
from recommender.bank.ingest.publish import open_source, publish
from recommender.errors import DataValidationError, Problem, ProblemCollector
from recommender.tables import read_frame, read_header

_ISIC = re.compile(r"\(ISIC ([A-Z](?:-[A-Z])?)\)")
INDSTAT_TABLES = {"01": "establishments", "04": "employees", "05": "wages", "14": "output", "20": "value_added",
                  "21": "gross_fixed_capital_formation", "31": "female_employees", "51": "industrial_production_index"}


def normalise_indicator(name: str) -> tuple[str, str]:
    """Split a national-accounts label into ``(sector, indicator)``.

    ``"Manufacturing (ISIC D)"`` → ``("D", "value_added")``; ``"Gross Domestic Product (GDP)"``
    → ``("TOTAL", "gdp")``; ``"Total Value Added"`` → ``("TOTAL", "value_added")``; anything else
    → ``("TOTAL", slug)`` (lower case, non-alphanumerics as ``_``), e.g. ``rkna`` stays ``rkna``.
    """
    m = _ISIC.search(name)
    if m:
        return m.group(1), "value_added"
    if name.strip() == "Total Value Added":
        return "TOTAL", "value_added"
    if "Gross Domestic Product" in name:
        return "TOTAL", "gdp"
    slug = re.sub(r"[^a-z0-9]+", "_", re.sub(r"\(.*?\)", "", name).lower()).strip("_")
    return "TOTAL", slug or name


def _read_capacity_frame(path: Path, format: str, columns: dict[str, str], dropped: dict[str, int],
                         sheet: str | None = None) -> pd.DataFrame:
    header = read_header(path, sheet=sheet)
    raw = read_frame(path, sheet=sheet)
    if format == "indstat":
        aliases = {"year": ["year"], "country": ["country"], "table": ["ctable", "table"], "sector": ["isic"],
                   "value": ["value"], "unit": ["unit"]}
        found = resolve_columns(header, aliases, columns, required=["year", "country", "table", "sector", "value"], source=str(path))
        country = countries.normalise(raw[found["country"]], numeric=True)
        table = raw[found["table"]].astype(str).str.strip().str.zfill(2)
        indicator = table.map(INDSTAT_TABLES).fillna("table_" + table)
        if "unit" in found:
            unit = raw[found["unit"]].astype(str).str.strip().str.lower()
            indicator = indicator.where(unit.isin(["", "nan", "$", "usd"]), indicator + "_" + unit.str.replace(r"[^a-z0-9]+", "_", regex=True))
        return pd.DataFrame({"year": raw[found["year"]], "country": country, "sector": raw[found["sector"]].astype(str).str.strip(),
                             "indicator": indicator, "value": raw[found["value"]]})
    found = resolve_columns(header, CAPACITY_ALIASES, columns, required=["year", "country"], source=str(path))
    if "value" in found and ("indicator" in found or "sector" in found):
        frame = pd.DataFrame({k: raw[v] for k, v in found.items()})
    else:  # wide: one column per indicator (e.g. Penn World Table)
        used = set(found.values()) | {c for c in header if c.lower() in {"country", "countryname", "currency_unit"} and c not in found.values()}
        value_cols = [c for c in header if c not in used]
        if not value_cols:
            raise DataValidationError(str(path), [Problem(f"no value column: need 'value' with 'indicator'/'sector', or indicator columns; file has {header}")])
        wide = raw[[found["year"], found["country"], *value_cols]].rename(columns={found["year"]: "year", found["country"]: "country"})
        frame = wide.melt(id_vars=["year", "country"], var_name="indicator", value_name="value")
        empty = frame["value"].isna() | (frame["value"].astype(str).str.strip() == "")
        if empty.any():
            dropped["empty cells of the wide table (not reported)"] = int(empty.sum())
        frame = frame[~empty].reset_index(drop=True)
    if "indicator" in frame:
        split = frame["indicator"].astype(str).map(normalise_indicator)
        frame["indicator"] = split.str[1]
        if "sector" not in frame:
            frame["sector"] = split.str[0]
    else:
        frame["indicator"] = "value_added"
    return frame


@reading_errors
def ingest_capacity(
    bank: DataBank, path: str | Path, *, format: str = "long", columns: dict[str, str] | None = None,
    replace: bool = False, sheet: str | None = None,
) -> IngestResult:
    """Validate a production-capacity table and add it to the bank (atomically).

    ``long``: year, country, sector and/or indicator, value (e.g. UN value added with
    ``--column country=iso3 --column value=value_usd``), or a wide table with one column per
    indicator (e.g. the Penn World Table). ``indstat``: UNIDO INDSTAT bulk CSV
    (ctable, country, year, isic, value[, unit]); ISO numeric countries mapped to ISO3. A workbook's
    ``sheet`` is chosen by name (default: its only sheet with data).
    """
    columns = dict(columns or {})
    source = open_source(bank, path, table="capacity", format=format, formats=CAPACITY_FORMATS,
                         options={"format": format, "columns": columns, **({"sheet": sheet} if sheet else {})})
    if isinstance(source, IngestResult):
        return source
    path = source.path
    dropped: dict[str, int] = {}
    frame = _read_capacity_frame(path, format, columns, dropped, sheet)
    problems = ProblemCollector()
    year = pd.to_numeric(frame["year"], errors="coerce")
    problems.add_mask(f"year missing, not a whole number or outside {YEAR_RANGE[0]}–{YEAR_RANGE[1]}",
                      (year.isna() | (year % 1 != 0) | (year < YEAR_RANGE[0]) | (year > YEAR_RANGE[1])).to_numpy(), 0)
    value = pd.to_numeric(frame["value"], errors="coerce")
    problems.add_mask("value missing or not a number", value.isna().to_numpy(), 0)
    problems.add_mask("value not finite (inf or out of range)", (value.notna() & ~np.isfinite(value.fillna(0))).to_numpy(), 0)
    country = countries.normalise(frame["country"])
    problems.add_mask("country missing", country.isna().to_numpy(), 0)
    bad = countries.unknown_codes(country.dropna().unique())
    if bad:
        problems.add_mask(f"unknown country code(s) {', '.join(bad[:8])}", country.isin(bad).to_numpy(), 0)
    frame = frame.assign(year=year, value=value, country=country,
                         sector=frame["sector"].fillna("TOTAL").astype(str).str.strip(), indicator=frame["indicator"].astype(str))
    level = frame["indicator"].isin(NON_NEGATIVE_INDICATORS) & (frame["value"] < 0)
    problems.add_mask(f"negative value of a level indicator ({', '.join(sorted(NON_NEGATIVE_INDICATORS))})", level.to_numpy(), 0)
    dup = frame.duplicated(["year", "country", "sector", "indicator"], keep="first")
    problems.add_mask("duplicate key (year, country, sector, indicator)", dup.to_numpy(), 0)
    if problems:
        raise DataValidationError(str(path), problems.problems)
    if frame.empty:
        raise DataValidationError(str(path), [Problem("no capacity rows", count=0)])
    frame["year"] = frame["year"].astype("int16")
    table = pa.Table.from_pandas(frame[CAPACITY_SCHEMA.names], schema=CAPACITY_SCHEMA, preserve_index=False)
    years = {int(y) for y in frame["year"].unique()}

    def write(tx: Transaction) -> None:
        for y in sorted(years):
            tx.open_writer("capacity", y, source.id, CAPACITY_SCHEMA).write_table(table.filter(pc.equal(table.column("year"), y)))

    return publish(source, write, rows=len(frame), replace=replace, years=years, dropped=dropped,
                   indicators=set(frame["indicator"].unique()), sectors=sorted(frame["sector"].unique()))
