"""Ingest trade, capacity and geography files into the data bank, validating everything first.

Every reader turns a source file into batches of the bank's canonical schema
(:data:`recommender.bank.TRADE_SCHEMA` and friends). One validator checks the batches and one
writer publishes them through a bank transaction, so a file that fails any check leaves the bank
untouched.

Rules (documented in the README):

* codes are strings; product codes keep leading zeros and must all have one length;
* country codes must be known ISO 3166 alpha-3 codes (current or withdrawn) after the aliases of
  :mod:`recommender.countries`; BACI numeric codes map through BACI's country file or ISO numeric;
* trade values must be present and non-negative; a flow from a country to itself is dropped and
  counted (re-imports, seen in UN data); partner aggregates (World, areas n.e.s.) are dropped and
  counted;
* a key (year, exporter, importer, product) may appear once; duplicates reject the file;
* capacity values may be negative (value added and inventories can be), must be present in long
  tables; empty cells of wide tables mean "not reported" and are skipped and counted;
* re-ingesting a file with the same sha256 changes nothing; a new source whose years overlap a
  source already in the bank (for capacity: same years and indicators) is refused unless
  ``replace=True``, which removes the overlapping years of the older source.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.sectors import product_sectors
from recommender import countries
from recommender.bank import CAPACITY_SCHEMA, GEOGRAPHY_SCHEMA, TRADE_SCHEMA, DataBank, Transaction
from recommender.errors import BankConflictError, DataValidationError, Problem, RecommenderError

TRADE_FORMATS = ("baci", "comtrade", "long")
CAPACITY_FORMATS = ("long", "indstat")
Progress = Callable[[int], None]

YEAR_RANGE = (1900, 2100)
_MAX_ROWS_KEPT = 20

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
NON_NEGATIVE_INDICATORS = frozenset({"gdp", "rgdpo", "rgdpna", "pop", "emp", "hc", "rnna", "rkna"})


@dataclass
class IngestResult:
    """What an ingest did: the manifest entry, whether anything changed, what was dropped."""

    source: dict[str, Any]
    unchanged: bool = False
    dropped: dict[str, int] = field(default_factory=dict)
    replaced: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def _read_header(path: Path) -> list[str]:
    if _is_parquet(path):
        return pq.ParquetFile(path).schema_arrow.names
    return list(pd.read_csv(path, nrows=0).columns)


def _frame_batches(path: Path, columns: list[str], chunk_rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """Read CSV or Parquet in chunks, every column as a string (codes keep leading zeros)."""
    if _is_parquet(path):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas().astype("str").replace({"nan": None, "None": None, "<NA>": None})
    else:
        yield from pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_values=[""], chunksize=chunk_rows)


class ProblemCollector:
    """Accumulates problems by reason, keeping the first rows and counting all."""

    def __init__(self) -> None:
        self._problems: dict[str, Problem] = {}

    def add(self, reason: str, rows: np.ndarray | list[int], offset: int = 0, *, count: int | None = None) -> None:
        """Record ``rows`` (kept up to a limit) under ``reason``; ``count`` overrides how many rows it adds."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        p = self._problems.setdefault(reason, Problem(reason, [], 0))
        p.rows = list(p.rows) + [int(r) + offset for r in rows[: max(0, _MAX_ROWS_KEPT - len(p.rows))]]
        p.count = (p.count or 0) + (int(rows.size) if count is None else count)

    def add_mask(self, reason: str, mask: pa.Array | np.ndarray, offset: int) -> None:
        arr = mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array | pa.ChunkedArray) else mask
        arr = np.asarray(arr)
        if arr.dtype == object:
            arr = arr.astype(bool)
        if arr.any():
            self.add(reason, np.flatnonzero(arr), offset)

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems.values())

    def __bool__(self) -> bool:
        return bool(self._problems)


