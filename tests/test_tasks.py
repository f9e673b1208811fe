"""Task definitions: candidates and relevance exactly as specified; leak-free evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.assemble import build_base
from models import tasks
from models.errors import ModelError
from models.train import evaluate, load_params
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
