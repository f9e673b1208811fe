"""Task definitions: candidates and relevance exactly as specified; leak-free evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.assemble import build_base
from models import tasks
from models.errors import ModelError
from models.evaluation import evaluate
from models.ranker import load_params
from recommender.errors import RecommenderError

BLOC = ["KAZ", "UZB", "RUS"]


def flows(rows):
    return pd.DataFrame(rows, columns=["year", "exporter", "importer", "product", "value_usd"])


def test_import_substitution_candidates_and_relevance_by_hand():
    t = flows([
        (2000, "USA", "UZB", "01", 2_000_000.0), (2000, "KAZ", "UZB", "01", 100_000.0), (2000, "RUS", "UZB", "01", 50_000.0),
        (2000, "USA", "KAZ", "02", 500_000.0),  # below 1M extra-bloc: no candidate
        (2005, "USA", "UZB", "01", 1_000_000.0), (2005, "KAZ", "UZB", "01", 1_000_000.0), (2005, "RUS", "UZB", "01", 40_000.0),
    ])
    spec = tasks.get_task(tasks.IMPORT_SUBSTITUTION)
    base = build_base(t, BLOC)
    cands = spec.candidates(base, [2000])
    assert sorted(map(tuple, cands[["importer", "product", "supplier"]].to_numpy())) == [("UZB", "01", "KAZ"), ("UZB", "01", "RUS")]
    rel = spec.labels(t, cands, BLOC)
    by_supplier = dict(zip(cands["supplier"], rel, strict=True))
    # KAZ: share 0.1/2.15 → 1.0/2.04: Δ ≈ +0.44 ≥ 0.05 and the flow grew → 3
    assert by_supplier["KAZ"] == 3
    # RUS: flow fell (50k → 40k) → 0 even though its share barely moved
    assert by_supplier["RUS"] == 0


def test_relevance_grades_and_flow_rule():
    assert tasks.grade(np.array([0.06, 0.03, 0.006, 0.001, -0.5]), (0.05, 0.02, 0.005)).tolist() == [3, 2, 1, 0, 0]


def test_unobservable_outcomes_are_nan():
    t = flows([(2000, "USA", "UZB", "01", 2_000_000.0), (2000, "KAZ", "UZB", "01", 1.0)])
    spec = tasks.get_task(tasks.IMPORT_SUBSTITUTION)
    cands = spec.candidates(build_base(t, BLOC), [2000])
    assert spec.labels(t, cands, BLOC).isna().all()


def test_joint_projects_candidates_and_relevance_by_hand():
    t = flows([
        (2000, "KAZ", "UZB", "x", 100_000.0), (2000, "UZB", "KAZ", "x", 50_000.0), (2000, "KAZ", "UZB", "y", 850_000.0),
        (2000, "KAZ", "UZB", "z", 10_000.0),  # T = 10k < 100k: no candidate
        (2005, "KAZ", "UZB", "x", 200_000.0), (2005, "UZB", "KAZ", "x", 150_000.0), (2005, "KAZ", "UZB", "y", 900_000.0),
    ])
    spec = tasks.get_task(tasks.JOINT_PROJECTS)
    cands = spec.candidates(build_base(t, BLOC), [2000])
    assert sorted(cands["product"]) == ["x", "y"] and (cands["partner_a"] == "KAZ").all()
    rel = dict(zip(cands["product"], spec.labels(t, cands, BLOC), strict=True))
    # A = 100k + 50k + 850k + 10k = 1.01m; x: O 100k → 300k, ΔO/A ≈ 0.198 ≥ 0.02 → 3; y: O stays 0 → 0
    assert rel == {"x": 3, "y": 0}


def test_unknown_task_and_bad_horizon():
    with pytest.raises(ModelError, match="unknown task"):
        tasks.get_task("export-promotion")
    with pytest.raises(ModelError, match="horizon"):
        tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=0)


@pytest.fixture(scope="module")
def tiny_dataset(tiny_world):
    spec = tasks.get_task(tasks.JOINT_PROJECTS).with_options(horizon=2, min_value=10_000.0)
    bloc = list(tiny_world.countries["iso3"][:10])
    base = build_base(tiny_world.trade, bloc)
    data = spec.build_dataset(base, tiny_world.spec.years, tiny_world.trade)
    return spec, data


def test_evaluation_never_sees_test_outcomes(tiny_dataset):
    spec, data = tiny_dataset
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 60})
    first = evaluate(data, spec, params, seed=3)
    test_years = first.test_years
    # scramble every outcome a model for the earliest test year must not see: years > T − h
    rng = np.random.default_rng(0)
    leaky = data.copy()
    unseen = leaky["year"] > min(test_years) - spec.horizon
    leaky.loc[unseen & leaky["relevance"].notna(), "relevance"] = rng.integers(0, 4, int((unseen & leaky["relevance"].notna()).sum()))
    second = evaluate(leaky, spec, params, seed=3, test_years=[min(test_years)])
    a = first.predictions[first.predictions["year"] == min(test_years)]["score_model"].to_numpy()
    b = second.predictions["score_model"].to_numpy()
    np.testing.assert_array_equal(a, b)
    # ... while changing outcomes the model may see does change it
    seen = data.copy()
    visible = (seen["year"] < min(test_years) - spec.horizon) & seen["relevance"].notna()
    seen.loc[visible, "relevance"] = rng.integers(0, 4, int(visible.sum()))
    third = evaluate(seen, spec, params, seed=3, test_years=[min(test_years)])
    assert not np.array_equal(a, third.predictions["score_model"].to_numpy())


def test_training_is_deterministic_with_a_seed(tiny_dataset):
    spec, data = tiny_dataset
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 40})
    a = evaluate(data, spec, params, seed=1).predictions["score_model"].to_numpy()
    b = evaluate(data, spec, params, seed=1).predictions["score_model"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_the_lean_fit_equals_lightgbm_on_the_labelled_dataframe(tiny_dataset):
    """The fit reads one column-major copy of the labelled rows (the BACI-scale memory cut) and
    gives byte for byte the model LightGBM builds from a copied, reordered DataFrame of them."""
    import lightgbm as lgb

    from models.ranker import booster_params, feature_matrix, fit_ranker, query_order

    spec, data = tiny_dataset
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 30})
    features = spec.feature_columns(data)
    assert data["relevance"].isna().any()  # the last years: skipped by the fit, not copied away first
    lean = fit_ranker(data, None, features, spec, params, seed=2)
    labelled = data[data["relevance"].notna()].reset_index(drop=True)
    order, sizes = query_order(labelled, spec, 2)
    ordered = labelled.iloc[order]
    p = booster_params(params, seed=2, threads=2) | {"eval_at": [params["eval_at"]]}
    plain = lgb.train(p, lgb.Dataset(ordered[features], ordered["relevance"].astype(int), group=sizes),
                      num_boost_round=params["n_estimators"])
    assert lean.model_to_string() == plain.model_to_string()
    matrix = feature_matrix(data, features)
    assert matrix.flags["F_CONTIGUOUS"] and matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, data[features].to_numpy(dtype=np.float64))


def test_a_fit_on_parts_equals_the_fit_on_their_concatenation(tiny_dataset):
    """The refit reads the bloc's and the world's tables in place (no concatenated copy of the world):
    byte for byte the model of one table holding both, and the same dataset rows and groups."""
    from models.pooling import with_pool
    from models.ranker import feature_matrix, fit_ranker, query_order
    from models.tasks import POOL

    spec, data = tiny_dataset
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 30})
    features = spec.feature_columns(data)
    years = sorted(data["year"].unique())
    bloc, pool = with_pool(data[data["year"] >= years[2]], data[data["year"] < years[4]].assign(**{POOL: "world"}))
    whole = pd.concat([bloc, pool], ignore_index=True)
    for tables in ([bloc, pool], [pool, bloc]):
        joined = pd.concat(tables, ignore_index=True)
        parts_order, parts_sizes = query_order(tables, spec, 3)
        order, sizes = query_order(joined, spec, 3)
        np.testing.assert_array_equal(parts_order, order)
        np.testing.assert_array_equal(parts_sizes, sizes)
        np.testing.assert_array_equal(feature_matrix(tables, features, order), feature_matrix(joined, features, order))
    assert len(sizes) > bloc.groupby(list(spec.group)).ngroups  # the world's queries are their own, not merged
    lean = fit_ranker([bloc, pool], None, features, spec, params, seed=2)
    assert lean.model_to_string() == fit_ranker(whole, None, features, spec, params, seed=2).model_to_string()


@pytest.mark.parametrize("task", [tasks.JOINT_PROJECTS, tasks.IMPORT_SUBSTITUTION])
def test_validation_curve_is_lightgbms_own_validation_ndcg(tiny_world, task):
    """What the Dask engine stops early on (each machine would score only its share of the
    validation set) is, round by round, the NDCG@10 LightGBM records on the whole of it."""
    import lightgbm as lgb

    from models.engine import early_stopping_round
    from models.ranker import booster_params, ranking_dataset, validation_curve

    spec = tasks.get_task(task).with_options(horizon=2)
    bloc = list(tiny_world.countries["iso3"][:10])
    data = spec.build_dataset(build_base(tiny_world.trade, bloc), tiny_world.spec.years, tiny_world.trade)
    params = load_params(task, {"n_estimators": 40})
    years = sorted(data.loc[data["relevance"].notna(), "year"].unique())
    train, valid = data[data["year"] <= years[-2]], data[data["year"] == years[-1]]
    features = spec.feature_columns(data)
    p = booster_params(params, seed=0, threads=2) | {"eval_at": [params["eval_at"]]}
    train_set = ranking_dataset(train, features, spec, 0)
    recorded: dict = {}
    model = lgb.train(p, train_set, num_boost_round=40, valid_sets=[ranking_dataset(valid, features, spec, 0, reference=train_set)],
                      valid_names=["valid"], callbacks=[lgb.record_evaluation(recorded)])
    curve = validation_curve(model, valid, features, spec, params)
    lightgbm_curve = np.array(recorded["valid"]["ndcg@10"])
    np.testing.assert_allclose(curve, lightgbm_curve, rtol=0, atol=1e-12)
    assert np.ptp(lightgbm_curve) > 0  # a curve that moves, so the agreement means something
    # and the round early stopping keeps is LightGBM's own
    stopped = lgb.train(p, train_set, num_boost_round=40, valid_sets=[ranking_dataset(valid, features, spec, 0, reference=train_set)],
                        callbacks=[lgb.early_stopping(5, first_metric_only=True, verbose=False)])
    assert early_stopping_round(curve, 5) == stopped.best_iteration

@pytest.mark.parametrize("task", [tasks.JOINT_PROJECTS, tasks.DIVERSIFICATION])
def test_sparse_early_stopping_is_lightgbms_rule_on_the_rounds_it_evaluates(tiny_world, task):
    """Early stopping evaluated every round is LightGBM's ``early_stopping`` byte for byte; evaluated every
    4th round it grows the same trees and keeps the round LightGBM's rule picks among those rounds."""
    import lightgbm as lgb

    from models.engine import early_stopping_round
    from models.ranker import (
        SparseEarlyStopping,
        booster_params,
        evaluated,
        ranking_dataset,
        validation_curve,
    )

    spec = tasks.get_task(task).with_options(horizon=2)
    bloc = list(tiny_world.countries["iso3"][:10])
    data = spec.build_dataset(build_base(tiny_world.trade, bloc), tiny_world.spec.years)
    params = load_params(task, {"n_estimators": 80, "early_stopping_rounds": 8})
    years = sorted(data.loc[data["relevance"].notna(), "year"].unique())
    train, valid = data[data["year"] <= years[-2]], data[data["year"] == years[-1]]
    features = spec.feature_columns(data)
    p = booster_params(params, seed=0, threads=2) | {"eval_at": [params["eval_at"]]}

    def fit(period: int | None):
        train_set = ranking_dataset(train, features, spec, 0)
        valid_set = ranking_dataset(valid, features, spec, 0, reference=train_set)
        if period is None:
            return lgb.train(p, train_set, num_boost_round=80, valid_sets=[valid_set],
                             callbacks=[lgb.early_stopping(8, first_metric_only=True, verbose=False)]), None
        stopping = SparseEarlyStopping(valid_set, 8, period)
        return lgb.train(p, train_set, num_boost_round=80, callbacks=[stopping.attach, stopping]), stopping

    lightgbm_own, _ = fit(None)
    every, every_stopping = fit(1)
    assert every.best_iteration == lightgbm_own.best_iteration and every.model_to_string() == lightgbm_own.model_to_string()
    assert 1 <= every.best_iteration < 80  # it did stop early, so the equality is about the rule
    sparse, stopping = fit(4)
    assert sparse.best_iteration % 4 == 0 and stopping.evaluations < every_stopping.evaluations
    full = lgb.train(p, ranking_dataset(train, features, spec, 0), num_boost_round=80)
    curve = validation_curve(full, valid, features, spec, params)
    masked = np.array([v if evaluated(i, 4, 79) else np.nan for i, v in enumerate(curve)])
    assert sparse.best_iteration == early_stopping_round(masked, 8)
    np.testing.assert_array_equal(validation_curve(full, valid, features, spec, params, period=4), masked)
    rows = valid[features].to_numpy(dtype=float)
    np.testing.assert_array_equal(sparse.predict(rows, num_iteration=sparse.best_iteration),
                                  full.predict(rows, num_iteration=sparse.best_iteration))  # the same trees