def _dictionary(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """One dictionary-encoded array (int32 indices) whatever came in."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.type.index_type != pa.int32():
        column = pa.DictionaryArray.from_arrays(pc.cast(column.indices, pa.int32()), column.dictionary)
    return column


def _used(dictionary: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (row-wise, -1 for null) and the dictionary entries that rows actually use."""
    idx = np.asarray(pc.fill_null(dictionary.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    counts = np.bincount(idx[idx >= 0], minlength=len(dictionary.dictionary))
    return idx, np.flatnonzero(counts)


# ------------------------------------------------------------------------------------------
# trade readers: each yields canonical tables (TRADE_SCHEMA) and counts what it drops
# ------------------------------------------------------------------------------------------
def _baci_names(country_codes: Path | None) -> pa.Array:
    """A 1000-entry dictionary: numeric code → ISO3, or ``#<code>`` when unmapped."""
    table = dict(countries.numeric_to_iso3())
    if country_codes is not None:
        cc = pd.read_csv(country_codes, dtype=str, keep_default_na=False)
        code_col = next((c for c in cc.columns if c.lower() in {"country_code", "code"}), None)
        iso_col = next((c for c in cc.columns if c.lower() in {"country_iso3", "iso_3digit_alpha", "iso3"}), None)
        if code_col is None or iso_col is None:
            raise DataValidationError(str(country_codes), [Problem(f"expected columns country_code and country_iso3; got {list(cc.columns)}")])
        for code, iso in zip(cc[code_col], cc[iso_col], strict=True):
            if code.strip().isdigit() and iso.strip():
                table[int(code)] = countries.canonical(iso)
    return pa.array([table.get(code, f"#{code}") for code in range(1000)], pa.string())


def _baci_codes(column: pa.ChunkedArray, names: pa.Array) -> pa.DictionaryArray:
    codes = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
    bad = (codes < 0) | (codes >= len(names))
    if bad.any():  # out-of-range codes get their own entries so validation names them
        extra = np.unique(codes[bad])
        names = pa.concat_arrays([names, pa.array([f"#{c}" for c in extra], pa.string())])
        codes = np.where(bad, len(names) - len(extra) + np.searchsorted(extra, codes), codes)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), names)


def _baci_products(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """HS codes read as integers → zero-padded six-character strings, dictionary-encoded."""
    k = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
    if k.size and (k.min() < 0 or k.max() > 999_999):
        raise DataValidationError("BACI file", [Problem("product code k outside 0–999999", np.flatnonzero((k < 0) | (k > 999_999)))])
    present = np.flatnonzero(np.bincount(k, minlength=1)) if k.size else np.array([], dtype=np.int64)
    remap = np.zeros(int(k.max()) + 1 if k.size else 1, dtype=np.int32)
    remap[present] = np.arange(len(present), dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(remap[k]), pa.array([f"{c:06d}" for c in present], pa.string()))


def read_baci(path: Path, *, country_codes: Path | None = None, dropped: dict[str, int],
              block_size: int = 1 << 24) -> Iterator[pa.Table]:
    """CEPII BACI yearly CSV: ``t,i,j,k,v,q``; v in thousands of USD, q in metric tons.

    Country codes are numeric (BACI's own list via ``country_codes``, else ISO 3166 numeric);
    k is padded to six digits; v is converted to USD. Streams the file in blocks.
    """
    header = _read_header(path)
    missing = [c for c in "tijkv" if c not in header]
    if missing:
        raise DataValidationError(str(path), [Problem(f"BACI columns {missing} missing; file has {header}")],
                                  hint="BACI files have columns t,i,j,k,v,q; use --format long for other layouts")
    names = _baci_names(country_codes)
    include = [c for c in "tijkvq" if c in header]
    types = {"t": pa.int16(), "i": pa.int32(), "j": pa.int32(), "k": pa.int64(), "v": pa.float64(), "q": pa.float64()}
    nulls = ["", "NA", "N/A", "NaN", "nan", "null", "           NA"]
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_size),
        convert_options=pacsv.ConvertOptions(column_types=types, include_columns=include, null_values=nulls),
    )
    for batch in reader:
        quantity = batch.column("q") if "q" in include else pa.nulls(batch.num_rows, pa.float64())
        yield pa.Table.from_arrays(
            [batch.column("t"), _baci_codes(batch.column("i"), names), _baci_codes(batch.column("j"), names),
             _baci_products(batch.column("k")), pc.multiply(batch.column("v"), 1000.0), quantity],
            names=TRADE_SCHEMA.names,
        )


