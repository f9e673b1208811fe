"""Nested, leak-free hyper-parameter search.

The search sees only years whose outcomes are observable before the first test origin T₁:
candidates of year t with t + h ≤ T₁ − 1. Inside that window it runs the same rolling-origin
protocol as the evaluation (:func:`models.evaluation.fold_split`): for each inner test year y (the last
``inner_years`` labelled years of the window), fit on t ≤ y − h − 1, early-stop on y − h, score y.
Each of ``n_trials`` random settings gets the mean NDCG@10 over the inner test years; the best
is used for the outer evaluation. Nothing the outer test years will be judged on is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.errors import ModelError
from models.evaluation import fold_split, labelled_years
from models.metrics import auc_pr, ndcg_at_k
from models.pooling import with_pool
from models.ranker import fit_ranker, query_ids
from models.tasks import Task

SPACE: dict[str, list] = {
    "learning_rate": [0.02, 0.03, 0.05, 0.08, 0.1],
    "num_leaves": [7, 15, 31, 63],
    "min_child_samples": [10, 20, 40, 80, 160],
    "colsample_bytree": [0.3, 0.5, 0.7, 0.9],
    "subsample": [0.6, 0.8, 1.0],
    "reg_lambda": [0.0, 1.0, 5.0, 20.0],
    "lambdarank_truncation_level": [10, 20, 30, 50],
}


@dataclass
class TuningResult:
    params: dict
    trials: pd.DataFrame  # one row per setting: its values and inner NDCG@10 (mean and per year)
    inner_test_years: list[int]
    window_end: int  # last candidate year whose outcome the search may read


def search_window(spec: Task, first_test_year: int) -> int:
    """The last candidate year the search may use: t + h ≤ T₁ − 1."""
    return first_test_year - 1 - spec.horizon


def tune(dataset: pd.DataFrame, spec: Task, params: dict, *, first_test_year: int, n_trials: int, seed: int = 0,
         pool: pd.DataFrame | None = None, inner_years: int = 2, log: Callable[[str], None] = lambda _m: None) -> TuningResult:
    """Random search over :data:`SPACE` on the window before ``first_test_year`` (see the module docstring)."""
    end = search_window(spec, first_test_year)
    window = dataset[dataset["year"] <= end]
    pooled = pool[pool["year"] <= end] if pool is not None and not pool.empty else None
    labelled = labelled_years(window)
    inner = [y for y in labelled if y - spec.horizon - 1 >= (labelled[0] if labelled else 0)][-inner_years:]
    if not inner:
        raise ModelError(f"--tune needs labelled years before {first_test_year} with outcomes observable by "
                         f"{first_test_year - 1} and {spec.horizon + 1} years of history before them; the bank has {labelled}")
    window, pooled = with_pool(window, pooled)
    rng = np.random.default_rng(seed)
    settings = [{}] + [{k: v[int(rng.integers(len(v)))] for k, v in SPACE.items()} for _ in range(max(n_trials - 1, 0))]
    features = spec.feature_columns(window)
    rows = []
    metric = spec.decision_metric  # NDCG@10 within queries, or pooled AP over the inner test year's candidates
    for i, setting in enumerate(settings):
        trial = {**params, **setting}
        scores = {}
        for year in inner:
            fit, valid, test = fold_split(window, pooled, year, spec)
            model = fit_ranker(fit, valid, features, spec, trial, seed=seed)
            score = model.predict(test[features])
            relevance = test["relevance"].to_numpy()
            scores[year] = auc_pr(relevance, score) if metric == "pooled_ap" else \
                ndcg_at_k(relevance, score, query_ids(test, spec), k=10)
        mean = float(np.nanmean(list(scores.values())))
        rows.append({"trial": i, **{k: trial[k] for k in SPACE if k in trial}, f"inner_{metric}": mean,
                     **{f"inner_{metric}_{y}": v for y, v in scores.items()}})
        log(f"tuning trial {i + 1}/{len(settings)}: inner {metric} {mean:.4f}")
    trials = pd.DataFrame(rows)
    best = trials.loc[trials[f"inner_{metric}"].idxmax()]
    chosen = {**params, **settings[int(best["trial"])],
              "tuning_note": (f"nested random search, {len(settings)} settings, seed {seed}: inner test years "
                              f"{inner} (outcomes ≤ {first_test_year - 1}), best inner {metric} {best[f'inner_{metric}']:.4f}")}
    return TuningResult(chosen, trials, inner, end)
