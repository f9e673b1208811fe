"""Training and leak-free evaluation of the LightGBM rankers against the baselines.

Rolling origin: for a test year T, the model is fitted on candidates of years t ≤ T − h − 1 and
early-stopped on year T − h (all outcomes observable at T, since t + h ≤ T), then scores the
candidates of year T, whose outcomes (T + h) it never saw. The baselines score the same
candidates. The model kept for use is refitted on every labelled year with the mean number of
rounds chosen by early stopping across the folds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.resources import release_free_memory, usable_cpus
from models.errors import ModelError
from models.metrics import ndcg_at_k, ranking_report
from models.tasks import Task

SPEC_DIR = Path(__file__).parent / "specs"
MAX_QUERY_ROWS = 10_000  # LightGBM's limit of rows per query
Log = Callable[[str], None]


def load_params(task: str, overrides: dict | None = None) -> dict:
    """The versioned model spec of ``task`` (models/specs/<task>.json) with ``overrides`` applied."""
    path = SPEC_DIR / f"{task}.json"
    if not path.exists():
        raise ModelError(f"no model spec for task {task!r} at {path}")
    params = json.loads(path.read_text())
    for key, value in (overrides or {}).items():
        if key not in params:
            raise ModelError(f"unknown model parameter {key!r} for {task}; known: {sorted(params)}")
        params[key] = _coerce(key, value, params[key])
    return params


def _coerce(key: str, value, default):
    """``value`` (often text from ``--param``) as the type of the spec's ``default``; a clear error otherwise."""
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in {"true", "false", "1", "0"}:
                raise ValueError(value)
            return value.lower() in {"true", "1"}
        if isinstance(default, list | dict):
            return json.loads(value)
        return type(default)(float(value)) if isinstance(default, int) and float(value).is_integer() else type(default)(value)
    except ValueError as exc:
        raise ModelError(f"--param {key}={value!r}: expected a {type(default).__name__} like {default!r}") from exc


POOL = "pool"
"""Column naming the country set a candidate was built for: ``BLOC_POOL`` for the bloc, else a pseudo-bloc id."""
BLOC_POOL = "bloc"


def _group_ids(table: pd.DataFrame, spec: Task) -> np.ndarray:
    """Query ids: the task's group, within each country set when the table is pooled."""
    keys = [POOL, *spec.group] if POOL in table else list(spec.group)
    return table.groupby(keys, sort=False, observed=True).ngroup().to_numpy()


