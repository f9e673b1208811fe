"""The scoring core: a trained model for use, and the scores of a year's candidates (or of given keys).

:func:`load_model` finds the task's champion (or a given model URI) and returns it as one
:class:`TrainedModel` (booster, version, the task with the options it was trained with, its
feature names, its calibration); :func:`score_candidates` builds the year's candidates and
features (from the feature cache when the training built that year) and scores them;
:func:`rank` orders rows within their queries. The outputs (recommend, batch scoring, scenario,
brief) build on these.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cached_property

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.calibration import apply_calibration
from models.champion import load_champion, model_name
from models.engine import Engine, LocalEngine
from models.tasks import BLOC_POOL, POOL, Task, as_task
from recommender.bank import DataBank
from recommender.config import Config
from recommender.errors import RecommenderError
from recommender.pipeline.datasets import FeatureCache, YearBuilder, dataset_key
from recommender.pipeline.inputs import open_bank, product_names, resolve_level, trade_year
from recommender.pipeline.matching import ProductMatcher


@dataclass(frozen=True)
class TrainedModel:
    """A model ready to score: the booster, the version it is known by, the task with the options it was
    trained with, its training run's params and its probability calibration (None without one)."""

    booster: lgb.Booster
    version: str
    task: Task
    run_params: dict
    calibration: dict | None

    @property
    def features(self) -> list[str]:
        """The feature columns the booster reads, in its order."""
        return list(self.booster.feature_name())

    def score(self, table: pd.DataFrame, engine: Engine | None = None) -> pd.DataFrame:
        """``table`` with ``score`` (raw, comparable within a query) and ``probability`` (calibrated, or NaN)."""
        score = (engine or LocalEngine()).predict(self.booster, table, self.features)
        probability = apply_calibration(self.calibration, score) if self.calibration else np.full(len(table), np.nan)
        return table.assign(score=score, probability=probability)


def trained_options(run_params: dict) -> dict:
    """The task options a model was trained with (its run's params), for its candidates and its stored table."""
    options: dict = {}
    if run_params.get("min_candidate_value_usd"):
        options["min_value"] = float(run_params["min_candidate_value_usd"])
    if run_params.get("horizon"):
        options["horizon"] = int(run_params["horizon"])
    if run_params.get("relevance_thresholds"):
        value = run_params["relevance_thresholds"]
        options["thresholds"] = tuple(float(v) for v in (json.loads(value) if isinstance(value, str) else value))
    return options


def load_model(cfg: Config, task: Task | str, model_uri: str | None = None) -> TrainedModel:
    """The task's champion for the bloc (or ``model_uri``, from this store only), ready to score."""
    task = as_task(task)
    loaded, params = load_champion(cfg.store, model_name(task.name, cfg.bloc.name), model_uri,
                                   hint=f"train one first: recommender train --task {task.name} --bloc {cfg.bloc.name}")
    return TrainedModel(loaded.booster, loaded.label, task.with_options(**trained_options(params)), params,
                        loaded.calibration)


@dataclass
class Scored:
    """Rows scored by a model, all candidates of the year, and what scored them."""

    rows: pd.DataFrame
    candidates: pd.DataFrame
    model: TrainedModel
    classification: str
    sectors: pd.Series  # product → sector
    year: int

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def calibrated(self) -> bool:
        """Whether ``probability`` holds calibrated probabilities (else NaN)."""
        return self.model.calibration is not None


