"""How sure is a lift? A bootstrap over queries of the model's metric minus a baseline's.

Queries are the unit of resampling (Efron & Tibshirani 1993; Sakai 2006 for IR evaluation):
the per-query NDCG@10 of both scorers is computed once on the same test queries, then
``n_resamples`` draws of the queries with replacement give the distribution of the mean
difference and of the relative lift. The interval is the percentile interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from models.metrics import per_query


def bootstrap_difference(relevance: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, groups: np.ndarray, *,
                         metric: str = "ndcg_at_10", n_resamples: int = 1000, level: float = 0.95,
                         seed: int = 0) -> dict[str, float]:
    """Mean of ``metric``(a) − ``metric``(b) over queries, with a bootstrap percentile interval.

    Returns ``diff``, ``diff_low``, ``diff_high``, ``lift`` (mean a / mean b − 1), ``lift_low``,
    ``lift_high``, ``p_not_above`` (share of resamples with a difference ≤ 0) and ``queries``.
    """
    a = per_query(relevance, score_a, groups, metric)
    b = per_query(relevance, score_b, groups, metric).reindex(a.index)
    out = {"queries": float(len(a))}
    if len(a) == 0:
        return {**out, **dict.fromkeys(("diff", "diff_low", "diff_high", "lift", "lift_low", "lift_high", "p_not_above"), float("nan"))}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(n_resamples, len(a)))
    va, vb = a.to_numpy()[draws].mean(axis=1), b.to_numpy()[draws].mean(axis=1)
    diff = va - vb
    lift = np.divide(va, vb, out=np.full_like(va, np.nan), where=vb > 0) - 1
    tail = (1 - level) / 2 * 100
    mean_b = float(b.mean())
    return {**out, "diff": float(a.mean() - mean_b), "diff_low": float(np.percentile(diff, tail)),
            "diff_high": float(np.percentile(diff, 100 - tail)),
            "lift": float(a.mean() / mean_b - 1) if mean_b > 0 else float("nan"),
            "lift_low": float(np.nanpercentile(lift, tail)), "lift_high": float(np.nanpercentile(lift, 100 - tail)),
            "p_not_above": float((diff <= 0).mean())}


def _per_year(predictions: pd.DataFrame, stats) -> pd.DataFrame:
    """``stats(mask)`` for each test year's rows and for all of them (``test_year`` = "overall")."""
    years = sorted(predictions["year"].unique())
    return pd.DataFrame([{"test_year": label, **stats(mask)} for label, mask in
                         [*((str(y), (predictions["year"] == y).to_numpy()) for y in years),
                          ("overall", np.ones(len(predictions), dtype=bool))]])


def interval_table(predictions: pd.DataFrame, group_ids: np.ndarray, *, model: str, baseline: str,
                   n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`bootstrap_difference` of ``score_<model>`` vs ``score_<baseline>`` per test year and overall."""
    def stats(mask: np.ndarray) -> dict:
        part = predictions[mask]
        return {"model": model, "baseline": baseline, **bootstrap_difference(
            part["relevance"].to_numpy(), part[f"score_{model}"].to_numpy(), part[f"score_{baseline}"].to_numpy(),
            group_ids[mask], n_resamples=n_resamples, seed=seed)}
    return _per_year(predictions, stats)


def bootstrap_pooled(relevance: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, clusters: np.ndarray,
                     years: np.ndarray, *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Pooled average precision (mean over years, :func:`models.metrics.pooled_by_year`) of a minus b, with a
    bootstrap over ``clusters`` (countries): each draw takes countries with replacement, all their
    candidates of every year, as sample weights. Same keys as :func:`bootstrap_difference`;
    ``queries`` counts the clusters.
    """
    relevance, years = np.asarray(relevance), np.asarray(years)
    y = relevance >= 1
    a, b = (np.where(np.isfinite(s := np.asarray(v, dtype=float)), s, -np.inf) for v in (score_a, score_b))
    a, b = (np.where(np.isneginf(v), np.nanmin(v[np.isfinite(v)], initial=0.0) - 1.0, v) for v in (a, b))
    codes, uniques = pd.factorize(pd.Series(clusters))
    year_masks = [years == t for t in np.unique(years)]

    def pooled(score: np.ndarray, weight: np.ndarray) -> float:
        values = []
        for mask in year_masks:
            w, t = weight[mask], y[mask]
            if (w[t] > 0).any() and (w[~t] > 0).any():
                values.append(average_precision_score(t, score[mask], sample_weight=w))
        return float(np.mean(values)) if values else float("nan")

    ones = np.ones(len(y))
    pa, pb = pooled(a, ones), pooled(b, ones)
    rng = np.random.default_rng(seed)
    va, vb = np.empty(n_resamples), np.empty(n_resamples)
    for i in range(n_resamples):
        weight = np.bincount(rng.integers(0, len(uniques), len(uniques)), minlength=len(uniques))[codes].astype(float)
        va[i], vb[i] = pooled(a, weight), pooled(b, weight)
    diff, lift = va - vb, np.divide(va, vb, out=np.full_like(va, np.nan), where=vb > 0) - 1
    tail = (1 - level) / 2 * 100
    return {"queries": float(len(uniques)), "diff": pa - pb, "diff_low": float(np.nanpercentile(diff, tail)),
            "diff_high": float(np.nanpercentile(diff, 100 - tail)), "lift": pa / pb - 1 if pb > 0 else float("nan"),
            "lift_low": float(np.nanpercentile(lift, tail)), "lift_high": float(np.nanpercentile(lift, 100 - tail)),
            "p_not_above": float(np.nanmean(diff <= 0))}


def pooled_interval_table(predictions: pd.DataFrame, cluster: str, *, model: str, baseline: str,
                          n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`bootstrap_pooled` of ``score_<model>`` vs ``score_<baseline>`` per test year and overall."""
    def stats(mask: np.ndarray) -> dict:
        part = predictions[mask]
        return {"model": model, "baseline": baseline, "metric": "pooled_ap", **bootstrap_pooled(
            part["relevance"].to_numpy(), part[f"score_{model}"].to_numpy(), part[f"score_{baseline}"].to_numpy(),
            part[cluster].to_numpy(), part["year"].to_numpy(), n_resamples=n_resamples, seed=seed)}
    return _per_year(predictions, stats)
