"""Tie-aware ranking metrics per query group, averaged over queries (Microsoft Recommenders style).

Scores that tie are not ordered by accident of input order: every metric is the **expected**
value over all orders of the tied items, which each tied block occupies with equal probability
(McSherry & Najork 2008; sklearn's ``ndcg_score(ignore_ties=False)`` for NDCG). Missing scores
(NaN, ±inf) all tie with each other below every finite score, so they rank last and never crash.

One shared private step (:func:`_blocks`) sorts each query and finds its tied blocks; each metric
is a thin reduction over rows. Queries without a relevant item (relevance ≥ 1) are left out of
NDCG, MAP and precision, where they are undefined; AUC-PR pools every candidate.
:func:`per_query` returns the per-query values, the unit of the bootstrap in
:mod:`models.uncertainty`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

METRICS = ("ndcg_at_5", "ndcg_at_10", "ndcg_at_20", "map_at_10", "precision_at_10", "auc_pr", "pooled_ap", "pooled_auc")


def _finite_scores(score: np.ndarray) -> np.ndarray:
    """Missing (NaN, ±inf) → one value below every finite score, so they tie among themselves, last."""
    s = np.asarray(score, dtype=float)
    finite = np.isfinite(s)
    floor = (s[finite].min() - 1.0) if finite.any() else 0.0
    return np.where(finite, s, floor)


def _blocks(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray) -> pd.DataFrame:
    """Rows sorted by query and descending score, with each row's tied block.

    Columns: ``g`` query, ``r`` relevance, ``pos`` 0-based position in the query, ``n`` query size,
    ``start``/``size`` of the row's tied block, ``gain_mean``/``hit_mean`` the block's mean gain
    :math:`2^{r} - 1` and mean hit :math:`[r \\ge 1]`, ``hits_before`` hits in earlier blocks, and
    ``hits`` the query's number of relevant items.
    """
    rel = np.asarray(relevance, dtype=float)
    frame = pd.DataFrame({"g": pd.factorize(np.asarray(groups))[0], "s": _finite_scores(score), "r": rel})
    frame = frame.sort_values(["g", "s"], ascending=[True, False], kind="stable").reset_index(drop=True)
    frame["pos"] = frame.groupby("g").cumcount()
    frame["n"] = frame.groupby("g")["r"].transform("size")
    block = frame.groupby(["g", "s"], sort=False)
    frame["start"] = block["pos"].transform("min")
    frame["size"] = block["pos"].transform("size")
    frame["gain"] = 2.0 ** frame["r"] - 1
    frame["hit"] = (frame["r"] >= 1).astype(float)
    frame["gain_mean"] = block["gain"].transform("mean")
    frame["hit_mean"] = block["hit"].transform("mean")
    hits_in_block = block["hit"].transform("sum")
    frame["hits_before"] = frame.groupby("g")["hit"].cumsum() - frame["hit"]
    # hits before the block = hits before its first row: cumulative hits at start, same within block
    frame["hits_before"] = frame.groupby(["g", "start"])["hits_before"].transform("min")
    frame["hits_block"] = hits_in_block
    frame["hits"] = frame.groupby("g")["hit"].transform("sum")
    return frame


def _discount(pos: np.ndarray, k: int) -> np.ndarray:
    return np.where(pos < k, 1.0 / np.log2(pos + 2.0), 0.0)


def dcg_at_k(relevance: np.ndarray, k: int) -> float:
    """:math:`DCG@k = \\sum_{i=1}^{k} (2^{rel_i} - 1) / \\log_2(i + 1)` of relevance already in ranked order
    (Järvelin & Kekäläinen 2002)."""
    rel = np.asarray(relevance, dtype=float)[:k]
    return float(((2**rel - 1) / np.log2(np.arange(2, rel.size + 2))).sum())


def _ndcg(frame: pd.DataFrame, k: int) -> pd.Series:
    """Expected DCG@k over tied orders / ideal DCG@k, per query with a relevant item."""
    dcg = (frame["gain_mean"] * _discount(frame["pos"].to_numpy(), k)).groupby(frame["g"]).sum()
    ideal = frame[["g", "gain"]].sort_values(["g", "gain"], ascending=[True, False])
    ideal["pos"] = ideal.groupby("g").cumcount()
    idcg = (ideal["gain"] * _discount(ideal["pos"].to_numpy(), k)).groupby(ideal["g"]).sum()
    keep = idcg > 0
    return (dcg[keep] / idcg[keep]).rename("value")


def _precision(frame: pd.DataFrame, k: int) -> pd.Series:
    """Expected share of relevant items in the top ``min(k, n)`` (n = query size), per query with a hit.

    For a query shorter than k the denominator is its size n: P@k then asks how many of the items
    shown are relevant, and a query whose every item is relevant scores 1.
    """
    top = frame["hit_mean"] * (frame["pos"] < k)
    value = top.groupby(frame["g"]).sum() / np.minimum(frame.groupby("g")["n"].first(), k)
    return value[frame.groupby("g")["hits"].first() > 0].rename("value")


def _average_precision(frame: pd.DataFrame, k: int) -> pd.Series:
    """Expected AP@k :math:`= \\sum_{i \\le k} P@i \\cdot rel_i / \\min(R, k)` over tied orders.

    For position i in a tied block of size m with h hits, starting at s after H earlier hits:
    :math:`E[rel_i \\cdot hits@i] = (h/m)\\,(H + 1 + (i - s)(h - 1)/(m - 1))`.
    """
    m = frame["size"].to_numpy(dtype=float)
    h = frame["hits_block"].to_numpy(dtype=float)
    within = (frame["pos"] - frame["start"]).to_numpy(dtype=float)
    others = np.divide(h - 1, m - 1, out=np.zeros_like(m), where=m > 1)
    term = (h / m) * (frame["hits_before"].to_numpy() + 1 + within * others) / (frame["pos"].to_numpy() + 1)
    term = np.where(frame["pos"].to_numpy() < k, term, 0.0)
    hits = frame.groupby("g")["hits"].first()
    value = pd.Series(term).groupby(frame["g"]).sum() / np.minimum(hits, k)
    return value[hits > 0].rename("value")


def per_query(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, metric: str) -> pd.Series:
    """Per-query values of ``metric`` (``ndcg_at_10``, ``map_at_10``, ``precision_at_10``, ...), indexed by query.

    The index is the query's code in order of first appearance of ``groups``.
    """
    name, _, k = metric.rpartition("_at_")
    frame = _blocks(relevance, score, groups)
    reducer = {"ndcg": _ndcg, "map": _average_precision, "precision": _precision}.get(name)
    if reducer is None:
        raise ValueError(f"unknown per-query metric {metric!r}; use ndcg_at_K, map_at_K or precision_at_K")
    return reducer(frame, int(k))


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")


def ndcg_at_k(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, *, k: int = 10) -> float:
    """Mean expected NDCG@k over queries with at least one relevant item (gains :math:`2^{rel} - 1`)."""
    return _mean(per_query(relevance, score, groups, f"ndcg_at_{k}"))


def precision_at_k(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, *, k: int = 10) -> float:
    """Mean expected share of relevant items (relevance ≥ 1) in the top ``min(k, n)``; see :func:`_precision`."""
    return _mean(per_query(relevance, score, groups, f"precision_at_{k}"))


def map_at_k(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, *, k: int = 10) -> float:
    """Mean expected average precision at k; see :func:`_average_precision`."""
    return _mean(per_query(relevance, score, groups, f"map_at_{k}"))


def auc_pr(relevance: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision) of relevance ≥ 1 vs 0, pooled.

    Tied scores form one threshold (no order among them is assumed); missing scores rank last.
    """
    y = np.asarray(relevance) >= 1
    if y.all() or not y.any():
        return float("nan")
    return float(average_precision_score(y, _finite_scores(score)))


