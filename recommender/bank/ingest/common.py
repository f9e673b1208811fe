"""Shared by every source: formats, column aliases, the result type, file helpers and the problem collector."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender.errors import DataValidationError, Problem, RecommenderError
from recommender.tables import UNREADABLE, unreadable

TRADE_FORMATS = ("baci", "comtrade", "long")
CAPACITY_FORMATS = ("long", "indstat")

YEAR_RANGE = (1900, 2100)

#: Accepted source names for each canonical column, tried in order (user mappings win).
TRADE_ALIASES: dict[str, list[str]] = {
    "year": ["year", "t", "refYear", "period", "Year"],
    "exporter": ["exporter", "reporter", "iso_o", "origin", "exporter_iso3"],
    "importer": ["importer", "partner", "iso_d", "destination", "importer_iso3"],
    "product": ["product", "hs6", "hs4", "hs2", "commodity", "section_code", "sitc4"],
    "value_usd": ["value_usd", "value", "trade_value_usd", "export_value_usd"],
    "quantity": ["quantity", "q", "qty", "netweight_kg"],
}
COMTRADE_ALIASES: dict[str, list[str]] = {
    "year": ["refYear", "period", "Year", "yr"],
    "flow": ["flowCode", "Trade Flow Code", "Trade Flow", "rgCode", "flowDesc"],
    "reporter": ["reporterISO", "Reporter ISO", "rt3ISO", "reporterCode"],
    "partner": ["partnerISO", "Partner ISO", "pt3ISO", "partnerCode"],
    "product": ["cmdCode", "Commodity Code", "cmdCode"],
    "value_usd": ["primaryValue", "Trade Value (US$)", "TradeValue", "fobvalue"],
    "quantity": ["netWgt", "Netweight (kg)", "NetWeight"],
}
CAPACITY_ALIASES: dict[str, list[str]] = {
    "year": ["year", "Year"],
    "country": ["country", "iso3", "countrycode", "Country Code"],
    "sector": ["sector", "isic"],
    "indicator": ["indicator", "variable"],
    "value": ["value", "value_usd", "Value"],
}
GEOGRAPHY_ALIASES: dict[str, list[str]] = {
    "exporter": ["iso3_a", "iso_o", "exporter", "country_a"],
    "importer": ["iso3_b", "iso_d", "importer", "country_b"],
    "distance_km": ["dist_km", "dist", "distance_km", "distw"],
    "contiguous": ["contig", "contiguous"],
    "common_language": ["comlang_off", "common_language"],
}
#: Capacity indicators that are levels and so cannot be negative.
NON_NEGATIVE_INDICATORS = frozenset({"gdp", "rgdpo", "rgdpna", "pop", "emp", "hc", "rnna", "rkna",
                                     "establishments", "employees", "wages", "output"})  # levels; value added can be < 0


@dataclass
class IngestResult:
    """What an ingest did: the manifest entry, whether anything changed, what was dropped."""

    source: dict[str, Any]
    unchanged: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    replaced: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what else the ingest did or saw, one line each (a BACI release's files)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def parse_column_map(pairs: list[str] | None) -> dict[str, str]:
    """``["country=iso3", "value=value_usd"]`` → ``{"country": "iso3", "value": "value_usd"}``."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise RecommenderError(f"--column takes CANONICAL=SOURCE (e.g. country=iso3); got {pair!r}")
        key, value = (s.strip() for s in pair.split("=", 1))
        out[key] = value
    return out


def resolve_columns(
    available: list[str], aliases: dict[str, list[str]], user: dict[str, str], *, required: list[str], source: str
) -> dict[str, str]:
    """Map each canonical column to a source column: the user's mapping first, then aliases."""
    unknown = sorted(set(user) - set(aliases))
    if unknown:
        raise RecommenderError(f"--column names unknown canonical column(s) {unknown}; known: {sorted(aliases)}")
    found: dict[str, str] = {}
    for canon, names in aliases.items():
        if canon in user:
            if user[canon] not in available:
                raise DataValidationError(source, [Problem(f"column {user[canon]!r} (mapped to {canon!r}) not found; file has {available}")])
            found[canon] = user[canon]
            continue
        hit = next((n for n in names if n in available), None)
        if hit is not None:
            found[canon] = hit
    missing = [c for c in required if c not in found]
    if missing:
        raise DataValidationError(
            source,
            [Problem(f"required column(s) {missing} missing; file has columns {available}")],
            hint="map them with --column CANONICAL=SOURCE, e.g. --column " + f"{missing[0]}=<your column>",
        )
    return found


def dictionary_array(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """One dictionary-encoded array (int32 indices) whatever came in."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.type.index_type != pa.int32():
        column = pa.DictionaryArray.from_arrays(pc.cast(column.indices, pa.int32()), column.dictionary)
    return column


def row_indices(dictionary: pa.DictionaryArray) -> np.ndarray:
    """Row-wise dictionary indices, -1 for null (so ``table[idx]`` with a sentinel last entry needs no mask)."""
    indices = dictionary.indices if not dictionary.indices.null_count else pc.fill_null(dictionary.indices, -1)
    return indices.to_numpy(zero_copy_only=False)


def reading_errors(ingest: Callable[..., IngestResult]) -> Callable[..., IngestResult]:
    """Refuse a read-only bank (at a URL) before reading anything, and turn a reader's failure on a
    malformed file into a clear :class:`DataValidationError` (nothing is written)."""
    @functools.wraps(ingest)
    def wrapper(bank, path, *args, **kwargs):
        bank.require_writable()
        try:
            return ingest(bank, path, *args, **kwargs)
        except UNREADABLE as exc:  # e.g. a BACI file read by Arrow's own CSV reader
            raise unreadable(path, exc) from exc
    return wrapper