def _table_from_frame(df: pd.DataFrame) -> pa.Table:
    year = pd.to_numeric(df["year"], errors="coerce")
    value = pd.to_numeric(df["value_usd"], errors="coerce")
    bad_year = year.isna() & df["year"].notna()
    bad_value = value.isna() & df["value_usd"].notna()
    if bad_year.any() or bad_value.any():
        raise _NonNumeric(np.flatnonzero(bad_year), np.flatnonzero(bad_value))
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


class _NonNumeric(Exception):
    def __init__(self, year_rows: np.ndarray, value_rows: np.ndarray):
        self.year_rows, self.value_rows = year_rows, value_rows


def read_long(path: Path, *, columns: dict[str, str], dropped: dict[str, int]) -> Iterator[pa.Table]:
    """A tidy CSV or Parquet table: year, exporter, importer, product, value_usd [, quantity]."""
    found = resolve_columns(_read_header(path), TRADE_ALIASES, columns,
                            required=["year", "exporter", "importer", "product", "value_usd"], source=str(path))
    for chunk in _frame_batches(path, list(dict.fromkeys(found.values()))):
        yield _table_from_frame(pd.DataFrame({canon: chunk[src] for canon, src in found.items()}))


def read_comtrade(path: Path, *, columns: dict[str, str], dropped: dict[str, int]) -> Iterator[pa.Table]:
    """UN Comtrade bulk or API CSV: keeps reported exports (flow X) as exporter → partner flows.

    Partner aggregates (World, areas n.e.s.) and, when present, sub-totals by customs procedure,
    mode of transport or second partner other than the totals are dropped and counted.
    """
    header = _read_header(path)
    found = resolve_columns(header, COMTRADE_ALIASES, columns,
                            required=["year", "flow", "reporter", "partner", "product", "value_usd"], source=str(path))
    extra = {c: v for c, v in {"customsCode": "C00", "motCode": "0", "partner2Code": "0"}.items() if c in header}
    usecols = list(dict.fromkeys(list(found.values()) + list(extra)))

    def drop(reason: str, mask: pd.Series) -> None:
        dropped[reason] = dropped.get(reason, 0) + int(mask.sum())

    for chunk in _frame_batches(path, usecols):
        flow = chunk[found["flow"]].fillna("").str.strip().str.upper()
        keep = flow.isin(["X", "2", "EXPORT", "EXPORTS"])
        drop("non-export flows", ~keep)
        for col, total in extra.items():
            sub = chunk[col].fillna("").str.strip() != total
            drop(f"{col} sub-totals", keep & sub)
            keep &= ~sub
        partner = chunk[found["partner"]].fillna("").str.strip().str.upper()
        aggregate = partner.isin(countries.AGGREGATES) | partner.isin(["WORLD", "0"])
        drop("partner aggregates (World, areas n.e.s.)", keep & aggregate)
        keep &= ~aggregate
        product = chunk[found["product"]].fillna("").str.strip()
        total = product.str.upper().isin(["TOTAL", "ALL", "AG2", "AG4", "AG6"])
        drop("product totals", keep & total)
        keep &= ~total
        sub = chunk[keep]
        frame = pd.DataFrame({
            "year": sub[found["year"]].str.strip().str[:4],
            "exporter": sub[found["reporter"]],
            "importer": sub[found["partner"]],
            "product": sub[found["product"]].str.strip(),
            "value_usd": sub[found["value_usd"]],
        })
        if "quantity" in found:
            frame["quantity"] = sub[found["quantity"]]
        yield _table_from_frame(frame.reset_index(drop=True))