def test_weighted_rows_train_and_stop_by_their_weights(tiny_world):
    """Sampled world negatives carry weights (models.pooling.negative_sample): the fit uses them, and the
    validation curve the Dask engine stops on is LightGBM's own weighted average precision, round by round."""
    import lightgbm as lgb

    from models.ranker import booster_params, fit_ranker, ranking_dataset, validation_curve
    from models.tasks import WEIGHT

    spec = tasks.get_task(tasks.DIVERSIFICATION).with_options(horizon=2)
    bloc = list(tiny_world.countries["iso3"][:10])
    data = spec.build_dataset(build_base(tiny_world.trade, bloc), tiny_world.spec.years)
    data[WEIGHT] = np.where(data["relevance"] == 0, np.random.default_rng(0).choice([1.0, 4.0], len(data)), 1.0)
    params = load_params(tasks.DIVERSIFICATION, {"n_estimators": 30})
    years = sorted(data.loc[data["relevance"].notna(), "year"].unique())
    train, valid = data[data["year"] <= years[-2]], data[data["year"] == years[-1]]
    features = spec.feature_columns(data)
    assert WEIGHT not in features
    p = booster_params(params, seed=0, threads=2)
    train_set = ranking_dataset(train, features, spec, 0)
    recorded: dict = {}
    model = lgb.train(p, train_set, num_boost_round=30, valid_sets=[ranking_dataset(valid, features, spec, 0, reference=train_set)],
                      valid_names=["valid"], callbacks=[lgb.record_evaluation(recorded)])
    curve = validation_curve(model, valid, features, spec, params)
    np.testing.assert_allclose(curve, recorded["valid"]["average_precision"], rtol=0, atol=1e-9)
    unweighted = validation_curve(model, valid.drop(columns=WEIGHT), features, spec, params)
    assert np.abs(curve - unweighted).max() > 1e-6  # the weights do change the metric
    plain = fit_ranker(train.drop(columns=WEIGHT), None, features, spec, params, seed=0)
    assert fit_ranker(train, None, features, spec, params, seed=0).model_to_string() != plain.model_to_string()


