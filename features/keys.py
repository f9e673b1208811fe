"""Left lookups on unique keys: what ``left.merge(right, on=keys, how="left")`` returns for ``right``'s
columns, computed from integer codes instead of pandas' merge.

The feature tables join a million candidates a year to grids keyed by (year, country, product),
whose country and product columns are Python strings. pandas' merge factorizes those strings on
both sides in every call (with the frame copies of a merge chain, 9 of the 23 s of a BACI HS6
diversification year). Here each key column is coded once against ``right``'s values
(:meth:`pandas.Index.get_indexer`, one hash probe per row), the codes are combined into one
``int64`` (mixed radix) and the rows are matched on it. ``right``'s keys must be unique (they are
for every grid the features read: a duplicate would have multiplied the candidates); a key
missing from ``right`` gives NaN, as the merge does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.errors import FeatureError


def _codes(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of ``left`` and ``right`` values in ``right``'s distinct values (−1: not in ``right``), and their count."""
    r = right.to_numpy()
    if r.dtype.kind in "iu" and left.dtype.kind in "iu":  # years: an offset, no hashing
        low = int(r.min(initial=0))
        size = int(r.max(initial=0)) - low + 1
        lc = left.to_numpy().astype(np.int64) - low
        return np.where((lc >= 0) & (lc < size), lc, -1), r.astype(np.int64) - low, size
    rc, uniques = pd.factorize(right, use_na_sentinel=False)
    lc = pd.Index(uniques).get_indexer(left.to_numpy())
    return lc.astype(np.int64), rc.astype(np.int64), len(uniques)


def positions(left: pd.DataFrame, right: pd.DataFrame, on: Sequence[str], right_on: Sequence[str] | None = None) -> np.ndarray:
    """For each row of ``left``, the row of ``right`` with the same keys, or −1.

    ``right_on``: ``right``'s names of the keys, when they differ from ``on``. Raises
    :class:`FeatureError` when ``right`` has a key twice.
    """
    right_on = list(on) if right_on is None else list(right_on)
    lkey = np.zeros(len(left), dtype=np.int64)
    rkey = np.zeros(len(right), dtype=np.int64)
    valid = np.ones(len(left), dtype=bool)
    for lname, rname in zip(on, right_on, strict=True):
        lc, rc, size = _codes(left[lname], right[rname])
        valid &= lc >= 0
        lkey = lkey * size + np.maximum(lc, 0)
        rkey = rkey * size + rc
    index = pd.Index(rkey)
    if not index.is_unique:
        raise FeatureError(f"lookup on {right_on}: the right table has duplicate keys; aggregate it first")
    found = index.get_indexer(lkey)
    found[~valid] = -1
    return found


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


def lookup(left: pd.DataFrame, right: pd.DataFrame, on: Sequence[str], columns: Sequence[str],
           right_on: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``right[columns]`` aligned to ``left``'s rows by the keys ``on`` (NaN where absent): the values a
    ``left.merge(right, on=on, how="left")`` would hold, as arrays in ``left``'s order."""
    rows = positions(left, right, on, right_on)
    return {c: take(right[c], rows) for c in columns}
