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

from models.errors import ModelError
from models.metrics import ranking_report
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


def _group_ids(table: pd.DataFrame, spec: Task) -> np.ndarray:
    return table.groupby(list(spec.group), sort=False, observed=True).ngroup().to_numpy()


def _train_groups(table: pd.DataFrame, spec: Task, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows ordered by query with LightGBM group sizes; queries over the row limit are split at random."""
    ids = _group_ids(table, spec)
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
    return table.iloc[order], sizes


def fit_ranker(train: pd.DataFrame, valid: pd.DataFrame | None, features: list[str], spec: Task, params: dict,
               *, seed: int = 0, n_estimators: int | None = None) -> lgb.LGBMRanker:
    """Fit an LGBMRanker; with ``valid``, early stopping on validation NDCG@``eval_at``."""
    if train.empty:
        raise ModelError("no training candidates: need more labelled years before the test year")
    p = {k: v for k, v in params.items() if k not in {"spec_version", "task", "early_stopping_rounds", "eval_at", "tuning_note"}}
    if n_estimators is not None:
        p["n_estimators"] = n_estimators
    model = lgb.LGBMRanker(**p, random_state=seed, deterministic=True, force_row_wise=True, n_jobs=2, verbose=-1)
    train, sizes = _train_groups(train, spec, seed)
    fit_args: dict = {}
    if valid is not None and not valid.empty:
        valid, vsizes = _train_groups(valid, spec, seed)
        fit_args = {"eval_set": [(valid[features], valid["relevance"].astype(int))], "eval_group": [vsizes],
                    "eval_at": [params["eval_at"]],
                    "callbacks": [lgb.early_stopping(params["early_stopping_rounds"], verbose=False)]}
    model.fit(train[features], train["relevance"].astype(int), group=sizes, **fit_args)
    return model


@dataclass
class Fold:
    test_year: int
    best_iteration: int
    n_train: int
    n_valid: int
    n_test: int
    metrics: dict[str, dict[str, float]]  # "model" and each baseline → report


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
    extra: dict = field(default_factory=dict)

    def table(self, metric: str = "ndcg_at_10") -> pd.DataFrame:
        """Scorers × (overall, each test year) for one metric."""
        data = {"overall": {k: v[metric] for k, v in self.overall.items()}}
        for fold in self.folds:
            data[str(fold.test_year)] = {k: v[metric] for k, v in fold.metrics.items()}
        return pd.DataFrame(data)

    @property
    def best_baseline(self) -> tuple[str, float]:
        scores = {k: v["ndcg_at_10"] for k, v in self.overall.items() if k != "model"}
        name = max(scores, key=lambda k: -np.inf if np.isnan(scores[k]) else scores[k])
        return name, scores[name]


def labelled_years(dataset: pd.DataFrame) -> list[int]:
    return sorted(int(y) for y in dataset.loc[dataset["relevance"].notna(), "year"].unique())


def evaluate(dataset: pd.DataFrame, spec: Task, params: dict, *, test_years: list[int] | None = None,
             seed: int = 0, log: Log | None = None) -> Evaluation:
    """Rolling-origin evaluation of the model and every baseline on the same test candidates."""
    log = log or (lambda _msg: None)
    labelled = labelled_years(dataset)
    if len(labelled) < spec.horizon + 3 and test_years is None:
        raise ModelError(
            f"only {len(labelled)} labelled year(s) ({labelled}) with horizon {spec.horizon}: need at least "
            f"{spec.horizon + 3} (training, validation and test years). Use a shorter --horizon or more years of trade.")
    test_years = sorted(test_years or labelled[-2:])
    missing = [y for y in test_years if y not in labelled]
    if missing:
        raise ModelError(f"test year(s) {missing} have no observable outcome (need year + {spec.horizon} in the bank); labelled years: {labelled}")
    features = spec.feature_columns(dataset)
    scorers = spec.baselines(seed=seed)
    folds, predictions = [], []
    for year in test_years:
        valid_year = year - spec.horizon
        fit = dataset[(dataset["year"] < valid_year) & dataset["relevance"].notna()]
        valid = dataset[(dataset["year"] == valid_year) & dataset["relevance"].notna()]
        test = dataset[dataset["year"] == year].copy()
        if fit.empty or valid.empty:
            raise ModelError(f"test year {year}: no candidates to train on (years < {valid_year}) or validate on ({valid_year})")
        assert (fit["year"] + spec.horizon < year).all() and (valid["year"] + spec.horizon <= year).all()  # leak guard
        log(f"test year {year}: fit on {fit['year'].min()}–{fit['year'].max()} ({len(fit):,} candidates), "
            f"early stopping on {valid_year} ({len(valid):,}), test {len(test):,}")
        model = fit_ranker(fit, valid, features, spec, params, seed=seed)
        test["score_model"] = model.predict(test[features])
        for name, scorer in scorers.items():
            test[f"score_{name}"] = scorer(test)
        groups = _group_ids(test, spec)
        metrics = {name: ranking_report(test["relevance"].to_numpy(), test[f"score_{name}"].to_numpy(), groups)
                   for name in ["model", *scorers]}
        best = int(model.best_iteration_ or params["n_estimators"])
        folds.append(Fold(year, best, len(fit), len(valid), len(test), metrics))
        predictions.append(test)
    pooled = pd.concat(predictions, ignore_index=True)
    groups = _group_ids(pooled, spec)
    overall = {name: ranking_report(pooled["relevance"].to_numpy(), pooled[f"score_{name}"].to_numpy(), groups)
               for name in ["model", *scorers]}
    best_iteration = max(1, int(round(np.mean([f.best_iteration for f in folds]))))
    return Evaluation(spec.name, test_years, folds, overall, pooled, features, params, best_iteration)


def refit(dataset: pd.DataFrame, evaluation: Evaluation, spec: Task, *, seed: int = 0) -> lgb.LGBMRanker:
    """The model for use: every labelled year, the number of rounds chosen on validation."""
    labelled = dataset[dataset["relevance"].notna()]
    return fit_ranker(labelled, None, evaluation.features, spec, evaluation.params, seed=seed,
                      n_estimators=evaluation.best_iteration)
