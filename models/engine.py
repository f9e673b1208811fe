"""Where the work runs: this process (:class:`LocalEngine`) or a Dask cluster (:class:`DaskEngine`).

Both engines offer what the pipeline needs, so training and scoring read the same either way:

* ``map(fn, items)`` — independent jobs (the feature years): a loop here, Dask tasks on a cluster;
* ``fit(train, valid, features, spec, params, ...)`` — a LambdaRank booster: LightGBM's own
  functional API here, :class:`lightgbm.dask.DaskLGBMRanker` on a cluster, with every query group
  inside one partition (LightGBM's requirement for distributed ranking);
* ``predict(model, table, features)`` — scores: in place here, ``map_partitions`` on a cluster.

Distributed LightGBM builds its histograms from each worker's share of the rows, so its trees are
not bit-identical to a single process's (though the same from fit to fit: :class:`RankedClient`);
and ``DaskLGBMRanker`` has no early stopping, so the Dask engine trains the full number of rounds,
then computes LightGBM's validation NDCG after each round on the whole validation set
(:func:`models.ranker.validation_curve`; each machine would see only its share) and keeps the
round early stopping would have kept (:func:`early_stopping_round`).
Metrics agree within a small tolerance, which the tests check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.resources import usable_cpus
from models.errors import ModelError
from models.ranker import (
    booster_params,
    feature_matrix,
    fit_ranker,
    query_order,
    row_weights,
    stopping_schedule,
    validation_curve,
)
from models.tasks import Task


class Engine(Protocol):
    name: str
    workers: int
    distributed: bool

    def describe(self) -> str: ...

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            done: Callable[[Any, Any], Any] | None = None) -> list[Any]:
        """``fn`` of each item, in the items' order. ``done(item, result)`` runs as each finishes
        (progress), and what it returns is kept in place of the result: a large result (a year's
        feature table) can be written there and dropped."""

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None, features: list[str], spec: Task, params: dict,
            *, seed: int = 0, n_estimators: int | None = None) -> lgb.Booster: ...

    def predict(self, model: lgb.Booster, table: pd.DataFrame, features: list[str]) -> np.ndarray: ...


class LocalEngine:
    """Everything in this process (LightGBM on the CPUs it may use)."""

    name = "local"
    distributed = False
    workers = 1

    def describe(self) -> str:
        return f"local (this process, {usable_cpus()} CPU(s))"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            done: Callable[[Any, Any], Any] | None = None) -> list[Any]:
        """``fn`` of each item, in order (see :meth:`Engine.map`)."""
        return [done(item, fn(item)) if done else fn(item) for item in items]

    def fit(self, train, valid, features, spec, params, *, seed=0, n_estimators=None) -> lgb.Booster:
        return fit_ranker(train, valid, features, spec, params, seed=seed, n_estimators=n_estimators)

    def predict(self, model: lgb.Booster, table: pd.DataFrame, features: list[str]) -> np.ndarray:
        return model.predict(table[features]) if len(table) else np.array([])


class DaskEngine:
    """A Dask cluster reached through ``client`` (``distributed.Client``)."""

    name = "dask"
    distributed = True

    def __init__(self, client: Any):
        self.client = client

    @property
    def workers(self) -> int:
        return len(self._workers())

    def describe(self) -> str:
        return f"dask ({self.workers} worker(s) at {self.client.scheduler.address})"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], *,
            done: Callable[[Any, Any], Any] | None = None) -> list[Any]:
        """``fn`` of each item as a Dask task (see :meth:`Engine.map`); each result is fetched once."""
        from distributed import as_completed

        items = list(items)
        futures = self.client.map(fn, items, pure=False)
        if not done:
            return self.client.gather(futures)
        which = {f.key: item for f, item in zip(futures, items, strict=True)}
        results = {}
        for future, result in as_completed(futures, with_results=True):
            results[future.key] = done(which[future.key], result)
            future.release()  # the worker may drop it now
        return [results[f.key] for f in futures]

    def _partitions(self, table: pd.DataFrame, features: list[str], spec: Task, seed: int) -> tuple[Any, Any, Any, Any]:
        """X (a Dask DataFrame), y, group sizes and the row weights (Dask arrays; ``None`` when no row is
        weighted, :func:`models.ranker.row_weights`), one partition per worker, no query split across two.

        Queries are dealt to the parts (:func:`deal_queries`), so each part spans every year: in
        LightGBM's data-parallel learning each machine finds the bins of its share of the features
        from its own rows, and bins found from the early years alone (contiguous parts) differ from
        the whole table's.

        Each part is one float64 matrix (:func:`models.ranker.feature_matrix`) wrapped in a DataFrame
        without a copy, scattered to its worker before the next is made: this process holds one part
        at a time. A DataFrame, not an array, because ``lightgbm.dask`` concatenates a worker's parts
        (a copy of an array, even of one; a view of a single DataFrame) and LightGBM then reads the
        frame's float64 block as it is: a worker holds its rows once, not twice (the memory peak of
        a BACI-scale Dask fit).
        """
        import dask.array as da
        import dask.dataframe as dd

        order, sizes = query_order(table, spec, seed)
        query_part = deal_queries(sizes, max(1, min(self.workers, len(sizes))))
        row_part = np.repeat(query_part.astype(np.int16), sizes)  # each row's part (2 bytes a row)
        used = np.unique(query_part)
        group_parts = [sizes[query_part == k] for k in used]
        label = table["relevance"].to_numpy()[order].astype(np.int32)
        # a part's rows are picked (and its matrix made) only when it is sent: one part held at a time
        xs = self._place(worker_part(table, features, order[row_part == k]) for k in used)
        ys = self._place(label[row_part == k] for k in used)
        gs = self._place(group_parts)
        meta = pd.DataFrame({name: pd.Series(dtype=np.float64) for name in features})
        n_rows = [int(g.sum()) for g in group_parts]

        def vector(futures: list, dtype: type) -> Any:
            return da.concatenate([da.from_delayed(f, shape=(n,), dtype=dtype) for f, n in zip(futures, n_rows, strict=True)])

        weights = row_weights(table)
        if weights is not None:
            weights = vector(self._place(weights[order][row_part == k] for k in used), np.float64)
        return (dd.from_delayed(xs, meta=meta, verify_meta=False), vector(ys, np.int32),
                da.concatenate([da.from_delayed(f, shape=g.shape, dtype=g.dtype) for f, g in zip(gs, group_parts, strict=True)]),
                weights)

    def _workers(self) -> list[str]:
        """The workers' addresses, sorted: part i goes to the i-th, which is LightGBM's rank i (:class:`RankedClient`).

        Asked of the scheduler each time (``Client.nthreads``): ``Client.scheduler_info`` returns a
        cached identity that the client's periodic refresh can replace, between the request and
        the return, with one that lists no workers (a CI run failed so, dividing by zero workers).
        """
        workers = sorted(self.client.nthreads())
        if not workers:
            raise ModelError(f"the Dask scheduler at {self.client.scheduler.address} has no workers; "
                             "start at least one `dask worker` (README: Running on a cluster)")
        return workers

    def _place(self, parts: Iterable) -> list:
        """Scatter part i to the i-th worker (:meth:`_workers`); a generator's parts are made and sent one at a time."""
        workers, futures = self._workers(), []
        for i, part in enumerate(parts):
            futures.append(self.client.scatter(part, workers=[workers[i % len(workers)]]))
            del part  # before the next part is made: this process holds one at a time
        return futures

    def fit(self, train, valid, features, spec, params, *, seed=0, n_estimators=None) -> lgb.Booster:
        from lightgbm.dask import DaskLGBMRanker

        if not train["relevance"].notna().any():
            raise ModelError("no training candidates: need more labelled years before the test year")
        p = booster_params(params, seed=seed, threads=1)
        p.pop("num_threads")  # each worker's threads are its own (dask worker --nthreads)
        rounds = int(n_estimators if n_estimators is not None else params["n_estimators"])
        x, y, group, weight = self._partitions(train, features, spec, seed)
        model = DaskLGBMRanker(client=RankedClient(self.client), n_estimators=rounds, **p)
        model.fit(x, y, group=group, sample_weight=weight)
        booster = model.booster_
        booster.pandas_categorical = []  # as a local fit records (no categorical features)
        if valid is not None and valid["relevance"].notna().any():
            # no early stopping in lightgbm.dask, and each machine would evaluate only its share of a
            # validation set: LightGBM's metric on the whole of it here, then early stopping's rule
            patience, period = stopping_schedule(valid, params)
            curve = validation_curve(booster, valid, features, spec, params, seed=seed, period=period)
            booster.best_iteration = early_stopping_round(curve, patience)
        return booster

    def predict(self, model: lgb.Booster, table: pd.DataFrame, features: list[str]) -> np.ndarray:
        """Scores of ``table`` computed on the workers, one partition per worker (``map_partitions``)."""
        import dask.dataframe as dd

        if not len(table):
            return np.array([])
        x = table[features].reset_index(drop=True)
        parts = [x.iloc[rows] for rows in np.array_split(np.arange(len(x)), max(1, min(self.workers, len(x))))]
        frame = dd.from_delayed(self._place(parts), meta=x.iloc[:0], verify_meta=False)
        iteration = model.best_iteration or None
        scores = frame.map_partitions(lambda part: pd.Series(model.predict(part, num_iteration=iteration), index=part.index),
                                      meta=pd.Series(dtype=float))
        return scores.compute().to_numpy()