def roc_auc(relevance: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of relevance ≥ 1 vs 0, pooled; ties count one half; missing scores rank last."""
    y = np.asarray(relevance) >= 1
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, _finite_scores(score)))


def pooled_by_year(relevance: np.ndarray, score: np.ndarray, years: np.ndarray, metric=None) -> float:
    """The mean over test years of a pooled metric (default :func:`auc_pr`) computed over all candidates of each year.

    Pooled figures compare candidates across queries, as a list that mixes countries is read; with
    small queries and rare positives they are steadier than per-query means. Years without both a
    positive and a negative are left out.
    """
    metric = metric or auc_pr
    relevance, score, years = np.asarray(relevance), np.asarray(score), np.asarray(years)
    values = [metric(relevance[years == y], score[years == y]) for y in np.unique(years)]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def ranking_report(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray,
                   years: np.ndarray | None = None) -> dict[str, float]:
    """NDCG@5/10/20, MAP@10, P@10 and AUC-PR; with ``years``, also the per-year pooled AP and ROC AUC
    (:func:`pooled_by_year`)."""
    frame = _blocks(relevance, score, groups)
    pooled = {} if years is None else {"pooled_ap": pooled_by_year(relevance, score, years),
                                       "pooled_auc": pooled_by_year(relevance, score, years, roc_auc)}
    return {**pooled,
        "ndcg_at_5": _mean(_ndcg(frame, 5)),
        "ndcg_at_10": _mean(_ndcg(frame, 10)),
        "ndcg_at_20": _mean(_ndcg(frame, 20)),
        "map_at_10": _mean(_average_precision(frame, 10)),
        "precision_at_10": _mean(_precision(frame, 10)),
        "auc_pr": auc_pr(relevance, score),
    }
