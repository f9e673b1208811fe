"""The application's jobs as library functions: train a task, recommend, from the data bank.

The CLI and the notebooks call these; all reading of the bank happens here (the edge), the
feature and model code below it is pure.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.assemble import build_base
from models import tasks
from models.calibration import apply_calibration
from models.champion import load_champion, model_name
from models.engine import Engine, LocalEngine
from models.evaluation import Evaluation, check_test_years, evaluate, refit
from models.pooling import pooled_dataset, pseudo_blocs
from models.ranker import Log, load_params
from models.tracking import RunRecord, log_training
from models.tuning import tune
from recommender import countries
from recommender.bank import DataBank
from recommender.config import Bloc, Config
from recommender.datasets import FeatureStore, YearBuilder, dataset_key, task_table
from recommender.errors import RecommenderError
from recommender.explain import add_names, explain, product_names


def resolve_level(bank: DataBank, level: int | None) -> int:
    """``level`` checked against the bank's codes (not finer than them); by default the codes' own length."""
    return max(len(code) for code in bank.product_codes(level))


def trade_year(bank: DataBank, year: int | None) -> int:
    """``year`` if the bank has trade for it, else a clear error; by default the bank's last trade year."""
    years = bank.years("trade")
    if not years:
        raise RecommenderError(f"the data bank at {bank.root} has no trade; run `recommender demo` or ingest some")
    year = int(year) if year is not None else years[-1]
    if year not in years:
        raise RecommenderError(f"year {year} is not in the data bank (years {years[0]}–{years[-1]})")
    return year


def member_and_year(cfg: Config, bank: DataBank, country: str, year: int | None, *, option: str = "--country") -> tuple[str, int]:
    """The canonical code of ``country`` (a member of the bloc) and :func:`trade_year` of ``year``."""
    code = countries.canonical(country)
    if code not in cfg.bloc.members:
        raise RecommenderError(f"{option} {code} is not a member of {cfg.bloc.name} ({', '.join(cfg.bloc.members)})")
    return code, trade_year(bank, year)


def _check_bloc(bank: DataBank, bloc: Bloc, log: Log) -> None:
    present = bank.countries()
    missing = [m for m in bloc.members if m not in present]
    if len(bloc.members) - len(missing) < 2:
        raise RecommenderError(f"bloc {bloc.name}: fewer than two members ({bloc.members}) appear in the bank's trade")
    if missing:
        log(f"warning: bloc members without trade in the bank: {', '.join(missing)}")


@dataclass
class TrainOutcome:
    evaluation: Evaluation
    record: RunRecord
    dataset_rows: int