class RankedClient:
    """The Dask client as ``lightgbm.dask`` should see it: ``who_has`` answers in the order asked.

    ``lightgbm.dask`` gives its workers their LightGBM ranks in the order ``Client.who_has`` lists
    the training parts, and ``distributed`` lists them from a set of keys, whose order follows the
    keys' string hashes, so it changes from fit to fit. The rank matters: in data-parallel
    learning each machine finds the bin boundaries of its share of the features from its own rows,
    so the same rows on the same workers gave one of two models on two workers (measured: eight
    fits of one table, two distinct sets of predictions). Listed in the parts' order, the worker
    holding part i (:meth:`DaskEngine._place`) is rank i, and a fit is reproducible. Everything
    else is the client itself.
    """

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def who_has(self, futures: Any = None, **kwargs: Any) -> dict[str, list[str]]:
        held = self._client.who_has(futures, **kwargs)
        if futures is None:
            return held
        return {key: held[key] for key in dict.fromkeys(f.key for f in self._client.futures_of(futures))}


def worker_part(table: pd.DataFrame, features: list[str], rows: np.ndarray) -> pd.DataFrame:
    """Rows ``rows`` of ``table[features]`` as a DataFrame over one column-major float64 block (no copy of it).

    ``lightgbm.dask`` concatenates a worker's parts (for one DataFrame, a view) and LightGBM reads
    the block as it is, so the worker holds these rows once (tested).
    """
    return pd.DataFrame(feature_matrix(table, features, rows), columns=list(features), copy=False)


