"""Evaluation folds' boosters kept by the content of what they were fit on, so a new year retrains only new folds.

A rolling-origin evaluation fits one model (and its ablation) per test year on the labelled years
before it. When a bank gains a year, the test years move on by one, and the fold of the test year
both trainings share is fit on exactly the same rows, features, labels and parameters as before:
LightGBM (``deterministic=True``, one seed) would grow the same trees again. :class:`FitCache`
keys each fold's booster by a SHA-256 of

* the fit and validation rows (every feature column, the relevance and the query columns, in the
  order the fit reads them; ``pandas.util.hash_pandas_object``),
* the feature list, the booster parameters, the seed, the number of rounds,
* LightGBM's version and the source of :mod:`models.ranker` (how a fit reads its table),

and returns the stored booster (LightGBM's own text format, which restores every threshold and leaf
value exactly) when the key matches, else fits and stores it. Any change to a row, a parameter or
the fitting code is a new key; old entries beyond :data:`KEEP` are removed, oldest first.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import uuid
import weakref
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

import models.ranker as ranker
from models.tasks import Task

KEEP = 24
"""Boosters kept: a few trainings' folds of each task and product level."""


class FitCache:
    """Fold boosters on disk under ``root`` (the feature cache's ``folds`` folder); counts its hits and misses."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self._digests: dict = {}  # column digests of the tables fit so far (weakly held)

    def fit(self, engine, train, valid, features: list[str], spec: Task, params: dict, *, seed: int = 0,
            n_estimators: int | None = None) -> lgb.Booster:
        """``engine.fit(...)``, or the booster an identical earlier fit stored (a distributed engine always fits)."""
        if engine.distributed:
            return engine.fit(train, valid, features, spec, params, seed=seed, n_estimators=n_estimators)
        key = fit_key(train, valid, features, spec, params, seed, n_estimators, memo=self._digests)
        model_file, meta_file = self.root / f"{key}.txt", self.root / f"{key}.json"
        if model_file.exists() and meta_file.exists():
            booster = lgb.Booster(model_str=model_file.read_text())
            booster.best_iteration = int(json.loads(meta_file.read_text())["best_iteration"])
            os.utime(model_file)  # recently used: pruned last
            self.hits += 1
            return booster
        booster = engine.fit(train, valid, features, spec, params, seed=seed, n_estimators=n_estimators)
        self.misses += 1
        self._store(model_file, booster.model_to_string(num_iteration=-1))
        self._store(meta_file, json.dumps({"best_iteration": int(booster.best_iteration or 0)}))
        self._prune()
        return booster

    def describe(self) -> str:
        return f"{self.hits} fold model(s) reused, {self.misses} fit"

    def _store(self, path: Path, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}-{uuid.uuid4().hex[:6]}")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _prune(self) -> None:
        models = sorted(self.root.glob("*.txt"), key=lambda p: p.stat().st_mtime)
        for old in models[:-KEEP]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)


def fit_with(fits: FitCache | None, engine, *args, **kwargs) -> lgb.Booster:
    """``fits.fit(engine, ...)`` with a cache, else ``engine.fit(...)``."""
    return fits.fit(engine, *args, **kwargs) if fits is not None else engine.fit(*args, **kwargs)


def fit_key(train, valid, features: list[str], spec: Task, params: dict, seed: int, n_estimators: int | None = None,
            *, memo: dict | None = None) -> str:
    """The SHA-256 of everything a fold's fit reads (see the module docstring), a column at a time.

    ``memo`` keeps each column's digest by table while the table lives (a weak reference), so the
    model and its ablation, fit on the same fold table, hash its columns once."""
    columns = [*features, "relevance", *spec.group]
    digest = hashlib.sha256()
    digest.update(json.dumps({"features": list(features), "params": params, "seed": seed, "rounds": n_estimators,
                              "task": spec.name, "group": list(spec.group), "lightgbm": lgb.__version__},
                             sort_keys=True, default=str).encode())
    digest.update(hashlib.sha256(inspect.getsource(ranker).encode()).digest())
    for part in [*ranker._parts(train), *([valid] if valid is not None else [])]:
        present = [c for c in columns if c in part]
        digest.update(json.dumps([present, len(part)]).encode())
        known = _column_digests(part, memo)
        for column in present:
            if column not in known:
                hashed = pd.util.hash_pandas_object(part[column], index=False).to_numpy()
                known[column] = hashlib.sha256(np.ascontiguousarray(hashed).tobytes()).digest()
            digest.update(known[column])
        digest.update(b"|")
    return digest.hexdigest()


def _column_digests(part: pd.DataFrame, memo: dict | None) -> dict[str, bytes]:
    if memo is None:
        return {}
    entry = memo.get(id(part))
    if entry is None or entry[0]() is not part:  # a new table (or a freed one's id reused)
        entry = memo[id(part)] = (weakref.ref(part), {})
    return entry[1]
