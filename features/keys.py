"""Left lookups on unique keys: what ``left.merge(right, on=keys, how="left")`` returns for ``right``'s
columns, computed from integer codes instead of pandas' merge.

The feature tables join a million candidates a year to grids keyed by (year, country, product),
several times against the same grid (the RCA of t − 1, t − 2, t − 3, t − 5, …). pandas' merge
factorizes both sides' keys in every call, and with the frame copies of a merge chain that was 9 of
the 23 s of a BACI HS6 diversification year. :class:`KeyIndex` codes ``right``'s keys once (strings
with Arrow's hash kernels, :func:`pyarrow.compute.index_in`, never as Python objects; integers as
offsets), combines them into one ``int64`` (mixed radix) and keeps the row of every combined key
in a position array when the key space is small (a few years' grid) or a hash index otherwise;
each lookup then codes only ``left``. ``right``'s keys must be unique (they are for every grid the
features read: a duplicate would have multiplied the candidates); a key missing from ``right``
gives NaN, as the merge does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.errors import FeatureError

DENSE_LIMIT = 64_000_000
"""Key spaces up to this size are matched through a position array (8 bytes a slot), larger ones by hashing."""


def _arrow(column: pd.Series) -> pa.Array | pa.ChunkedArray:
    """The column as Arrow (Arrow-backed strings: no copy); a categorical as its values."""
    array = pa.array(column, from_pandas=True)
    return pc.cast(array, array.type.value_type) if pa.types.is_dictionary(array.type) else array


class KeyIndex:
    """The rows of ``right`` by the key columns ``on``, for many lookups (:meth:`rows`)."""

    def __init__(self, right: pd.DataFrame, on: Sequence[str]):
        self.on = list(on)
        self.length = len(right)
        self._coders: list[tuple[str, object, int]] = []  # per key: ("int", lowest, size) or ("str", values, size)
        key = np.zeros(len(right), dtype=np.int64)
        for name in self.on:
            column = right[name]
            if column.dtype.kind in "iu":
                values = column.to_numpy().astype(np.int64)
                low = int(values.min(initial=0))
                size = int(values.max(initial=0)) - low + 1
                self._coders.append(("int", low, size))
                codes = values - low
            else:
                arrow = _arrow(column)
                distinct = pc.unique(arrow)
                size = len(distinct)
                self._coders.append(("str", distinct, size))
                codes = np.asarray(pc.index_in(arrow, value_set=distinct).to_numpy(zero_copy_only=False), dtype=np.int64)
            key = key * size + codes
        self.space = int(np.prod([size for *_, size in self._coders], dtype=np.float64)) if self._coders else 1
        rows = np.arange(len(right))
        if self.space <= max(DENSE_LIMIT, 4 * len(right)):
            self._slot = np.full(self.space, -1, dtype=np.int64)
            self._slot[key] = rows
            unique = bool((self._slot[key] == rows).all())  # a key held twice keeps only its last row
            self._index = None
        else:
            self._slot, self._index = None, pd.Index(key)
            unique = self._index.is_unique
        if not unique:
            raise FeatureError(f"lookup on {self.on}: the right table has duplicate keys; aggregate it first")

    def rows(self, left: pd.DataFrame, on: Sequence[str] | None = None, *, shift: Mapping[str, int] | None = None) -> np.ndarray:
        """For each row of ``left``, the row of the indexed table with the same keys, or −1.

        ``on``: ``left``'s names of the keys, in the index's order (default the same names).
        ``shift``: integers added to a key first, e.g. ``{"year": -3}`` for each row's year t − 3.
        """
        if not self.length:  # an empty table (a year not in the bank): nothing to code or match
            return np.full(len(left), -1, dtype=np.int64)
        on = self.on if on is None else list(on)
        key = np.zeros(len(left), dtype=np.int64)
        valid = np.ones(len(left), dtype=bool)
        for name, (kind, what, size) in zip(on, self._coders, strict=True):
            column = left[name]
            if kind == "int":
                codes = column.to_numpy().astype(np.int64) + int((shift or {}).get(name, 0)) - what
                valid &= (codes >= 0) & (codes < size)
            else:
                found = pc.index_in(_arrow(column), value_set=what)
                valid &= ~np.asarray(found.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                codes = np.asarray(pc.fill_null(found, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            key = key * size + np.where(valid, codes, 0)
        if self._slot is not None:
            out = self._slot[key]
        else:
            out = self._index.get_indexer(key)
        out[~valid] = -1
        return out


def take(values: pd.Series | np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values`` at ``rows`` (−1: missing → NaN, as a left merge gives; integers become floats then)."""
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    missing = rows < 0
    if not missing.any():
        return array.take(rows)
    if not len(array):
        return np.full(len(rows), np.nan, dtype=object if array.dtype.kind == "O" else np.float64)
    if array.dtype.kind not in "fO":
        array = array.astype(np.float64)
    out = array.take(np.where(missing, 0, rows))
    out[missing] = np.nan
    return out


def lookup(left: pd.DataFrame, right: pd.DataFrame | KeyIndex, on: Sequence[str], columns: Sequence[str],
           right_on: Sequence[str] | None = None, *, table: pd.DataFrame | None = None,
           shift: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """``right[columns]`` aligned to ``left``'s rows by the keys ``on`` (NaN where absent): the values a
    ``left.merge(right, on=on, how="left")`` would hold, as arrays in ``left``'s order.

    ``right`` may be a :class:`KeyIndex` already built (of ``table``, whose columns are taken);
    ``right_on``: ``right``'s names of the keys when they differ; ``shift``: see :meth:`KeyIndex.rows`.
    """
    if isinstance(right, KeyIndex):
        index, source = right, table
    else:
        index, source = KeyIndex(right, on if right_on is None else right_on), right
    rows = index.rows(left, on, shift=shift)
    return {c: take(source[c], rows) for c in columns}
