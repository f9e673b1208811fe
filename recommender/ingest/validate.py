"""The one trade validator: every batch of every reader is checked here, in the bank's canonical schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender import countries
from recommender.bank import TRADE_SCHEMA
from recommender.errors import Problem
from recommender.ingest.common import (
    _MAX_ROWS_KEPT,
    YEAR_RANGE,
    ProblemCollector,
    _dictionary,
    _used,
)


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
        values = countries.normalise(pd.Series(d.dictionary.to_pylist(), dtype=object)).tolist()
        values = [v if isinstance(v, str) else None for v in values]
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