class YearScorer:
    """One model's view of one year of the bank: the year's candidates scored once, features of any keys.

    Building it costs what a scoring run costs up front (the year's base tables and every candidate's
    features and score); :meth:`scored` then costs only the given keys' features. A resident scoring
    service (:mod:`recommender.service`) keeps one per model, year and bank snapshot; the CLI builds
    one per command. After construction it is read-only and safe to share between threads.
    """

    def __init__(self, cfg: Config, model: TrainedModel, year: int | None = None, engine: Engine | None = None):
        self.cfg, self.model = cfg, model
        spec = model.task
        live = open_bank(cfg)
        snapshot = live.snapshot_id
        self.bank = DataBank(cfg.bank_dir, snapshot=snapshot) if snapshot else live  # pinned: an ingest meanwhile changes nothing here
        self.year = trade_year(self.bank, year)
        run_level = model.run_params.get("product_level")
        level = resolve_level(self.bank, int(run_level) if run_level else None)
        self._builder = YearBuilder(self.bank, spec, cfg.bloc.members, product_level=level)
        cache = FeatureCache(cfg.feature_dir)
        key = dataset_key(self.bank, spec, cfg.bloc.members, level, cache.fingerprints())
        self._base = None
        self._lock = threading.Lock()
        if self.year in cache.years(key):  # the training's own table of this year: same candidates, same features
            everything = cache.read(key, [self.year]).drop(columns="relevance")
        else:
            everything = spec.features(self.base(), spec.candidates(self.base(), [self.year]))
        if POOL in everything:  # a world-trained task: the other countries' candidates trained it; the bloc's are the answer
            everything = everything[everything[POOL] == BLOC_POOL].reset_index(drop=True)
        self.candidates = model.score(everything, engine)
        self.sectors = self._builder.products.set_index("product")["sector"]

    @cached_property
    def matcher(self) -> ProductMatcher:
        """How a list's product cells are read (built when a list first needs it: ``recommend`` never does)."""
        return ProductMatcher.for_bank(self.bank)

    @cached_property
    def names(self) -> dict[str, str]:
        """Product code → name (:func:`~recommender.pipeline.inputs.product_names`), read once."""
        return product_names(self.bank)

    def base(self):
        """The year's base tables (built on first use, once)."""
        with self._lock:
            if self._base is None:
                self._base = self._builder.base([self.year], labels=False)[0]
            return self._base

    def scored(self, keys: pd.DataFrame | None = None, engine: Engine | None = None) -> Scored:
        """Every candidate of the year scored, and ``keys`` (optional, the task's key columns without year)
        scored too, even when they fall below the candidate thresholds."""
        rows = self.candidates
        if keys is not None:
            spec = self.model.task
            table = spec.features(self.base(), keys[[k for k in spec.keys if k != "year"]].assign(year=self.year))
            rows = self.model.score(table, engine)
            if len(rows) != len(keys):  # left joins keep the keys' order and count; anything else is a bug
                raise RecommenderError(f"internal error: {len(keys)} keys became {len(rows)} feature rows")
        return Scored(rows, self.candidates, self.model, self.bank.classification, self.sectors, self.year)


def score_candidates(cfg: Config, task: Task | str, keys: pd.DataFrame | None = None, *, year: int | None = None,
                     model_uri: str | None = None, model: TrainedModel | None = None,
                     engine: Engine | None = None) -> Scored:
    """Score every candidate of ``year`` (default the bank's last) with the champion (or ``model_uri``).

    ``keys`` (optional): specific rows to score, with the task's key columns (no year); they are
    scored even when they fall below the candidate thresholds. ``model``: the result of
    :func:`load_model` when the caller has already loaded it. The year's candidates are the bloc's
    (a world-trained task's other countries only train it). Candidates and features of a year
    the model's training table holds come from the feature cache; ``engine`` computes the scores
    (:mod:`models.engine`). :class:`YearScorer` keeps this work for more lists of keys.
    """
    model = model or load_model(cfg, task, model_uri)
    return YearScorer(cfg, model, year, engine).scored(keys, engine)


def rank(table: pd.DataFrame, spec: Task, top: int | None = None) -> pd.DataFrame:
    """Rank 1 = best ``score`` within each query group; optionally keep the top ``top`` of each group."""
    out = table.sort_values([*spec.group, "score"], ascending=[True] * len(spec.group) + [False], kind="stable")
    out["rank"] = out.groupby(list(spec.group), observed=True).cumcount() + 1
    if top is not None:
        out = out[out["rank"] <= top]
    return out.reset_index(drop=True)
