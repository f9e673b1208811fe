"""Ranking metrics per query group, averaged over queries (Microsoft Recommenders style).

One shared private step (:func:`_ranked`) sorts each query's items by score; each metric is a
thin reduction. Queries with no relevant item are left out of NDCG, MAP and precision (they are
undefined there); AUC-PR pools every candidate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score


def _ranked(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray) -> list[np.ndarray]:
    """Per query: relevance ordered by descending score (ties broken by position, stably)."""
    frame = pd.DataFrame({"g": groups, "s": -np.asarray(score, dtype=float), "r": np.asarray(relevance, dtype=float)})
    frame = frame.sort_values(["g", "s"], kind="stable")
    return [grp.to_numpy() for _, grp in frame.groupby("g", sort=False)["r"]]


def dcg_at_k(relevance: np.ndarray, k: int) -> float:
    """:math:`DCG@k = \\sum_{i=1}^{k} (2^{rel_i} - 1) / \\log_2(i + 1)` (Järvelin & Kekäläinen 2002)."""
    rel = np.asarray(relevance, dtype=float)[:k]
    return float(((2**rel - 1) / np.log2(np.arange(2, rel.size + 2))).sum())


def ndcg_at_k(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, *, k: int = 10) -> float:
    """Mean NDCG@k over queries with at least one relevant item."""
    values = []
    for rel in _ranked(relevance, score, groups):
        ideal = dcg_at_k(np.sort(rel)[::-1], k)
        if ideal > 0:
            values.append(dcg_at_k(rel, k) / ideal)
    return float(np.mean(values)) if values else float("nan")


def precision_at_k(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, *, k: int = 10) -> float:
    """Mean share of relevant items (relevance ≥ 1) among the top k (k items, or fewer if the query is smaller)."""
    values = [float((rel[:k] >= 1).mean()) for rel in _ranked(relevance, score, groups) if (rel >= 1).any()]
    return float(np.mean(values)) if values else float("nan")


def map_at_k(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, *, k: int = 10) -> float:
    """Mean average precision at k: :math:`AP@k = \\sum_{i \\le k} P@i \\cdot rel_i / \\min(R, k)`."""
    values = []
    for rel in _ranked(relevance, score, groups):
        hits = rel >= 1
        if not hits.any():
            continue
        top = hits[:k]
        precision = np.cumsum(top) / np.arange(1, top.size + 1)
        values.append(float((precision * top).sum() / min(hits.sum(), k)))
    return float(np.mean(values)) if values else float("nan")


def auc_pr(relevance: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision) of relevance ≥ 1 vs 0, pooled."""
    y = np.asarray(relevance) >= 1
    if y.all() or not y.any():
        return float("nan")
    return float(average_precision_score(y, np.asarray(score, dtype=float)))


def ranking_report(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """NDCG@5/10/20, MAP@10, P@10 and AUC-PR."""
    return {
        "ndcg_at_5": ndcg_at_k(relevance, score, groups, k=5),
        "ndcg_at_10": ndcg_at_k(relevance, score, groups, k=10),
        "ndcg_at_20": ndcg_at_k(relevance, score, groups, k=20),
        "map_at_10": map_at_k(relevance, score, groups, k=10),
        "precision_at_10": precision_at_k(relevance, score, groups, k=10),
        "auc_pr": auc_pr(relevance, score),
    }
