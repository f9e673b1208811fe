"""How sure is a lift? A bootstrap over queries of the model's metric minus a baseline's.

Queries are the unit of resampling (Efron & Tibshirani 1993; Sakai 2006 for IR evaluation):
the per-query NDCG@10 of both scorers is computed once on the same test queries, then
``n_resamples`` draws of the queries with replacement give the distribution of the mean
difference and of the relative lift. The interval is the percentile interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def interval_table(predictions: pd.DataFrame, group_ids: np.ndarray, *, model: str, baseline: str,
                   n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`bootstrap_difference` of ``score_<model>`` vs ``score_<baseline>`` per test year and overall."""
    rows = []
    years = sorted(predictions["year"].unique())
    for label, mask in [*((str(y), (predictions["year"] == y).to_numpy()) for y in years),
                        ("overall", np.ones(len(predictions), dtype=bool))]:
        part = predictions[mask]
        stats = bootstrap_difference(part["relevance"].to_numpy(), part[f"score_{model}"].to_numpy(),
                                     part[f"score_{baseline}"].to_numpy(), group_ids[mask],
                                     n_resamples=n_resamples, seed=seed)
        rows.append({"test_year": label, "model": model, "baseline": baseline, **stats})
    return pd.DataFrame(rows)
