"""Leak-free evaluation of the LightGBM rankers against the baselines, and the refit for use.

Rolling origin: for a test year T, the model is fitted on candidates of years t ≤ T − h − 1 and
early-stopped on year T − h (all outcomes observable at T, since t + h ≤ T), then scores the
candidates of year T, whose outcomes (T + h) it never saw. The baselines score the same
candidates. The model kept for use is refitted on every labelled year with the mean number of
rounds chosen by early stopping across the folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import calibration_quality, cross_fitted_reliability, fit_calibration
from models.engine import Engine, LocalEngine
from models.errors import ModelError
from models.fit_cache import FitCache, fit_with
from models.metrics import ndcg_at_k, ranking_report
from models.pooling import with_pool
from models.ranker import Log, query_ids
from models.tasks import BLOC_POOL, POOL, Task
from models.uncertainty import interval_table, pooled_interval_table

ABLATION = "lgbm_on_baseline_inputs"
"""The same LightGBM ranker trained on the baselines' input columns only: what the model adds beyond them."""
MODEL_SCORERS = ("model", ABLATION)


@dataclass
class Fold:
    test_year: int
    best_iteration: int
    n_train: int
    n_valid: int
    n_test: int
    metrics: dict[str, dict[str, float]]  # "model", the ablation and each baseline → report


@dataclass
class Evaluation:
    task: str
    test_years: list[int]
    folds: list[Fold]
    overall: dict[str, dict[str, float]]
    predictions: pd.DataFrame  # test candidates with relevance, model score and baseline scores
    features: list[str]
    params: dict
    best_iteration: int
    extra: dict = field(default_factory=dict)  # "metrics", "tables", "reliability", "calibration", "seeds", "panels"
    decision_metric: str = "ndcg_at_10"  # what the best baseline, the lift and the champion are judged on

    def table(self, metric: str = "ndcg_at_10") -> pd.DataFrame:
        """Scorers × (overall, each test year) for one metric."""
        data = {"overall": {k: v[metric] for k, v in self.overall.items()}}
        for fold in self.folds:
            data[str(fold.test_year)] = {k: v[metric] for k, v in fold.metrics.items()}
        return pd.DataFrame(data)

    @property
    def best_baseline(self) -> tuple[str, float]:
        """The heuristic with the highest overall decision metric (the model and its ablation are not heuristics)."""
        return best_heuristic(self.overall, self.decision_metric)


def best_heuristic(overall: dict[str, dict[str, float]], metric: str) -> tuple[str, float]:
    """The baseline of ``overall`` (scorer → report) with the highest ``metric``, NaN counting lowest."""
    scores = {k: v[metric] for k, v in overall.items() if k not in MODEL_SCORERS}
    name = max(scores, key=lambda k: -np.inf if np.isnan(scores[k]) else scores[k])
    return name, scores[name]


def labelled_years(dataset: pd.DataFrame) -> list[int]:
    return sorted(int(y) for y in dataset.loc[dataset["relevance"].notna(), "year"].unique())


def check_test_years(dataset: pd.DataFrame, spec: Task, test_years: list[int] | None) -> list[int]:
    """The test years (default: the last two labelled), checked to have observable outcomes."""
    labelled = labelled_years(dataset)
    if len(labelled) < spec.horizon + 3 and test_years is None:
        raise ModelError(
            f"only {len(labelled)} labelled year(s) ({labelled}) with horizon {spec.horizon}: need at least "
            f"{spec.horizon + 3} (training, validation and test years). Use a shorter --horizon or more years of trade.")
    test_years = sorted(test_years or labelled[-2:])
    missing = [y for y in test_years if y not in labelled]
    if missing:
        raise ModelError(f"test year(s) {missing} have no observable outcome (need year + {spec.horizon} in the bank); labelled years: {labelled}")
    return test_years