# ------------------------------------------------------------------------------------------
# trade validation and ingest
# ------------------------------------------------------------------------------------------
class TradeValidator:
    """Checks canonical trade batches; tracks duplicates and product-code lengths across batches.

    Works on dictionary-encoded code columns, so per-row work is integer arithmetic and the
    string checks run once per distinct code.
    """

    def __init__(self) -> None:
        self.problems = ProblemCollector()
        self.products: dict[str, int] = {}
        self._countries = {c: n for n, c in enumerate(sorted(countries.known_codes()))}
        self._keys: list[np.ndarray] = []
        self._length_rows: dict[int, list[int]] = {}
        self.length_counts: dict[int, int] = {}
        self.self_flows = 0

    def _country_column(self, table: pa.Table, col: str, offset: int) -> tuple[pa.DictionaryArray, np.ndarray]:
        d = _dictionary(table.column(col))
        values = [countries.canonical(v) if v is not None else None for v in d.dictionary.to_pylist()]
        d = pa.DictionaryArray.from_arrays(d.indices, pa.array(values, pa.string()))
        idx, used = _used(d)
        self.problems.add_mask(f"missing {col}", idx < 0, offset)
        bad = [int(u) for u in used if values[u] not in self._countries]
        if bad:
            names = sorted(values[u] for u in bad)
            shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            self.problems.add(f"unknown {col} code(s) {shown} (not ISO 3166 alpha-3; see recommender.countries.ALIASES)",
                              np.flatnonzero(np.isin(idx, bad)), offset)
        ids = np.array([self._countries.get(v, 0) for v in values] or [0], dtype=np.int64)
        return d, ids[np.maximum(idx, 0)]

    def _product_column(self, table: pa.Table, offset: int) -> tuple[pa.DictionaryArray, np.ndarray]:
        d = _dictionary(table.column("product"))
        values = [v.strip() if v is not None else "" for v in d.dictionary.to_pylist()]
        d = pa.DictionaryArray.from_arrays(d.indices, pa.array(values, pa.string()))
        idx, used = _used(d)
        empty = [int(u) for u in used if values[u] == ""]
        self.problems.add_mask("missing product code", (idx < 0) | np.isin(idx, empty), offset)
        lengths = np.array([len(v) for v in values] or [0])[np.maximum(idx, 0)]
        for length in {len(values[u]) for u in used}:
            rows = np.flatnonzero(lengths == length)
            kept = self._length_rows.setdefault(length, [])
            kept.extend(int(r) + offset for r in rows[: max(0, _MAX_ROWS_KEPT - len(kept))])
            self.length_counts[length] = self.length_counts.get(length, 0) + int(rows.size)
        for u in used:
            self.products.setdefault(values[u], len(self.products))
        ids = np.array([self.products.get(v, 0) for v in values] or [0], dtype=np.int64)
        return d, ids[np.maximum(idx, 0)]

    def check(self, table: pa.Table, offset: int) -> pa.Table:
        """Validate one batch (rows ``offset``…) and return it in the bank's schema, without self-flows."""
        p = self.problems
        year = table.column("year")
        p.add_mask(f"year outside {YEAR_RANGE[0]}–{YEAR_RANGE[1]} or missing",
                   pc.fill_null(pc.or_(pc.less(year, YEAR_RANGE[0]), pc.greater(year, YEAR_RANGE[1])), True), offset)
        exporter, exp_id = self._country_column(table, "exporter", offset)
        importer, imp_id = self._country_column(table, "importer", offset)
        product, prod_id = self._product_column(table, offset)
        value = table.column("value_usd")
        p.add_mask("missing value_usd", pc.is_null(value), offset)
        p.add_mask("value_usd not finite (inf or out of range)", pc.fill_null(pc.is_inf(value), False), offset)
        p.add_mask("negative value_usd", pc.fill_null(pc.less(value, 0), False), offset)
        p.add_mask("negative quantity", pc.fill_null(pc.less(table.column("quantity"), 0), False), offset)
        yr = np.asarray(pc.fill_null(year, 0).to_numpy(zero_copy_only=False), dtype=np.int64) % 256
        keys = (((yr << 10 | exp_id) << 10 | imp_id) << 34) | prod_id
        same = exp_id == imp_id
        out = pa.Table.from_arrays([year, exporter, importer, product, value, table.column("quantity")], schema=TRADE_SCHEMA)
        if same.any():
            self.self_flows += int(same.sum())
            # self-flows are dropped: give them unique negative keys so they never count as duplicates
            keys = np.where(same, -1 - np.arange(offset, offset + table.num_rows), keys)
            out = out.filter(pa.array(~same))
        self._keys.append(keys)  # one key per input row: a key's position is its row number
        return out

    def finish(self) -> list[Problem]:
        if len(self.length_counts) > 1:
            common = max(self.length_counts, key=self.length_counts.get)
            for length, rows in self._length_rows.items():
                if length != common:
                    reason = f"product code of length {length} (most codes have {common} characters)"
                    self.problems.add(reason, rows, count=self.length_counts[length])
        if self._keys:
            keys = np.concatenate(self._keys)
            if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):  # sorted input (BACI) needs no sort
                order = np.argsort(keys, kind="stable")
                dup = keys[order][1:] == keys[order][:-1]
                if dup.any():
                    self.problems.add("duplicate key (year, exporter, importer, product)", np.sort(order[1:][dup]))
        return self.problems.problems