def _query_order(table: pd.DataFrame, spec: Task, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the labelled rows ordered by query, and LightGBM's group sizes.

    Rows without an observed outcome (relevance NaN) are left out; queries over the row limit are
    split at random.
    """
    keep = np.flatnonzero(table["relevance"].notna().to_numpy())
    ids = _group_ids(table, spec)[keep]
    sizes = np.bincount(ids)
    if sizes.max(initial=0) > MAX_QUERY_ROWS:
        rng = np.random.default_rng(seed)
        chunk = np.zeros(len(ids), dtype=np.int64)
        for g in np.flatnonzero(sizes > MAX_QUERY_ROWS):
            rows = np.flatnonzero(ids == g)
            parts = int(np.ceil(rows.size / MAX_QUERY_ROWS))
            chunk[rows] = rng.permutation(np.arange(rows.size) % parts)
        ids = ids * (int(sizes.max() // MAX_QUERY_ROWS) + 2) + chunk
    order = np.argsort(ids, kind="stable")
    _, sizes = np.unique(ids[order], return_counts=True)
    return keep[order], sizes


def _threads() -> int:
    """CPUs this process may use: affinity and the cgroup's quota (:func:`features.resources.usable_cpus`)."""
    return usable_cpus()


def feature_matrix(table: pd.DataFrame, features: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """``table[features]`` (rows ``rows``, in that order) as one float64 matrix in column-major order.

    LightGBM reads a column-major float64 matrix as it is, so this is the only copy of the data a
    fit makes; slicing, reordering and converting a DataFrame would make three (the memory peak
    of a BACI HS6 training). NaN stays NaN (LightGBM's missing value).
    """
    out = np.empty((len(table) if rows is None else len(rows), len(features)), dtype=np.float64, order="F")
    for j, name in enumerate(features):
        column = table[name].to_numpy(dtype=np.float64, na_value=np.nan)
        if rows is None:
            out[:, j] = column
        else:
            np.take(column, rows, out=out[:, j])
    return out


def _dataset(table: pd.DataFrame, features: list[str], spec: Task, seed: int, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    order, sizes = _query_order(table, spec, seed)
    label = table["relevance"].to_numpy()[order].astype(int)
    data = lgb.Dataset(feature_matrix(table, features, order), label, group=sizes, reference=reference,
                       feature_name=list(features), free_raw_data=True, params={"verbose": -1})
    data.pandas_categorical = []  # no categorical features, as a DataFrame of them would record: scoring DataFrames stays as it was
    return data


def validation_curve(model: lgb.Booster, valid: pd.DataFrame, features: list[str], spec: Task, params: dict,
                     *, seed: int = 0) -> np.ndarray:
    """NDCG@``eval_at`` of ``valid`` after each boosting round of ``model``, as LightGBM's own ``ndcg`` metric
    computes it on a validation set (``metric="ndcg"``; LightGBM ``DCGCalculator``).

    Per query, with rows in :func:`_query_order` (the order of the validation ``lgb.Dataset`` of
    :func:`fit_ranker`): sort by raw score, descending, ties kept in row order (a stable sort);
    :math:`DCG@k = \\sum_{i<k} \\mathrm{label\\_gain}[rel_i] / \\log_2(i + 2)`, divided by the ideal DCG@k;
    a query without a relevant row scores 1. The metric is the mean over queries. Each round's raw
    score adds one tree's prediction to the last (one pass over the trees, not one per round).

    A distributed fit needs this: LightGBM evaluates a validation set on each machine's own share,
    and ``lightgbm.dask`` reports one machine's curve, so early stopping on it would look at a part
    of the validation queries.
    """
    order, sizes = _query_order(valid, spec, seed)
    k = int(params["eval_at"])
    gains = np.asarray(params.get("label_gain", 2.0 ** np.arange(31) - 1), dtype=float)
    label_gain = gains[valid["relevance"].to_numpy()[order].astype(int)]
    query = np.repeat(np.arange(sizes.size), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def dcg(rows: np.ndarray) -> np.ndarray:  # rows: a permutation sorted by query
        position = np.arange(rows.size) - starts[query]
        discount = np.where(position < k, 1.0 / np.log2(position + 2.0), 0.0)
        return np.bincount(query, weights=label_gain[rows] * discount, minlength=sizes.size)

    ideal = dcg(np.lexsort((-label_gain, query)))
    x = feature_matrix(valid, features, order)
    raw = np.zeros(len(order))
    curve = np.empty(model.num_trees())
    for i in range(model.num_trees()):
        raw += model.predict(x, start_iteration=i, num_iteration=1, raw_score=True)
        ndcg = np.divide(dcg(np.lexsort((-raw, query))), ideal, out=np.ones(sizes.size), where=ideal > 0)
        curve[i] = ndcg.mean()
    return curve


def booster_params(params: dict, *, seed: int, threads: int) -> dict:
    """LightGBM parameters from a model spec: its booster settings, the seed, determinism and threads."""
    p = {k: v for k, v in params.items() if k not in {"spec_version", "task", "early_stopping_rounds", "eval_at", "tuning_note",
                                                      "n_estimators"}}
    p.update(seed=seed, deterministic=True, force_row_wise=True, num_threads=threads, verbose=-1, metric="ndcg")
    return p


def fit_ranker(train: pd.DataFrame, valid: pd.DataFrame | None, features: list[str], spec: Task, params: dict,
               *, seed: int = 0, n_estimators: int | None = None) -> lgb.Booster:
    """Fit a LambdaRank booster with LightGBM's functional API; with ``valid``, early stopping on NDCG@``eval_at``.

    Only rows with an observed outcome train or validate (the rest are skipped, not copied away first).
    """
    if not train["relevance"].notna().any():
        raise ModelError("no training candidates: need more labelled years before the test year")
    p = booster_params(params, seed=seed, threads=min(_threads(), 2))
    p["eval_at"] = [params["eval_at"]]
    rounds = int(n_estimators if n_estimators is not None else params["n_estimators"])
    release_free_memory()  # the pages earlier folds and the feature build freed, before the matrix
    data = _dataset(train, features, spec, seed)
    kwargs: dict = {}
    if valid is not None and not valid.empty:
        kwargs = {"valid_sets": [_dataset(valid, features, spec, seed, reference=data)], "valid_names": ["valid"],
                  "callbacks": [lgb.early_stopping(params["early_stopping_rounds"], first_metric_only=True, verbose=False)]}
    return lgb.train(p, data, num_boost_round=rounds, **kwargs)


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
    extra: dict = field(default_factory=dict)  # "metrics", "tables", "reliability", "calibration", "seeds"

    def table(self, metric: str = "ndcg_at_10") -> pd.DataFrame:
        """Scorers × (overall, each test year) for one metric."""
        data = {"overall": {k: v[metric] for k, v in self.overall.items()}}
        for fold in self.folds:
            data[str(fold.test_year)] = {k: v[metric] for k, v in fold.metrics.items()}
        return pd.DataFrame(data)

    @property
    def best_baseline(self) -> tuple[str, float]:
        """The heuristic with the highest overall NDCG@10 (the model and its ablation are not heuristics)."""
        scores = {k: v["ndcg_at_10"] for k, v in self.overall.items() if k not in MODEL_SCORERS}
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


def with_pool(dataset: pd.DataFrame, pool: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The bloc's table tagged ``pool = "bloc"`` when a non-empty pool joins it (queries never merge); else as is."""
    if pool is None or pool.empty:
        return dataset, None
    return dataset.assign(**{POOL: BLOC_POOL}), pool


def fold_split(dataset: pd.DataFrame, pool: pd.DataFrame | None, year: int, spec: Task) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(fit, valid, test) for test year T: fit on t ≤ T − h − 1 (bloc and pool), early-stop on the bloc's T − h, test T.

    Every outcome used (t + h) is observable at T; the assertion is the leak guard.
    """
    valid_year = year - spec.horizon
    parts = [dataset] if pool is None else [dataset, pool]
    fit = pd.concat([p[(p["year"] < valid_year) & p["relevance"].notna()] for p in parts], ignore_index=True)
    valid = dataset[(dataset["year"] == valid_year) & dataset["relevance"].notna()]
    test = dataset[dataset["year"] == year].copy()
    if fit.empty or valid.empty:
        raise ModelError(f"test year {year}: no candidates to train on (years < {valid_year}) or validate on ({valid_year})")
    assert (fit["year"] + spec.horizon < year).all() and (valid["year"] + spec.horizon <= year).all()  # leak guard
    return fit, valid, test


def evaluate(dataset: pd.DataFrame, spec: Task, params: dict, *, test_years: list[int] | None = None,
             seed: int = 0, seeds: int = 1, pool: pd.DataFrame | None = None, ablation: bool = True,
             n_resamples: int = 1000, engine=None, log: Log | None = None) -> Evaluation:
    """Rolling-origin evaluation of the model, its ablation and every baseline on the same test candidates.

    ``pool``: extra labelled candidates (other country sets, same features) added to every fold's
    training years, never to validation or test. ``seeds`` > 1 refits each fold with seeds
    ``seed + 1 …`` to report the spread; the reported model is the one of ``seed``. The model's
    lift over the best baseline gets a bootstrap interval over queries (``n_resamples``), and the
    out-of-fold scores fit the probability calibration (:mod:`models.calibration`). ``engine``
    fits and scores the models (:mod:`models.engine`; default this process).
    """
    from models.calibration import cross_fitted_reliability, fit_calibration
    from models.engine import LocalEngine
    from models.uncertainty import interval_table

    log = log or (lambda _msg: None)
    engine = engine or LocalEngine()
    test_years = check_test_years(dataset, spec, test_years)
    dataset, pool = with_pool(dataset, pool)
    features = spec.feature_columns(dataset)
    inputs = [c for c in spec.baseline_inputs if c in features]
    scorers = spec.baselines(seed=seed)
    names = ["model", *([ABLATION] if ablation and inputs else []), *scorers]
    folds, predictions, seed_scores = [], [], {s: [] for s in range(seed + 1, seed + seeds)}
    for year in test_years:
        fit, valid, test = fold_split(dataset, pool, year, spec)
        log(f"test year {year}: fit on {fit['year'].min()}–{fit['year'].max()} ({len(fit):,} candidates"
            f"{f', {int(fit[POOL].ne(BLOC_POOL).sum()):,} pooled' if POOL in fit else ''}), "
            f"early stopping on {year - spec.horizon} ({len(valid):,}), test {len(test):,}")
        model = engine.fit(fit, valid, features, spec, params, seed=seed)
        test["score_model"] = engine.predict(model, test, features)
        if ABLATION in names:
            small = engine.fit(fit, valid, inputs, spec, params, seed=seed)
            test[f"score_{ABLATION}"] = engine.predict(small, test, inputs)
        for other in seed_scores:
            extra = engine.fit(fit, valid, features, spec, params, seed=other)
            seed_scores[other].append(engine.predict(extra, test, features))
        for name, scorer in scorers.items():
            test[f"score_{name}"] = scorer(test)
        groups = _group_ids(test, spec)
        metrics = {name: ranking_report(test["relevance"].to_numpy(), test[f"score_{name}"].to_numpy(), groups) for name in names}
        folds.append(Fold(year, int(model.best_iteration or params["n_estimators"]), len(fit), len(valid), len(test), metrics))
        predictions.append(test)
    pooled = pd.concat(predictions, ignore_index=True)
    groups = _group_ids(pooled, spec)
    overall = {name: ranking_report(pooled["relevance"].to_numpy(), pooled[f"score_{name}"].to_numpy(), groups) for name in names}
    best_iteration = max(1, int(round(np.mean([f.best_iteration for f in folds]))))
    evaluation = Evaluation(spec.name, test_years, folds, overall, pooled, features, params, best_iteration)

    # uncertainty: bootstrap over queries vs the best baseline, and the spread over seeds
    best, _ = evaluation.best_baseline
    intervals = interval_table(pooled, groups, model="model", baseline=best, n_resamples=n_resamples, seed=seed)
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
    evaluation.extra = {"metrics": metrics, "calibration": calibration, "reliability": reliability,
                        "seeds": dict(zip(range(seed, seed + seeds), seed_ndcg, strict=True)),
                        "tables": {"lift_intervals.csv": intervals, "reliability.csv": reliability}}
    return evaluation


def refit(dataset: pd.DataFrame, evaluation: Evaluation, spec: Task, *, seed: int = 0,
          pool: pd.DataFrame | None = None, engine=None) -> lgb.Booster:
    """The model for use: every labelled year (and the pool's), the number of rounds chosen on validation."""
    from models.engine import LocalEngine

    dataset, pool = with_pool(dataset, pool)
    # the fit skips unlabelled rows itself: no copy of the bloc's (possibly many-GB) table
    labelled = dataset if pool is None else pd.concat([p[p["relevance"].notna()] for p in (dataset, pool)], ignore_index=True)
    return (engine or LocalEngine()).fit(labelled, None, evaluation.features, spec, evaluation.params, seed=seed,
                                         n_estimators=evaluation.best_iteration)