def fold_split(dataset: pd.DataFrame, pool: pd.DataFrame | None, year: int, spec: Task) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(fit, valid, test) for test year T: fit on t ≤ T − h − k (bloc and pool), early-stop on the bloc's
    years T − h − k + 1 … T − h (k = ``spec.validation_years``, default 1; fewer when a longer window would
    leave no year to fit on; with ``spec.validate_on_pool`` the pool's candidates of those years too), test T.

    Every outcome used (t + h) is observable at T; the assertion is the leak guard.
    """
    last_valid = year - spec.horizon
    parts = [dataset] if pool is None else [dataset, pool]
    first = min(int(p.loc[p["relevance"].notna(), "year"].min()) for p in parts if p["relevance"].notna().any()) \
        if any(p["relevance"].notna().any() for p in parts) else last_valid
    valid_year = max(last_valid - spec.validation_years + 1, min(first + 1, last_valid))
    fit = pd.concat([p[(p["year"] < valid_year) & p["relevance"].notna()] for p in parts], ignore_index=True)
    valid = pd.concat([p[p["year"].between(valid_year, last_valid) & p["relevance"].notna()]
                       for p in (parts if spec.validate_on_pool else [dataset])], ignore_index=True)
    test = dataset[dataset["year"] == year].copy()
    if fit.empty or valid.empty:
        raise ModelError(f"test year {year}: no candidates to train on (years < {valid_year}) or validate on ({valid_year})")
    assert (fit["year"] + spec.horizon < year).all() and (valid["year"] + spec.horizon <= year).all()  # leak guard
    return fit, valid, test


def evaluate(dataset: pd.DataFrame, spec: Task, params: dict, *, test_years: list[int] | None = None,
             seed: int = 0, seeds: int = 1, pool: pd.DataFrame | None = None, ablation: bool = True,
             n_resamples: int = 1000, engine: Engine | None = None, log: Log | None = None,
             panels: dict[str, pd.DataFrame] | None = None, fits: FitCache | None = None) -> Evaluation:
    """Rolling-origin evaluation of the model, its ablation and every baseline on the same test candidates.

    ``pool``: extra labelled candidates (other country sets, same features) added to every fold's
    training years, never to validation or test. ``seeds`` > 1 refits each fold with seeds
    ``seed + 1 …`` to report the spread; the reported model is the one of ``seed``. The model's
    lift over the best baseline gets a bootstrap interval over queries (``n_resamples``), and the
    out-of-fold scores fit the probability calibration (:mod:`models.calibration`). ``engine``
    fits and scores the models (:mod:`models.engine`; default this process). ``panels``: other test
    populations (name → labelled candidates with the same features, e.g. the world's largest
    exporters), scored in each test year by the same fold models and baselines and reported beside
    the bloc's (``extra["panels"]``); they never train or early-stop anything. ``fits``: where a fold
    whose rows and parameters are unchanged since an earlier training takes its boosters from
    (:mod:`models.fit_cache`; the same trees, not fit again).
    """
    log = log or (lambda _msg: None)
    engine = engine or LocalEngine()
    test_years = check_test_years(dataset, spec, test_years)
    dataset, pool = with_pool(dataset, pool)
    features = spec.feature_columns(dataset)
    inputs = [c for c in spec.baseline_inputs if c in features]
    scorers = spec.baselines(seed=seed)
    names = ["model", *([ABLATION] if ablation and inputs else []), *scorers]
    folds, predictions, seed_scores = [], [], {s: [] for s in range(seed + 1, seed + seeds)}
    panel_predictions: dict[str, list[pd.DataFrame]] = {name: [] for name in panels or {}}
    for year in test_years:
        fit, valid, test = fold_split(dataset, pool, year, spec)
        log(f"test year {year}: fit on {fit['year'].min()}–{fit['year'].max()} ({len(fit):,} candidates"
            f"{f', {int(fit[POOL].ne(BLOC_POOL).sum()):,} pooled' if POOL in fit else ''}), "
            f"early stopping on {'–'.join(map(str, sorted({int(valid['year'].min()), int(valid['year'].max())})))} ({len(valid):,}), test {len(test):,}")
        model = fit_with(fits, engine, fit, valid, features, spec, params, seed=seed)
        test["score_model"] = engine.predict(model, test, features)
        if ABLATION in names:
            small = fit_with(fits, engine, fit, valid, inputs, spec, params, seed=seed)
            test[f"score_{ABLATION}"] = engine.predict(small, test, inputs)
        for other in seed_scores:
            extra = fit_with(fits, engine, fit, valid, features, spec, params, seed=other)
            seed_scores[other].append(engine.predict(extra, test, features))
        for name, scorer in scorers.items():
            test[f"score_{name}"] = scorer(test)
        for panel, table in (panels or {}).items():
            part = table[(table["year"] == year) & table["relevance"].notna()].copy()
            part["score_model"] = engine.predict(model, part, features)
            if ABLATION in names:
                part[f"score_{ABLATION}"] = engine.predict(small, part, inputs)
            for name, scorer in scorers.items():
                part[f"score_{name}"] = scorer(part)
            panel_predictions[panel].append(part)
        groups = query_ids(test, spec)
        metrics = {name: report(test, name, groups) for name in names}
        folds.append(Fold(year, int(model.best_iteration or params["n_estimators"]), len(fit), len(valid), len(test), metrics))
        predictions.append(test)
    pooled = pd.concat(predictions, ignore_index=True)
    groups = query_ids(pooled, spec)
    overall = {name: report(pooled, name, groups) for name in names}
    best_iteration = max(1, int(round(np.mean([f.best_iteration for f in folds]))))
    evaluation = Evaluation(spec.name, test_years, folds, overall, pooled, features, params, best_iteration,
                            decision_metric=spec.decision_metric)

    # uncertainty: bootstrap over queries (or, for a pooled metric, over countries) vs the best baseline
    best, _ = evaluation.best_baseline
    intervals = lift_intervals(pooled, groups, spec, best, n_resamples=n_resamples, seed=seed)
    seed_ndcg = [overall["model"]["ndcg_at_10"]] + [
        ndcg_at_k(pooled["relevance"].to_numpy(), np.concatenate(v), groups, k=10) for v in seed_scores.values()]
    total = intervals[intervals["test_year"] == "overall"].iloc[0]
    metrics = {"lift_vs_best_baseline": total["lift"], "lift_ci_low": total["lift_low"], "lift_ci_high": total["lift_high"],
               "ndcg_at_10_diff_vs_best_baseline": total["diff"], "ndcg_at_10_diff_ci_low": total["diff_low"],
               "ndcg_at_10_diff_ci_high": total["diff_high"], "n_test_queries": total["queries"],
               "seed_ndcg_at_10_mean": float(np.mean(seed_ndcg)), "seed_ndcg_at_10_std": float(np.std(seed_ndcg)),
               "seed_ndcg_at_10_min": float(np.min(seed_ndcg)), "seed_ndcg_at_10_max": float(np.max(seed_ndcg)),
               "seeds": float(len(seed_ndcg))}
    calibration = fit_calibration(pooled["score_model"].to_numpy(), pooled["relevance"].to_numpy())
    reliability = cross_fitted_reliability(pooled["score_model"].to_numpy(), pooled["relevance"].to_numpy(), pooled["year"].to_numpy())
    metrics.update(calibration_quality(pooled["score_model"].to_numpy(), pooled["relevance"].to_numpy(), pooled["year"].to_numpy()))
    evaluation.extra = {"metrics": metrics, "calibration": calibration, "reliability": reliability,
                        "seeds": dict(zip(range(seed, seed + seeds), seed_ndcg, strict=True)),
                        "tables": {"lift_intervals.csv": intervals, "reliability.csv": reliability}, "panels": {}}
    for panel, parts in panel_predictions.items():
        table = pd.concat(parts, ignore_index=True)
        panel_groups = query_ids(table, spec)
        panel_overall = {name: report(table, name, panel_groups) for name in names}
        panel_best, _ = best_heuristic(panel_overall, spec.decision_metric)
        panel_intervals = lift_intervals(table, panel_groups, spec, panel_best, n_resamples=n_resamples, seed=seed)
        total = panel_intervals[panel_intervals["test_year"] == "overall"].iloc[0]
        evaluation.extra["panels"][panel] = {"overall": panel_overall, "best_baseline": panel_best, "intervals": panel_intervals,
                                             "queries": int(total["queries"]), "candidates": len(table)}
        evaluation.extra["tables"][f"{panel}_lift_intervals.csv"] = panel_intervals
        metrics.update({f"{panel}_{scorer}_test_{k}": v for scorer, rep in panel_overall.items()
                        for k, v in rep.items() if k in ("pooled_ap", "pooled_auc", "ndcg_at_10")})
        metrics.update({f"{panel}_lift_vs_best_baseline": total["lift"], f"{panel}_lift_ci_low": total["lift_low"],
                        f"{panel}_lift_ci_high": total["lift_high"], f"{panel}_test_queries": total["queries"]})
        log(f"{panel}: {len(table):,} test candidates in {int(total['queries'])} countries")
    return evaluation


def report(table: pd.DataFrame, scorer: str, groups: np.ndarray) -> dict[str, float]:
    """:func:`models.metrics.ranking_report` of ``score_<scorer>`` on ``table``, with the per-year pooled metrics."""
    return ranking_report(table["relevance"].to_numpy(), table[f"score_{scorer}"].to_numpy(), groups, table["year"].to_numpy())


def lift_intervals(table: pd.DataFrame, groups: np.ndarray, spec: Task, baseline: str, *, n_resamples: int,
                   seed: int) -> pd.DataFrame:
    """The model's lift over ``baseline`` on the task's decision metric with a 95 % bootstrap interval: over
    queries for NDCG@10, over countries (``spec.group[0]``, all their candidates together) for pooled AP."""
    if spec.decision_metric == "pooled_ap":
        return pooled_interval_table(table, spec.group[0], model="model", baseline=baseline, n_resamples=n_resamples, seed=seed)
    return interval_table(table, groups, model="model", baseline=baseline, n_resamples=n_resamples, seed=seed)


def refit(dataset: pd.DataFrame, evaluation: Evaluation, spec: Task, *, seed: int = 0,
          pool: pd.DataFrame | None = None, engine: Engine | None = None, fits: FitCache | None = None) -> lgb.Booster:
    """The model for use: every labelled year (and the pool's), the number of rounds chosen on validation."""
    dataset, pool = with_pool(dataset, pool)
    engine = engine or LocalEngine()
    # the fit skips unlabelled rows itself and reads the bloc's and the world's tables in place (a
    # concatenated copy of the world's labelled rows was 3 GB of the 11.9 GB peak at BACI HS6 width)
    if pool is None:
        train = dataset
    elif engine.distributed:
        train = pd.concat([p[p["relevance"].notna()] for p in (dataset, pool)], ignore_index=True)
    else:
        train = [dataset, pool]
    # a retrain of an unchanged bank refits on the same rows: with ``fits``, the same booster, not fit again
    return fit_with(fits, engine, train, None, evaluation.features, spec, evaluation.params, seed=seed,
                    n_estimators=evaluation.best_iteration)