def train_task(
    cfg: Config,
    task: str,
    *,
    horizon: int | None = None,
    thresholds: tuple[float, float, float] | None = None,
    min_value: float | None = None,
    test_years: list[int] | None = None,
    seed: int = 0,
    product_level: int | None = None,
    overrides: dict | None = None,
    experiment: str | None = None,
    promote: bool = False,
    seeds: int = 1,
    pool_sets: int = 0,
    tune_trials: int = 0,
    n_resamples: int = 1000,
    engine: Engine | None = None,
    log: Log = lambda _m: None,
) -> TrainOutcome:
    """Build features and labels, evaluate against baselines (rolling origin), refit, log to MLflow.

    Features come from the feature store when the same bank, bloc, task options and product
    ``level`` were built before (:mod:`recommender.datasets`), else are built year by year and
    stored. ``engine``: where features and models are computed (:mod:`models.engine`; default
    this process). ``pool_sets`` > 0 adds that many pseudo-blocs' candidates to training (:mod:`models.pooling`);
    ``tune_trials`` > 0 runs the nested search of :mod:`models.tuning` first; ``seeds`` > 1 reports
    the spread of the test metric over seeds.
    """
    spec = tasks.get_task(task).with_options(horizon=horizon, thresholds=thresholds, min_value=min_value)
    params = load_params(task, overrides)
    if seeds < 1 or pool_sets < 0 or tune_trials < 0:
        raise RecommenderError(f"--seeds must be ≥ 1 and --pool, --tune ≥ 0; got {seeds}, {pool_sets}, {tune_trials}")
    bank = DataBank(cfg.bank_dir)
    _check_bloc(bank, cfg.bloc, log)
    level = resolve_level(bank, product_level)
    years = bank.years("trade")
    engine = engine or LocalEngine()
    log(f"features: {len(years)} years {years[0]}–{years[-1]}, products at {level} digits, bloc {cfg.bloc.name}, "
        f"engine {engine.describe()}")
    stored = task_table(bank, FeatureStore(cfg.feature_dir), spec, cfg.bloc.members, product_level=level, engine=engine, log=log)
    dataset = stored.table
    log(f"candidates: {len(dataset):,} ({int(dataset['relevance'].notna().sum()):,} labelled)")
    pool = _pool(bank, spec, cfg.bloc.members, level, pool_sets, seed, log) if pool_sets else None
    test_years = check_test_years(dataset, spec, test_years)
    tuning = None
    if tune_trials:
        tuning = tune(dataset, spec, params, first_test_year=min(test_years), n_trials=tune_trials, seed=seed, pool=pool, log=log)
        params = tuning.params
    evaluation = evaluate(dataset, spec, params, test_years=test_years, seed=seed, seeds=seeds, pool=pool,
                          n_resamples=n_resamples, engine=engine, log=log)
    if tuning is not None:
        evaluation.extra["tables"]["tuning_trials.csv"] = tuning.trials
    log(f"refit on every labelled year with {evaluation.best_iteration} rounds")
    model = refit(dataset, evaluation, spec, seed=seed, pool=pool, engine=engine)
    latest = evaluation.predictions[evaluation.predictions["year"] == max(evaluation.test_years)].copy()
    latest["score"] = latest["score_model"]
    top = _rank(latest, spec, top=10)
    top = add_names(top[[*spec.output_keys, "score", "rank", "relevance"]], spec, bank.classification, product_names(bank))
    run_params = {**spec.params(), "bloc": cfg.bloc.name, "bloc_members": list(cfg.bloc.members), "seed": seed,
                  "product_level": level, "classification": bank.classification,
                  "feature_store": f"{'reused' if stored.reused else 'built'} {stored.key.digest}",
                  "engine": engine.name, "engine_workers": engine.workers,
                  "years": f"{years[0]}-{years[-1]}", "test_years": evaluation.test_years,
                  "pooled_sets": pool_sets, "pooled_candidates": 0 if pool is None else len(pool), "seeds": seeds,
                  "tuned": f"{tune_trials} trials on candidate years ≤ {tuning.window_end}" if tuning else "no (spec values)"}
    record = log_training(cfg.store, task=task, bloc=cfg.bloc.name, bloc_members=list(cfg.bloc.members),
                          evaluation=evaluation, model=model, train_table=dataset,
                          top_recommendations=top, params=run_params, manifest_hash=stored.key.manifest_hash, data_source=str(cfg.bank_dir),
                          experiment=experiment, force_promote=promote)
    return TrainOutcome(evaluation, record, len(dataset))


def _pool(bank: DataBank, spec: tasks.Task, bloc: Collection[str], level: int, n_sets: int, seed: int,
          log: Log) -> pd.DataFrame:
    """Labelled candidates of ``n_sets`` pseudo-blocs (:mod:`models.pooling`), from one view of their countries' flows."""
    sets = pseudo_blocs(bank.trade_view(bloc, product_level=level), bloc, n_sets=n_sets, seed=seed)
    view = bank.trade_view(sorted(set(bloc).union(*sets)), product_level=level)
    builder = YearBuilder(bank, spec, bloc, product_level=level)
    base = build_base(view, bloc, capacity=builder.capacity, geography=builder.geography, products=builder.products)
    return pooled_dataset(spec, base, view, sets, view.years, capacity=builder.capacity, geography=builder.geography,
                          products=builder.products, log=log)


def _rank(table: pd.DataFrame, spec: tasks.Task, top: int | None = None) -> pd.DataFrame:
    """Rank 1 = best within each query group; optionally keep the top ``top`` of each group."""
    out = table.sort_values([*spec.group, "score"], ascending=[True] * len(spec.group) + [False], kind="stable")
    out["rank"] = out.groupby(list(spec.group), observed=True).cumcount() + 1
    if top is not None:
        out = out[out["rank"] <= top]
    return out.reset_index(drop=True)


def load_model(cfg: Config, task: str, model_uri: str | None = None) -> tuple[object, str, dict, dict | None]:
    """(booster, version label, training-run params, calibration) of the task's champion for the bloc, or of ``model_uri``."""
    loaded, params = load_champion(cfg.store, model_name(task, cfg.bloc.name), model_uri,
                                   hint=f"train one first: recommender train --task {task} --bloc {cfg.bloc.name}")
    return loaded.booster, loaded.label, params, loaded.calibration