def test_large_validation_sets_are_evaluated_every_few_rounds(tiny_dataset, monkeypatch):
    """fit_ranker evaluates every round up to EVALUATED_ROWS_PER_ROUND validation rows, sparser beyond."""
    import models.ranker as ranker

    spec, data = tiny_dataset
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 60, "early_stopping_rounds": 20})
    features = spec.feature_columns(data)
    years = sorted(data.loc[data["relevance"].notna(), "year"].unique())
    train, valid = data[data["year"] <= years[-2]], data[data["year"] == years[-1]]
    n = int(valid["relevance"].notna().sum())
    assert ranker.evaluation_period(n, 20) == 1
    monkeypatch.setattr(ranker, "EVALUATED_ROWS_PER_ROUND", max(1, n // 3))
    assert ranker.evaluation_period(n, 20) in (3, 4)
    model = ranker.fit_ranker(train, valid, features, spec, params)
    assert (model.best_iteration % ranker.evaluation_period(n, 20) == 0) or model.best_iteration == 60


def test_too_few_years_is_a_clear_error(tiny_dataset):
    spec, data = tiny_dataset
    with pytest.raises(ModelError, match="labelled year"):
        evaluate(data[data["year"] <= data["year"].min() + 3], spec, load_params(tasks.JOINT_PROJECTS))
    with pytest.raises(ModelError, match="no observable outcome"):
        evaluate(data, spec, load_params(tasks.JOINT_PROJECTS), test_years=[int(data["year"].max())])


def test_thresholds_and_minimum_are_configurable():
    from recommender.cli.train import parse_thresholds

    spec = tasks.get_task(tasks.IMPORT_SUBSTITUTION).with_options(thresholds=parse_thresholds("0.1,0.05,0.01"), min_value=5e6)
    assert spec.thresholds == (0.1, 0.05, 0.01) and spec.min_value == 5e6
    with pytest.raises(RecommenderError, match="high to low"):
        parse_thresholds("0.01,0.05,0.1")
    t = flows([(2000, "USA", "UZB", "01", 2_000_000.0), (2000, "KAZ", "UZB", "01", 1.0)])
    assert spec.candidates(build_base(t, BLOC), [2000]).empty  # 2m < 5m


# ---- issue 8: ablation, uncertainty, pooling, nested tuning, calibration ---------------------------
def test_evaluation_reports_ablation_interval_and_seed_spread(tiny_dataset):
    from models.evaluation import ABLATION

    spec, data = tiny_dataset
    ev = evaluate(data, spec, load_params(tasks.JOINT_PROJECTS, {"n_estimators": 40}), seed=1, seeds=3, n_resamples=200)
    assert ABLATION in ev.overall and ev.best_baseline[0] not in {"model", ABLATION}
    m = ev.extra["metrics"]
    assert m["ndcg_at_10_diff_ci_low"] <= m["ndcg_at_10_diff_vs_best_baseline"] <= m["ndcg_at_10_diff_ci_high"]
    assert m["seeds"] == 3 and m["seed_ndcg_at_10_min"] <= ev.overall["model"]["ndcg_at_10"] <= m["seed_ndcg_at_10_max"]
    intervals = ev.extra["tables"]["lift_intervals.csv"]
    assert list(intervals["test_year"]) == [*map(str, ev.test_years), "overall"]
    # the ablation sees only the baselines' inputs: it never equals the full model's scores
    assert not np.allclose(ev.predictions[f"score_{ABLATION}"], ev.predictions["score_model"])


def test_pooled_training_keeps_the_time_cut_and_the_bloc_queries(tiny_world, tiny_dataset):
    from models.evaluation import fold_split
    from models.pooling import POOL, pooled_dataset, pseudo_blocs

    spec, data = tiny_dataset
    bloc = list(tiny_world.countries["iso3"][:10])
    sets = pseudo_blocs(tiny_world.trade, bloc, n_sets=2, seed=0)
    assert len(sets) == 2 and all(len(s) == len(bloc) and s != tuple(sorted(bloc)) for s in sets)
    assert sets == pseudo_blocs(tiny_world.trade, bloc, n_sets=2, seed=0)  # deterministic
    base = build_base(tiny_world.trade, bloc)
    pool = pooled_dataset(spec, base, tiny_world.trade, sets, tiny_world.spec.years)
    assert set(pool[POOL]) == {"set000", "set001"} and pool["relevance"].notna().all()
    year = int(data["year"].max()) - spec.horizon
    fit, valid, test = fold_split(data.assign(**{POOL: "bloc"}), pool, year, spec)
    assert (fit["year"] + spec.horizon < year).all() and fit[POOL].ne("bloc").any()
    assert valid[POOL].eq("bloc").all() and test[POOL].eq("bloc").all()
    # scrambling the pool's unseeable outcomes changes nothing
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 30})
    first = evaluate(data, spec, params, test_years=[year], pool=pool, ablation=False, n_resamples=50)
    leaky = pool.copy()
    late = leaky["year"] > year - spec.horizon - 1
    leaky.loc[late, "relevance"] = np.random.default_rng(1).integers(0, 4, int(late.sum()))
    second = evaluate(data, spec, params, test_years=[year], pool=leaky, ablation=False, n_resamples=50)
    np.testing.assert_array_equal(first.predictions["score_model"], second.predictions["score_model"])


