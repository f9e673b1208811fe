"""The LightGBM ranker: model specs, the query-ordered dataset, the fit and LightGBM's validation curve.

One job: turn a task's labelled candidates into a LambdaRank booster. Rows are grouped into
queries by the task (:meth:`models.tasks.Task.group`, within each country set when the table is
pooled: :data:`models.pooling.POOL`), ordered by query, written once into a column-major float64
matrix and handed to LightGBM's functional API. The engines (:mod:`models.engine`), the
evaluation (:mod:`models.evaluation`) and the tuning (:mod:`models.tuning`) build on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from features.resources import release_free_memory, usable_cpus
from models.errors import ModelError
from models.tasks import POOL, WEIGHT, Task

SPEC_DIR = Path(__file__).parent / "specs"
MAX_QUERY_ROWS = 10_000  # LightGBM's limit of rows per query
Log = Callable[[str], None]
Tables = pd.DataFrame | Sequence[pd.DataFrame]
"""One table, or parts read as their concatenation without making it (the refit's bloc and world)."""


def _parts(table: Tables) -> list[pd.DataFrame]:
    return [table] if isinstance(table, pd.DataFrame) else list(table)


def _column(table: Tables, name: str, dtype=np.float64) -> np.ndarray:
    """One column of ``table`` (of its parts, end to end) as one array."""
    columns = [t[name].to_numpy(dtype=dtype, na_value=np.nan) for t in _parts(table)]
    return columns[0] if len(columns) == 1 else np.concatenate(columns)


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


def query_ids(table: Tables, spec: Task) -> np.ndarray:
    """Query ids: the task's group, within each country set when the table is pooled.

    Parts never share a query (the refit's are the bloc's and the world's, told apart by
    :data:`~models.tasks.POOL`): each part's ids follow the last part's, as one table's would.
    """
    ids, offset = [], 0
    for part in _parts(table):
        keys = [POOL, *spec.group] if POOL in part else list(spec.group)
        own = part.groupby(keys, sort=False, observed=True).ngroup().to_numpy()
        ids.append(own + offset)
        offset += int(own.max(initial=-1)) + 1
    return ids[0] if len(ids) == 1 else np.concatenate(ids)


def query_order(table: Tables, spec: Task, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the labelled rows ordered by query, and LightGBM's group sizes.

    Rows without an observed outcome (relevance NaN) are left out; queries over the row limit are
    split at random. Positions count through the parts end to end.
    """
    keep = np.flatnonzero(~np.isnan(_column(table, "relevance")))
    ids = query_ids(table, spec)[keep]
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


def feature_matrix(table: Tables, features: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """``table[features]`` (rows ``rows``, in that order) as one float64 matrix in column-major order.

    LightGBM reads a column-major float64 matrix as it is, so this is the only copy of the data a
    fit makes; slicing, reordering and converting a DataFrame would make three (the memory peak
    of a BACI HS6 training), and parts are read in place, not concatenated first. NaN stays NaN
    (LightGBM's missing value).
    """
    out = np.empty((sum(map(len, _parts(table))) if rows is None else len(rows), len(features)), dtype=np.float64, order="F")
    for j, name in enumerate(features):
        column = _column(table, name)
        if rows is None:
            out[:, j] = column
        else:
            np.take(column, rows, out=out[:, j])
    return out


def row_weights(table: Tables) -> np.ndarray | None:
    """The :data:`~models.tasks.WEIGHT` of every row (parts end to end; 1 where a part or a row has none),
    or ``None`` when no part is weighted."""
    parts = _parts(table)
    if not any(WEIGHT in part for part in parts):
        return None
    return np.nan_to_num(np.concatenate([part[WEIGHT].to_numpy(dtype=np.float64, na_value=np.nan) if WEIGHT in part
                                         else np.ones(len(part)) for part in parts]), nan=1.0)


def ranking_dataset(table: Tables, features: list[str], spec: Task, seed: int, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    order, sizes = query_order(table, spec, seed)
    label = _column(table, "relevance")[order].astype(int)
    weights = row_weights(table)
    data = lgb.Dataset(feature_matrix(table, features, order), label, group=sizes, reference=reference,
                       weight=None if weights is None else weights[order],
                       feature_name=list(features), free_raw_data=True, params={"verbose": -1})
    data.pandas_categorical = []  # no categorical features, as a DataFrame of them would record: scoring DataFrames stays as it was
    return data


def validation_curve(model: lgb.Booster, valid: pd.DataFrame, features: list[str], spec: Task, params: dict,
                     *, seed: int = 0, period: int = 1) -> np.ndarray:
    """NDCG@``eval_at`` of ``valid`` after each boosting round of ``model``, as LightGBM's own ``ndcg`` metric
    computes it on a validation set (``metric="ndcg"``; LightGBM ``DCGCalculator``); for a spec that stops
    on ``average_precision``, that metric of the whole validation set after each round.

    Per query, with rows in :func:`query_order` (the order of the validation ``lgb.Dataset`` of
    :func:`fit_ranker`): sort by raw score, descending, ties kept in row order (a stable sort);
    :math:`DCG@k = \\sum_{i<k} \\mathrm{label\\_gain}[rel_i] / \\log_2(i + 2)`, divided by the ideal DCG@k;
    a query without a relevant row scores 1. The metric is the mean over queries. Each round's raw
    score adds one tree's prediction to the last (one pass over the trees, not one per round).

    With ``period`` > 1 only the rounds :func:`evaluated` picks are computed, the others NaN.

    A distributed fit needs this: LightGBM evaluates a validation set on each machine's own share,
    and ``lightgbm.dask`` reports one machine's curve, so early stopping on it would look at a part
    of the validation queries.
    """
    order, sizes = query_order(valid, spec, seed)
    x = feature_matrix(valid, features, order)
    relevance = valid["relevance"].to_numpy()[order]
    if stopping_metric(params) == "average_precision":  # pooled over the validation set, as LightGBM's own metric
        positive = relevance >= 1
        weights = row_weights(valid)
        weights = None if weights is None else weights[order]

        def metric(raw: np.ndarray) -> float:
            return average_precision_score(positive, raw, sample_weight=weights) if positive.any() else 0.0
    else:
        k = int(params["eval_at"])
        gains = np.asarray(params.get("label_gain", 2.0 ** np.arange(31) - 1), dtype=float)
        label_gain = gains[relevance.astype(int)]
        query = np.repeat(np.arange(sizes.size), sizes)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

        def dcg(rows: np.ndarray) -> np.ndarray:  # rows: a permutation sorted by query
            position = np.arange(rows.size) - starts[query]
            discount = np.where(position < k, 1.0 / np.log2(position + 2.0), 0.0)
            return np.bincount(query, weights=label_gain[rows] * discount, minlength=sizes.size)

        ideal = dcg(np.lexsort((-label_gain, query)))

        def metric(raw: np.ndarray) -> float:
            return np.divide(dcg(np.lexsort((-raw, query))), ideal, out=np.ones(sizes.size), where=ideal > 0).mean()

    raw = np.zeros(len(order))
    curve = np.full(model.num_trees(), np.nan)
    for i in range(model.num_trees()):  # one tree's prediction added a round
        raw += model.predict(x, start_iteration=i, num_iteration=1, raw_score=True)
        if evaluated(i, period, model.num_trees() - 1):
            curve[i] = metric(raw)
    return curve


def booster_params(params: dict, *, seed: int, threads: int) -> dict:
    """LightGBM parameters from a model spec: its booster settings, the seed, determinism and threads."""
    p = {k: v for k, v in params.items() if k not in {"spec_version", "task", "early_stopping_rounds", "eval_at", "tuning_note",
                                                      "n_estimators", "metric"}}
    p.update(seed=seed, deterministic=True, force_row_wise=True, num_threads=threads, verbose=-1, metric=stopping_metric(params))
    return p


def stopping_metric(params: dict) -> str:
    """LightGBM's validation metric for early stopping: the spec's ``metric``, by default ``ndcg`` (at ``eval_at``).

    A ranking spec (LambdaRank) stops on NDCG@k within queries; the diversification spec (binary
    objective, decided on pooled average precision) on ``average_precision`` over the whole validation year.
    """
    return str(params.get("metric", "ndcg"))


EVALUATED_ROWS_PER_ROUND = 250_000
"""Validation rows early stopping evaluates a round at most, amortised (:func:`evaluation_period`)."""


def evaluation_period(n_valid: int, patience: int) -> int:
    """Rounds between two evaluations of the validation metric for early stopping.

    1 (every round, exactly LightGBM's ``early_stopping``) up to :data:`EVALUATED_ROWS_PER_ROUND`
    validation rows; beyond, :math:`\\lceil n / 250{,}000 \\rceil` rounds, at most ``patience`` / 5 so that
    the patience spans at least five evaluations. Why: LightGBM's average precision sorts the whole
    validation set each round, and over the 2.95 M validation candidates of diversification on the
    12-year HS6 world it cost several times the boosting round itself.

    >>> evaluation_period(40_000, 50), evaluation_period(2_950_000, 50), evaluation_period(600_000, 50)
    (1, 10, 3)
    """
    return int(max(1, min(-(-n_valid // EVALUATED_ROWS_PER_ROUND), patience // 5)))


def stopping_schedule(valid: pd.DataFrame, params: dict) -> tuple[int, int]:
    """(patience, period) of early stopping on ``valid``: the spec's ``early_stopping_rounds`` and
    :func:`evaluation_period` of its labelled rows. Both engines stop by it."""
    patience = int(params["early_stopping_rounds"])
    return patience, evaluation_period(int(valid["relevance"].notna().sum()), patience)


def evaluated(iteration: int, period: int, last: int) -> bool:
    """Whether round ``iteration`` (0-based) of ``last + 1`` is evaluated: every ``period``-th, and the last."""
    return (iteration + 1) % period == 0 or iteration == last


class SparseEarlyStopping:
    """LightGBM's ``early_stopping(patience, first_metric_only=True)`` with the validation metric evaluated
    only on the rounds :func:`evaluated` picks: stop at an evaluated round ``patience`` or more rounds
    after the best (a strict improvement), keep the best evaluated round. With ``period`` 1 it is LightGBM's
    rule round for round (tested); the trees are the same either way, only the round kept can differ.

    The validation set is added to the booster before the first round (not passed to ``lgb.train``,
    which would evaluate it every round); LightGBM keeps its scores up to date tree by tree.
    """

    order = 30
    before_iteration = False

    def __init__(self, valid: lgb.Dataset, patience: int, period: int) -> None:
        self.valid, self.patience, self.period = valid, patience, period
        self.best_score, self.best_iteration, self.best_result = -np.inf, 0, []
        self.evaluations = 0

    def attach(self, env: lgb.callback.CallbackEnv) -> None:
        if env.iteration == env.begin_iteration:
            env.model.add_valid(self.valid, "valid")

    attach.before_iteration = True  # type: ignore[attr-defined]
    attach.order = 0  # type: ignore[attr-defined]

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        last = env.end_iteration - 1
        if not evaluated(env.iteration - env.begin_iteration, self.period, last - env.begin_iteration):
            return
        result = env.model.eval_valid()
        self.evaluations += 1
        value, higher_better = result[0][2], result[0][3]
        score = value if higher_better else -value
        if score > self.best_score:
            self.best_score, self.best_iteration, self.best_result = score, env.iteration, result
        if env.iteration - self.best_iteration >= self.patience or env.iteration == last:
            raise lgb.callback.EarlyStopException(self.best_iteration, self.best_result)


def fit_ranker(train: Tables, valid: pd.DataFrame | None, features: list[str], spec: Task, params: dict,
               *, seed: int = 0, n_estimators: int | None = None) -> lgb.Booster:
    """Fit a LambdaRank booster with LightGBM's functional API; with ``valid``, early stopping on the spec's
    metric (:func:`stopping_metric`), evaluated every :func:`evaluation_period` rounds.

    Only rows with an observed outcome train or validate (the rest are skipped, not copied away
    first); ``train`` may be parts (:data:`Tables`), read in place.
    """
    if np.isnan(_column(train, "relevance")).all():
        raise ModelError("no training candidates: need more labelled years before the test year")
    p = booster_params(params, seed=seed, threads=min(_threads(), 2))
    p["eval_at"] = [params["eval_at"]]
    rounds = int(n_estimators if n_estimators is not None else params["n_estimators"])
    release_free_memory()  # the pages earlier folds and the feature build freed, before the matrix
    data = ranking_dataset(train, features, spec, seed)
    callbacks: list = []
    if valid is not None and not valid.empty:
        stopping = SparseEarlyStopping(ranking_dataset(valid, features, spec, seed, reference=data),
                                       *stopping_schedule(valid, params))
        callbacks = [stopping.attach, stopping]
    return lgb.train(p, data, num_boost_round=rounds, callbacks=callbacks)