@dataclass
class Scored:
    """Rows scored by a model, all candidates of the year, and what scored them."""

    rows: pd.DataFrame
    candidates: pd.DataFrame
    version: str
    model: object
    features: list[str]
    classification: str
    sectors: pd.Series  # product → sector
    year: int
    calibrated: bool = False  # whether ``probability`` holds calibrated probabilities (else NaN)


def score_candidates(cfg: Config, task: str, keys: pd.DataFrame | None = None, *, year: int | None = None,
                     model_uri: str | None = None, loaded: tuple | None = None, engine: Engine | None = None) -> Scored:
    """Score every candidate of ``year`` (default the bank's last) with the champion (or ``model_uri``).

    ``keys`` (optional): specific rows to score, with the task's key columns (no year); they are
    scored even when they fall below the candidate thresholds. ``loaded``: the result of
    :func:`load_champion` when the caller has already loaded the model. Candidates and features
    of a year the model's training table holds come from the feature store; ``engine`` computes
    the scores (:mod:`models.engine`).
    """
    model, version, run_params, calibration = loaded or load_model(cfg, task, model_uri)
    spec = tasks.get_task(task).with_options(**_trained_options(run_params))
    bank = DataBank(cfg.bank_dir)
    year = trade_year(bank, year)
    level = resolve_level(bank, int(run_params["product_level"]) if run_params.get("product_level") else None)
    builder = YearBuilder(bank, spec, cfg.bloc.members, product_level=level)
    names = _feature_names(model)
    engine = engine or LocalEngine()

    def scored(table: pd.DataFrame) -> pd.DataFrame:
        score = engine.predict(model, table, names)
        probability = apply_calibration(calibration, score) if calibration else np.full(len(table), np.nan)
        return table.assign(score=score, probability=probability)

    store, key = FeatureStore(cfg.feature_dir), dataset_key(bank, spec, cfg.bloc.members, level)
    base = None
    if year in store.years(key):  # the training's own table of this year: same candidates, same features
        everything = store.read(key, [year]).drop(columns="relevance")
    else:
        base, _ = builder.base([year], labels=False)
        everything = spec.features(base, spec.candidates(base, [year]))
    everything = scored(everything)
    rows = everything
    if keys is not None:
        base = base if base is not None else builder.base([year], labels=False)[0]
        rows = scored(spec.features(base, keys[[k for k in spec.keys if k != "year"]].assign(year=year)))
        if len(rows) != len(keys):  # left joins keep the keys' order and count; anything else is a bug
            raise RecommenderError(f"internal error: {len(keys)} keys became {len(rows)} feature rows")
    sectors = builder.products.set_index("product")["sector"]
    return Scored(rows, everything, version, model, names, bank.classification, sectors, year, calibration is not None)


def _trained_options(run_params: dict) -> dict:
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


def _feature_names(model) -> list[str]:
    return list(model.feature_name_) if hasattr(model, "feature_name_") else list(model.feature_name())


def recommend(cfg: Config, task: str, *, year: int | None = None, countries: list[str] | None = None,
              top: int | None = None, model_uri: str | None = None, engine: Engine | None = None) -> tuple[pd.DataFrame, str]:
    """Rank all candidates of ``year`` (default the bank's last) with the champion model.

    ``countries`` keeps import-substitution rows whose importer is listed, and joint-project rows
    with either partner listed. Columns: ``year, importer, supplier, product, score, probability, rank`` or
    ``year, partner_a, partner_b, product, score, probability, rank``, then ``reasons`` and names.
    """
    spec = tasks.get_task(task)
    scored = score_candidates(cfg, task, year=year, model_uri=model_uri, engine=engine)
    table = scored.rows
    if countries:
        wanted = {c.strip().upper() for c in countries}
        unknown = wanted - set(cfg.bloc.members)
        if unknown:
            raise RecommenderError(f"--country {sorted(unknown)} not in bloc {cfg.bloc.name} ({', '.join(cfg.bloc.members)})")
        table = table[spec.concerns(table, wanted)]
    ranked = _rank(table, spec, top=top)
    ranked["reasons"] = explain(scored.model, ranked, scored.features, spec, scored.sectors) if len(ranked) else []
    out = add_names(ranked[[*spec.output_keys, "score", "probability", "rank", "reasons"]], spec, scored.classification,
                    product_names(DataBank(cfg.bank_dir)))
    return out, scored.version