def test_tuning_never_reads_an_outcome_after_the_first_test_origin(tiny_dataset):
    from models.tuning import search_window, tune

    spec, data = tiny_dataset
    params = load_params(tasks.JOINT_PROJECTS, {"n_estimators": 30})
    first_test = int(data.loc[data["relevance"].notna(), "year"].max())
    end = search_window(spec, first_test)
    a = tune(data, spec, params, first_test_year=first_test, n_trials=3, seed=0)
    assert max(a.inner_test_years) <= end and a.window_end == end
    leaky = data.copy()
    late = leaky["relevance"].notna() & (leaky["year"] > end)  # outcomes at t + h > T₁ − 1
    leaky.loc[late, "relevance"] = np.random.default_rng(2).integers(0, 4, int(late.sum()))
    b = tune(leaky, spec, params, first_test_year=first_test, n_trials=3, seed=0)
    pd.testing.assert_frame_equal(a.trials, b.trials)
    assert a.params == b.params and "nested random search" in a.params["tuning_note"]


def test_calibration_is_monotone_bounded_and_json():
    import json

    from models.calibration import apply_calibration, cross_fitted_reliability, fit_calibration

    rng = np.random.default_rng(0)
    score = rng.normal(size=2000)
    relevance = (rng.random(2000) < 1 / (1 + np.exp(-2 * score))).astype(float)
    cal = json.loads(json.dumps(fit_calibration(score, relevance)))  # survives a JSON round trip
    grid = np.linspace(-4, 4, 50)
    p = apply_calibration(cal, grid)
    assert (np.diff(p) >= 0).all() and p.min() >= 0 and p.max() <= 1 and p[-1] > 0.8 > 0.2 > p[0]
    assert np.isnan(apply_calibration(cal, np.array([np.nan]))).all()
    curve = cross_fitted_reliability(score, relevance, np.repeat([2008, 2009], 1000))
    assert curve["cross_fitted"].all() and np.abs(curve["predicted"] - curve["observed"]).max() < 0.15