def _overlapping(bank: DataBank, table: str, years: set[int], indicators: set[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for src in bank.sources:
        if src["table"] != table:
            continue
        if table == "geography" or (years & set(src["years"]) and (indicators is None or indicators & set(src.get("indicators", [])))):
            out.append(src)
    return out


def _source_id(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:40]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _same_file(bank: DataBank, table: str, sha: str, options: dict[str, Any]) -> dict[str, Any] | None:
    return next((s for s in bank.sources if s["table"] == table and s["sha256"] == sha and s.get("options") == options), None)


def _resolve_conflicts(tx: Transaction, bank: DataBank, table: str, years: set[int], replace: bool, path: Path,
                       indicators: set[str] | None = None) -> list[str]:
    clash = _overlapping(bank, table, years, indicators)
    if clash and not replace:
        names = ", ".join(f"{s['path']} (years {min(s['years'])}–{max(s['years'])})" if s.get("years") else s["path"] for s in clash)
        raise BankConflictError(
            f"{path}: overlaps {table} already in the bank from {names}; nothing was written. "
            "Pass --replace to replace the overlapping years."
        )
    replaced = []
    for src in clash:
        replaced.append(src["id"])
        entry = next(s for s in tx.manifest["sources"] if s["id"] == src["id"])
        if table == "geography":
            tx.remove_table("geography")
            tx.manifest["sources"].remove(entry)
            continue
        overlap = years & set(src["years"])
        # capacity conflicts are per (year, indicator): keep the source's other indicators of those years
        keep = (lambda t: pc.invert(pc.is_in(t.column("indicator"), pa.array(sorted(indicators))))) \
            if table == "capacity" and indicators else None
        removed, gone = tx.remove_source_years(table, src["id"], overlap, keep=keep)
        entry["years"] = sorted(set(entry["years"]) - gone)
        entry["rows"] = int(entry.get("rows", 0)) - removed  # the manifest's row count stays true
        if keep is not None:
            entry["indicators"] = sorted(set(entry.get("indicators", [])) - (indicators if not entry["years"] else set()))
        if not entry["years"]:
            tx.manifest["sources"].remove(entry)
    return replaced


def _bank_compatibility(bank: DataBank, classification: str, lengths: list[int]) -> list[Problem]:
    """A new trade source must use the bank's classification and product-code length."""
    problems = []
    for src in (s for s in bank.sources if s["table"] == "trade"):
        if src.get("classification") and src["classification"] != classification:
            problems.append(Problem(f"classification {classification!r} differs from the bank's {src['classification']!r} "
                                    f"(source {src['path']}); use a separate --home per classification", count=0))
        level = src.get("product_level")
        if level and lengths and lengths != [level]:
            problems.append(Problem(f"product codes of {'/'.join(map(str, lengths))} characters differ from the bank's {level} "
                                    f"(source {src['path']}); leading zeros lost? read codes as text", count=0))
        if problems:
            break
    return problems


def _update_products(tx: Transaction, bank: DataBank, codes: list[str], classification: str) -> None:
    new = product_sectors(codes, classification)
    new["classification"] = classification
    if bank.has("products"):
        old = bank.read("products")
        new = pd.concat([old[~old["product"].isin(new["product"])], new], ignore_index=True)
    tx.write_table("products", "products", pa.Table.from_pandas(new.sort_values("product").reset_index(drop=True), preserve_index=False))


def _check_source(path: Path, format: str, formats: tuple[str, ...]) -> None:
    if not path.is_file():
        raise RecommenderError(f"{path}: no such file")
    if format not in formats:
        raise RecommenderError(f"unknown format {format!r}; choose one of {formats}")


def _record(tx: Transaction, *, source_id: str, table: str, path: Path, sha: str, format: str, rows: int,
            years: set[int], options: dict[str, Any], dropped: dict[str, int], classification: str | None = None,
            product_level: int | None = None, **extra: Any) -> dict[str, Any]:
    """Append this source's manifest entry to the transaction and return it."""
    entry = {"id": source_id, "table": table, "path": str(path.absolute()), "sha256": sha, "format": format, "rows": rows,
             "years": sorted(years), "classification": classification, "product_level": product_level,
             "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"), "options": options, "dropped": dropped, **extra}
    tx.manifest["sources"].append(entry)
    return entry


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
    sha = file_sha256(path)  # first: an unchanged file returns at once, without parsing it under the lock
    same = _same_file(bank, "trade", sha, options)
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


# ------------------------------------------------------------------------------------------
# capacity
# ------------------------------------------------------------------------------------------
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


def _read_capacity_frame(path: Path, format: str, columns: dict[str, str], dropped: dict[str, int]) -> pd.DataFrame:
    header = _read_header(path)
    raw = pd.read_parquet(path) if _is_parquet(path) else pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if format == "indstat":
        aliases = {"year": ["year"], "country": ["country"], "table": ["ctable", "table"], "sector": ["isic"],
                   "value": ["value"], "unit": ["unit"]}
        found = resolve_columns(header, aliases, columns, required=["year", "country", "table", "sector", "value"], source=str(path))
        country = raw[found["country"]].astype(str).str.strip()
        numeric = country.str.fullmatch(r"\d+")
        lookup = countries.numeric_to_iso3()
        country = country.where(~numeric, country[numeric].astype(int).map(lookup).fillna("#" + country))
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


def ingest_capacity(
    bank: DataBank, path: str | Path, *, format: str = "long", columns: dict[str, str] | None = None,
    replace: bool = False,
) -> IngestResult:
    """Validate a production-capacity table and add it to the bank (atomically).

    ``long``: year, country, sector and/or indicator, value (e.g. UN value added with
    ``--column country=iso3 --column value=value_usd``), or a wide table with one column per
    indicator (e.g. the Penn World Table). ``indstat``: UNIDO INDSTAT bulk CSV
    (ctable, country, year, isic, value[, unit]); ISO numeric countries mapped to ISO3.
    """
    path = Path(path)
    _check_source(path, format, CAPACITY_FORMATS)
    columns = dict(columns or {})
    options = {"format": format, "columns": columns}
    sha = file_sha256(path)
    same = _same_file(bank, "capacity", sha, options)
    if same is not None:
        return IngestResult(same, unchanged=True)
    dropped: dict[str, int] = {}
    frame = _read_capacity_frame(path, format, columns, dropped)
    problems = ProblemCollector()
    year = pd.to_numeric(frame["year"], errors="coerce")
    problems.add_mask(f"year missing, not a whole number or outside {YEAR_RANGE[0]}–{YEAR_RANGE[1]}",
                      (year.isna() | (year % 1 != 0) | (year < YEAR_RANGE[0]) | (year > YEAR_RANGE[1])).to_numpy(), 0)
    value = pd.to_numeric(frame["value"], errors="coerce")
    problems.add_mask("value missing or not a number", value.isna().to_numpy(), 0)
    problems.add_mask("value not finite (inf or out of range)", (value.notna() & ~np.isfinite(value.fillna(0))).to_numpy(), 0)
    country = frame["country"].astype(str).str.strip().str.upper().map(countries.canonical)
    bad = countries.unknown_codes(country.unique())
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
    source_id = _source_id(path)
    years = {int(y) for y in frame["year"].unique()}
    indicators = set(frame["indicator"].unique())
    with bank.transaction() as tx:
        replaced = _resolve_conflicts(tx, bank, "capacity", years, replace, path, indicators)
        for y in sorted(years):
            tx.open_writer("capacity", y, source_id, CAPACITY_SCHEMA).write_table(table.filter(pc.equal(table.column("year"), y)))
        entry = _record(tx, source_id=source_id, table="capacity", path=path, sha=sha, format=format, rows=len(frame),
                        years=years, options=options, dropped=dropped, indicators=sorted(indicators),
                        sectors=sorted(frame["sector"].unique()))
    return IngestResult(entry, dropped=dropped, replaced=replaced)


# ------------------------------------------------------------------------------------------
# geography
# ------------------------------------------------------------------------------------------
def ingest_geography(bank: DataBank, path: str | Path, *, columns: dict[str, str] | None = None,
                     replace: bool = False) -> IngestResult:
    """Country-pair geography (CEPII GeoDist layout): distance, contiguity, common official language."""
    path = Path(path)
    _check_source(path, "geography", ("geography",))
    columns = dict(columns or {})
    options = {"columns": columns}
    sha = file_sha256(path)
    same = _same_file(bank, "geography", sha, options)
    if same is not None:
        return IngestResult(same, unchanged=True)
    header = _read_header(path)
    found = resolve_columns(header, GEOGRAPHY_ALIASES, columns, required=["exporter", "importer", "distance_km"], source=str(path))
    raw = pd.read_parquet(path) if _is_parquet(path) else pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    frame = pd.DataFrame({k: raw[v] for k, v in found.items()})
    problems = ProblemCollector()
    for col in ("exporter", "importer"):
        frame[col] = frame[col].astype(str).str.strip().str.upper().map(countries.canonical)
        bad = countries.unknown_codes(frame[col].unique())
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
        flag = pd.to_numeric(frame[col], errors="coerce")
        problems.add_mask(f"{col} must be 0 or 1 (empty = 0)", ~(flag.isin([0, 1]) | frame[col].isna() | frame[col].astype(str).eq("")).to_numpy(), 0)
        frame[col] = flag.where(flag.isin([0, 1]), 0).fillna(0).astype("int8")  # checked before the narrowing cast
    problems.add_mask("duplicate pair", frame.duplicated(["exporter", "importer"]).to_numpy(), 0)
    if frame.empty:
        raise DataValidationError(str(path), [Problem("the file has no rows: an empty file is never a valid source (nothing was replaced)", count=0)])
    if problems:
        raise DataValidationError(str(path), problems.problems)
    table = pa.Table.from_pandas(frame[GEOGRAPHY_SCHEMA.names], schema=GEOGRAPHY_SCHEMA, preserve_index=False)
    source_id = _source_id(path)
    with bank.transaction() as tx:
        replaced = _resolve_conflicts(tx, bank, "geography", set(), replace, path)
        tx.write_table("geography", source_id, table)
        entry = _record(tx, source_id=source_id, table="geography", path=path, sha=sha, format="geography",
                        rows=len(frame), years=set(), options=options, dropped={})
    return IngestResult(entry, replaced=replaced)
