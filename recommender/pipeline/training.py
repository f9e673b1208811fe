"""Training a task from the data bank: features (cached), evaluation, refit, MLflow.

:func:`train_task` is what ``recommender train`` and the notebooks call: it opens the bank
(:mod:`recommender.pipeline.inputs`), gets the task's table from the feature cache or builds it
year by year (:mod:`recommender.pipeline.datasets`), evaluates the ranker against the baselines
on the rolling origin (:mod:`models.evaluation`), refits it and logs everything to MLflow
(:mod:`models.tracking`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pandas as pd

from features.assemble import build_base
from models.engine import Engine, LocalEngine
from models.evaluation import Evaluation, check_test_years, evaluate, refit
from models.fit_cache import FitCache
from models.pooling import WORLD_NEGATIVES_PER_YEAR, pooled_dataset, pseudo_blocs, world_split
from models.ranker import Log, load_params
from models.tasks import BLOC_POOL, POOL, WEIGHT, Task, as_task
from models.tracking import RunRecord, log_training
from models.tuning import tune
from recommender.bank import DataBank
from recommender.config import Config
from recommender.errors import RecommenderError
from recommender.pipeline.datasets import FeatureCache, YearBuilder, task_table
from recommender.pipeline.explain import add_names
from recommender.pipeline.inputs import check_bloc, open_bank, product_names, resolve_level
from recommender.pipeline.scoring import rank


@dataclass
class TrainOutcome:
    evaluation: Evaluation
    record: RunRecord
    dataset_rows: int


def train_task(
    cfg: Config,
    task: Task | str,
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

    Features come from the feature cache when the same bank, bloc, task options and product
    ``level`` were built before (:mod:`recommender.pipeline.datasets`), else are built year by year and
    stored. ``engine``: where features and models are computed (:mod:`models.engine`; default
    this process). ``pool_sets`` > 0 adds that many pseudo-blocs' candidates to training (:mod:`models.pooling`);
    ``tune_trials`` > 0 runs the nested search of :mod:`models.tuning` first; ``seeds`` > 1 reports
    the spread of the test metric over seeds.
    """
    spec = as_task(task).with_options(horizon=horizon, thresholds=thresholds, min_value=min_value)
    params = load_params(spec.name, overrides)
    if seeds < 1 or pool_sets < 0 or tune_trials < 0:
        raise RecommenderError(f"--seeds must be ≥ 1 and --pool, --tune ≥ 0; got {seeds}, {pool_sets}, {tune_trials}")
    bank = open_bank(cfg)
    check_bloc(bank, cfg.bloc, log)
    cfg.store.probe()  # a tracking server that cannot answer fails now, not after the features and fits
    level = resolve_level(bank, product_level)
    years = bank.years("trade")
    engine = engine or LocalEngine()
    log(f"features: {len(years)} years {years[0]}–{years[-1]}, products at {level} digits, bloc {cfg.bloc.name}, "
        f"engine {engine.describe()}")
    stored = task_table(bank, FeatureCache(cfg.feature_dir), spec, cfg.bloc.members, product_level=level, engine=engine, log=log)
    dataset = stored.table
    log(f"candidates: {len(dataset):,} ({int(dataset['relevance'].notna().sum()):,} labelled)")
    pool = pooled_candidates(bank, spec, cfg.bloc.members, level, pool_sets, seed, log) if pool_sets else None
    panels = None
    if spec.world_training:  # the world trains; the bloc early-stops, tests and decides; the largest exporters test too
        if pool_sets:
            raise RecommenderError(f"--pool does not apply to {spec.name}: it already trains on every country of the bank")
        first = min(check_test_years(dataset[dataset[POOL] == BLOC_POOL], spec, test_years))
        labelled_world = int((dataset[POOL] != BLOC_POOL).sum())  # the build keeps the world's labelled rows only
        dataset, pool, panels = world_split(dataset, size_column="country_exports_total", year=first, consume=True,
                                            negatives_per_year=WORLD_NEGATIVES_PER_YEAR, seed=seed)
        stored.table = dataset  # the whole world's table is split now: not held through the fits as well
        sampled = WEIGHT in pool
        world_note = (f"{len(pool):,} of {labelled_world:,} labelled candidates of other countries (every positive, "
                      f"negatives sampled to {WORLD_NEGATIVES_PER_YEAR:,} a year, weighted up to "
                      f"{pool[WEIGHT].max():.2f})" if sampled else f"{len(pool):,} labelled candidates of other countries")
        log(f"world training: {world_note}; bloc {len(dataset):,}; "
            f"test panel of the 150 largest exporters: {len(panels['world150']):,} (never sampled)")
    test_years = check_test_years(dataset, spec, test_years)
    tuning = None
    if tune_trials:
        tuning = tune(dataset, spec, params, first_test_year=min(test_years), n_trials=tune_trials, seed=seed, pool=pool, log=log)
        params = tuning.params
    fits = FitCache(cfg.feature_dir / "folds")  # folds (and a refit) on unchanged rows since an earlier train: reused
    evaluation = evaluate(dataset, spec, params, test_years=test_years, seed=seed, seeds=seeds, pool=pool,
                          n_resamples=n_resamples, engine=engine, log=log, panels=panels, fits=fits)
    if tuning is not None:
        evaluation.extra["tables"]["tuning_trials.csv"] = tuning.trials
    log(f"refit on every labelled year with {evaluation.best_iteration} rounds")
    panels = None  # tested: the refit's memory is the bloc's and the world's tables and the matrix
    model = refit(dataset, evaluation, spec, seed=seed, pool=pool, engine=engine, fits=fits)
    if fits.hits:
        log(f"models: {fits.describe()} (fit before on the same rows and parameters)")
    latest = evaluation.predictions[evaluation.predictions["year"] == max(evaluation.test_years)].copy()
    latest["score"] = latest["score_model"]
    top = rank(latest, spec, top=10)
    top = add_names(top[[*spec.output_keys, "score", "rank", "relevance"]], spec, bank.classification, product_names(bank))
    run_params = {**spec.params(), "bloc": cfg.bloc.name, "bloc_members": list(cfg.bloc.members), "seed": seed,
                  "product_level": level, "classification": bank.classification,
                  "feature_cache": f"{stored.describe()}; table {stored.key.digest}",
                  "feature_cache_hits": len(stored.reused_years), "feature_cache_misses": len(stored.built_years),
                  "fit_cache_hits": fits.hits, "fit_cache_misses": fits.misses,
                  "engine": engine.name, "engine_workers": engine.workers,
                  "years": f"{years[0]}-{years[-1]}", "test_years": evaluation.test_years,
                  "pooled_sets": pool_sets, "pooled_candidates": 0 if pool is None else len(pool), "seeds": seeds,
                  **({"world_training_rows": world_note} if spec.world_training else {}),
                  "tuned": f"{tune_trials} trials on candidate years ≤ {tuning.window_end}" if tuning else "no (spec values)"}
    record = log_training(cfg.store, task=spec.name, bloc=cfg.bloc.name, bloc_members=list(cfg.bloc.members),
                          evaluation=evaluation, model=model, train_table=dataset,
                          top_recommendations=top, params=run_params, manifest_hash=stored.key.manifest_hash, data_source=str(cfg.bank_dir),
                          experiment=experiment, force_promote=promote)
    return TrainOutcome(evaluation, record, len(dataset))


def pooled_candidates(bank: DataBank, spec: Task, bloc: Collection[str], level: int, n_sets: int, seed: int,
          log: Log) -> pd.DataFrame:
    """Labelled candidates of ``n_sets`` pseudo-blocs (:mod:`models.pooling`), from one view of their countries' flows."""
    sets = pseudo_blocs(bank.trade_view(bloc, product_level=level), bloc, n_sets=n_sets, seed=seed)
    view = bank.trade_view(sorted(set(bloc).union(*sets)), product_level=level)
    builder = YearBuilder(bank, spec, bloc, product_level=level)
    base = build_base(view, bloc, capacity=builder.capacity, geography=builder.geography, products=builder.products)
    return pooled_dataset(spec, base, view, sets, view.years, capacity=builder.capacity, geography=builder.geography,
                          products=builder.products, log=log)