def test_interpolated_calibration_is_fine_grained_and_no_worse_than_steps():
    """The isotonic steps gave a list of thousands of candidates a few dozen distinct probabilities (ranks mostly
    ties); knots at the steps' centres give every distinct score its own, at no cost in Brier score."""
    from models.calibration import apply_calibration, calibration_quality, fit_calibration

    rng = np.random.default_rng(1)
    score = rng.normal(size=4000)
    relevance = (rng.random(4000) < 1 / (1 + np.exp(-2 * score))).astype(float)
    steps, smooth = fit_calibration(score, relevance, "steps"), fit_calibration(score, relevance)
    fresh = rng.normal(size=3528)
    assert len(np.unique(apply_calibration(steps, fresh))) < 100
    assert len(np.unique(apply_calibration(smooth, fresh))) > 3000
    assert (np.diff(apply_calibration(smooth, np.sort(fresh))) >= 0).all()
    quality = calibration_quality(score, relevance, np.repeat([2008, 2009], 2000))
    assert quality["calibration_interpolated_brier"] <= quality["calibration_steps_brier"] + 0.002
    assert quality["calibration_interpolated_distinct"] > quality["calibration_steps_distinct"]
    with pytest.raises(ValueError, match="unknown calibration method"):
        fit_calibration(score, relevance, "platt?")


