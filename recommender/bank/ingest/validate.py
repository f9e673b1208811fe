"""The one trade validator: every batch of every reader is checked here, in the bank's canonical schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender import countries
from recommender.bank import TRADE_SCHEMA
from recommender.bank.ingest.common import YEAR_RANGE, dictionary_array, row_indices
from recommender.errors import MAX_ROWS_KEPT, Problem, ProblemCollector


def _distinct(values: list[str | None]) -> tuple[pa.Array, np.ndarray | None]:
    """A dictionary of ``values``' distinct codes and, if that is not ``values`` itself, each entry's
    position in it (``None`` entries: 0, masked by the caller). BACI's numeric codes name some
    countries twice (France is 250 and 251): Parquet writes a dictionary column with repeated
    entries as plain strings, at three times the CPU."""
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    if len(distinct) == len(values):
        return pa.array(values, pa.string()), None
    position = {v: n for n, v in enumerate(distinct)}
    return pa.array(distinct, pa.string()), np.array([position.get(v, 0) for v in values] + [0], dtype=np.int32)


def _encoded(indices: pa.Array, idx: np.ndarray, dictionary: pa.Array, remap: np.ndarray | None,
             missing: np.ndarray | None) -> pa.DictionaryArray:
    """A code column over ``dictionary`` (from :func:`_distinct`): ``indices`` as they are, or each row's
    raw entry ``idx`` mapped through ``remap``; rows flagged ``missing`` are null."""
    if remap is None:
        return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)  # indices within the raw dictionary
    return pa.DictionaryArray.from_arrays(pa.array(remap[idx], mask=missing), dictionary, safe=False)


class TradeValidator:
    """Checks canonical trade batches; tracks duplicates and product-code lengths across batches.

    Works on dictionary-encoded code columns, so per-row work is integer arithmetic and the
    string checks run once per distinct dictionary. Codes get ids in the order their dictionaries
    list them, so a file sorted by its own codes (BACI: by year, exporter, importer and product
    number) has ascending row keys, and its duplicate check needs no sort.
    """

    def __init__(self) -> None:
        self.problems = ProblemCollector()
        self.products: dict[str, int] = {}  # the codes rows use, in order of first use (the bank's product list)
        self._known = countries.known_codes()
        self._country_ids: dict[str, int] = {}  # known code → 1, 2, …; unknown and missing → 0
        self._product_ids: dict[str, int] = {}  # every dictionary entry → 0, 1, …
        self._country_dictionaries: dict[tuple, tuple] = {}
        self._product_dictionaries: dict[tuple, tuple] = {}
        self._keys: list[np.ndarray] = []
        self._ascending = True  # every key so far above the one before: no duplicates
        self._last_key: int | None = None
        self._length_rows: dict[int, list[int]] = {}
        self.length_counts: dict[int, int] = {}
        self.self_flows = 0

    def _country_column(self, table: pa.Table, col: str, offset: int) -> tuple[pa.DictionaryArray, np.ndarray]:
        d = dictionary_array(table.column(col))
        raw = tuple(d.dictionary.to_pylist())
        if raw not in self._country_dictionaries:  # once per distinct dictionary: a BACI file has one
            self._country_dictionaries[raw] = self._country_dictionary(raw)
        values, (dictionary, remap), missing_entry, bad_entry, ids = self._country_dictionaries[raw]
        idx = row_indices(d)  # -1 (a null cell) reads each table's last entry: missing, not unknown
        missing = missing_entry[idx] if d.indices.null_count or missing_entry[:-1].any() else None
        if missing is not None:
            self.problems.add_mask(f"missing {col}", missing, offset)
        d = _encoded(d.indices, idx, dictionary, remap, missing)
        if bad_entry.any():
            rows = np.flatnonzero(bad_entry[idx])
            if rows.size:
                names = sorted({values[u] for u in np.unique(idx[rows])})
                shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
                self.problems.add(f"unknown {col} code(s) {shown} (not ISO 3166 alpha-3; see recommender.countries.ALIASES)",
                                  rows, offset)
        return d, ids[idx]

    def _country_dictionary(self, raw: tuple[str | None, ...]) -> tuple[list, tuple, np.ndarray, np.ndarray, np.ndarray]:
        """A country dictionary's canonical codes (and their :func:`_distinct` dictionary); which entries
        are missing, which unknown; their ids.

        The three arrays have one more entry than the dictionary, for null cells (index -1).
        """
        values = countries.normalise(pd.Series(raw, dtype=object)).tolist()
        values = [v if isinstance(v, str) else None for v in values]
        missing_entry = np.array([v is None for v in values] + [True])
        bad_entry = np.array([v is not None and v not in self._known for v in values] + [False])
        for v in values:
            if v in self._known:
                self._country_ids.setdefault(v, len(self._country_ids) + 1)
        ids = np.array([self._country_ids.get(v, 0) for v in values] + [0], dtype=np.int64)
        return values, _distinct(values), missing_entry, bad_entry, ids

    def _product_column(self, table: pa.Table, offset: int) -> tuple[pa.DictionaryArray, np.ndarray]:
        d = dictionary_array(table.column("product"))
        raw = tuple(d.dictionary.to_pylist())
        if raw not in self._product_dictionaries:  # once per distinct dictionary: a BACI file read whole has one
            values = [v.strip() if v is not None else "" for v in raw]
            for v in values:
                self._product_ids.setdefault(v, len(self._product_ids))
            ids = np.array([self._product_ids[v] for v in values] + [0], dtype=np.int64)
            self._product_dictionaries[raw] = values, _distinct(values), ids
        values, (dictionary, remap), ids = self._product_dictionaries[raw]
        idx = row_indices(d)
        used = np.flatnonzero(np.bincount(idx + 1, minlength=len(values) + 1)[1:])
        empty = [int(u) for u in used if values[u] == ""]
        if empty or d.indices.null_count:
            self.problems.add_mask("missing product code", (idx < 0) | np.isin(idx, empty), offset)
        used_lengths = {len(values[u]) for u in used}
        if len(used_lengths) == 1:  # the usual case: one length, counted without per-row lengths
            present = np.flatnonzero(idx >= 0) if d.indices.null_count else np.arange(len(idx))
            self._count_length(used_lengths.pop(), present[:MAX_ROWS_KEPT], present.size, offset)
        else:
            lengths = np.array([len(v) for v in values] + [0])[idx]
            for length in used_lengths:
                rows = np.flatnonzero(lengths == length)
                self._count_length(length, rows, rows.size, offset)
        for u in used:
            self.products.setdefault(values[u], len(self.products))
        return _encoded(d.indices, idx, dictionary, remap, (idx < 0) if d.indices.null_count else None), ids[idx]

    def _count_length(self, length: int, rows: np.ndarray, count: int, offset: int) -> None:
        kept = self._length_rows.setdefault(length, [])
        kept.extend(int(r) + offset for r in rows[: max(0, MAX_ROWS_KEPT - len(kept))])
        self.length_counts[length] = self.length_counts.get(length, 0) + int(count)

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
        yr = np.asarray(pc.fill_null(year, 0).to_numpy(zero_copy_only=False), dtype=np.int64) & 255
        keys = (((yr << 10 | exp_id) << 10 | imp_id) << 34) | prod_id  # 8 + 10 + 10 + 34 bits
        same = exp_id == imp_id
        out = pa.Table.from_arrays([year, exporter, importer, product, value, table.column("quantity")], schema=TRADE_SCHEMA)
        if same.any():
            self.self_flows += int(same.sum())
            # self-flows are dropped: give them unique negative keys so they never count as duplicates
            keys = np.where(same, -1 - np.arange(offset, offset + table.num_rows), keys)
            out = out.filter(pa.array(~same))
        self._keys.append(keys)  # one key per input row: a key's position is its row number
        if self._ascending and keys.size:
            self._ascending = bool((keys[1:] > keys[:-1]).all()) and (self._last_key is None or keys[0] > self._last_key)
            self._last_key = int(keys[-1])
        return out

    def finish(self) -> list[Problem]:
        if len(self.length_counts) > 1:
            common = max(self.length_counts, key=self.length_counts.get)
            for length, rows in self._length_rows.items():
                if length != common:
                    reason = f"product code of length {length} (most codes have {common} characters)"
                    self.problems.add(reason, rows, count=self.length_counts[length])
        if self._keys and not self._ascending:  # ascending keys (sorted input) hold no duplicate
            keys = np.concatenate(self._keys)
            if keys.size > 1:
                ordered = np.sort(keys)  # a plain sort first: only a file with duplicates pays for argsort
                if (ordered[1:] == ordered[:-1]).any():
                    order = np.argsort(keys, kind="stable")
                    dup = keys[order][1:] == keys[order][:-1]
                    self.problems.add("duplicate key (year, exporter, importer, product)", np.sort(order[1:][dup]))
        return self.problems.problems