def deal_queries(sizes: np.ndarray, n: int) -> np.ndarray:
    """The part (0 to ``n``-1) of each query of ``sizes`` rows, in order: each to the part with the fewest rows so far.

    Parts stay within one query's size of each other, and each gets queries from the whole table
    (every year), not a contiguous block of it.

    >>> deal_queries(np.array([5, 5, 5, 5, 2, 9]), 2).tolist()
    [0, 1, 0, 1, 0, 1]
    >>> deal_queries(np.array([9, 1, 1, 1, 1]), 2).tolist()
    [0, 1, 1, 1, 1]
    """
    loads = np.zeros(n, dtype=np.int64)
    out = np.empty(len(sizes), dtype=np.int64)
    for i, size in enumerate(sizes):
        out[i] = k = int(np.argmin(loads))
        loads[k] += size
    return out


def early_stopping_round(curve: Sequence[float], patience: int) -> int:
    """The round (1-based) LightGBM's ``early_stopping(patience)`` keeps for a validation ``curve``
    (higher is better): the best so far when ``patience`` rounds pass without a strict improvement;
    NaN marks a round that was not evaluated.

    >>> early_stopping_round([0.5, 0.6, 0.55, 0.58, 0.7], patience=2)
    2
    >>> early_stopping_round([0.5, 0.6, 0.55, 0.58, 0.7], patience=3)
    5
    """
    best, best_round = -np.inf, 0
    for i, value in enumerate(curve):
        if np.isnan(value):  # a round early stopping did not evaluate (:func:`models.ranker.evaluation_period`)
            continue
        if value > best:
            best, best_round = value, i
        elif i - best_round >= patience:
            break
    return best_round + 1


@contextmanager
def open_engine(name: str = "local", *, scheduler: str | None = None, workers: int = 2,
                log: Callable[[str], None] = lambda _m: None) -> Iterator[Engine]:
    """The engine called ``name``: ``local``, or ``dask`` on ``scheduler`` (``tcp://host:port``) or,
    without one, on a ``LocalCluster`` of ``workers`` single-threaded worker processes started here."""
    if name == "local":
        if scheduler:
            raise ModelError("--scheduler needs --engine dask")
        yield LocalEngine()
        return
    if name != "dask":
        raise ModelError(f"unknown engine {name!r}; choose local or dask")
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ModelError(f"cannot reach the Dask scheduler at {scheduler}: {exc}. Start one with "
                             "`dask scheduler` and at least one `dask worker` (README: Running on a cluster)") from exc
        cluster = None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    try:
        client.wait_for_workers(1, timeout=120)
        engine = DaskEngine(client)
        log(f"engine: {engine.describe()}")
        yield engine
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