def test_calibration_tails_are_distinct_monotone_and_never_zero():
    """Rare positives (as in diversification): the lowest isotonic step holds none, and scores past the end
    knots used to share one clipped value (the tiny world's list got 7 distinct probabilities, 20 of them 0).
    Steps shrunk by one pseudo-row and logistic tails give every score its own probability inside (0, 1)."""
    from models.calibration import apply_calibration, fit_calibration

    rng = np.random.default_rng(2)
    score = rng.normal(size=3000)
    relevance = (rng.random(3000) < 1 / (1 + np.exp(-(3 * score - 5)))).astype(float)
    cal = fit_calibration(score, relevance)
    assert cal["platt"] is not None and cal["platt"][0] > 0 and min(cal["y"]) > 0
    fresh = np.sort(np.concatenate([rng.normal(size=500), np.linspace(-8, 8, 100)]))
    p = apply_calibration(cal, fresh)
    assert (np.diff(p) >= 0).all() and (p > 0).all() and (p < 1).all()
    tails = (fresh < cal["x"][0]) | (fresh > cal["x"][-1])
    assert tails.sum() > 50 and len(np.unique(p[tails])) == tails.sum()  # no ties in the tails
    assert len(np.unique(p)) >= 0.98 * len(fresh)  # nor, but for equal neighbouring steps, between the knots
    edge = np.array([cal["x"][0] - 1e-9, cal["x"][0], cal["x"][-1], cal["x"][-1] + 1e-9])
    q = apply_calibration(cal, edge)
    assert abs(q[0] - q[1]) < 1e-6 and abs(q[2] - q[3]) < 1e-6  # continuous where the tails meet the knots
    old = {k: v for k, v in cal.items() if k != "platt"}  # a fit stored before the tails: clipped, as then
    assert apply_calibration(old, np.array([-8.0]))[0] == cal["y"][0]


def test_the_light_task_names_are_the_registry_s():
    from models.names import TASK_NAMES
    from recommender.cli._common import TaskName

    assert TASK_NAMES == tuple(tasks.TASKS)
    assert [t.value for t in TaskName] == list(tasks.TASKS)
