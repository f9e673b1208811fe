"""models.contributions gives LightGBM's own pred_contrib (exact TreeSHAP), computed once per decision pattern."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.contributions import contributions


def _data(n: int, seed: int, *, nan_in: tuple[int, ...] = (), zeros_in: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    x[:, 3] = rng.integers(0, 5, n)  # few distinct values: many ties at thresholds
    for j in nan_in:
        x[rng.random(n) < 0.2, j] = np.nan
    for j in zeros_in:
        x[rng.random(n) < 0.3, j] = 0.0
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * x[:, 3] + rng.normal(size=n) > 0.5).astype(int)
    return x, y


@pytest.mark.parametrize("case", ["nan_missing", "zero_missing", "no_missing_seen", "deep_trees", "early_stopped"])
def test_contributions_equal_lightgbm_pred_contrib(case):
    params = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1, "seed": 1}
    x, y = _data(20_000, 0, nan_in=(0, 2), zeros_in=(1,))
    if case == "zero_missing":
        params["zero_as_missing"] = True
    if case == "no_missing_seen":  # trained without NaN (missing type None): NaN is read as 0 at prediction
        x = np.nan_to_num(x)
    if case == "deep_trees":  # more than 63 splits a tree: patterns span two 64-bit words
        params["num_leaves"] = 120
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=30)
    if case == "early_stopped":
        booster.best_iteration = 12  # predict's default then reads 12 trees; so must the contributions
    kinds = {n.get("missing_type") for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"])}
    expected_kind = {"nan_missing": "NaN", "zero_missing": "Zero", "no_missing_seen": "None"}.get(case)
    assert expected_kind is None or expected_kind in kinds, kinds
    scored, _ = _data(30_000, 1, nan_in=(0, 1, 2, 5), zeros_in=(1, 4))  # NaN and 0 in every kind of column
    scored = np.round(scored * 4) / 4  # values on a grid, as features of a few countries and sectors are: repeats
    if case == "deep_trees":  # 120 leaves tell almost every grid point apart: rows repeat, as keys of a list do
        scored = scored[np.random.default_rng(2).integers(0, 3_000, len(scored))]
    expected = booster.predict(scored, pred_contrib=True)[:, :-1]
    predict, sizes = booster.predict, []

    def counted(data, *args, **kwargs):
        if kwargs.get("pred_contrib"):
            sizes.append(len(data))
        return predict(data, *args, **kwargs)

    booster.predict = counted
    got = contributions(booster, scored)
    assert len(sizes) == (booster.best_iteration or booster.num_trees()), sizes  # tree by tree, no fallback
    assert max(sizes) < len(scored) // 2, sizes  # one row a pattern, not LightGBM's run over every row
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_categorical_splits_take_lightgbm_own_path():
    x, y = _data(8_000, 2)
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(x, y, categorical_feature=[3]), num_boost_round=10)
    assert any(n["decision_type"] == "==" for t in booster.dump_model()["tree_info"] for n in _nodes(t["tree_structure"]))
    np.testing.assert_array_equal(contributions(booster, x), booster.predict(x, pred_contrib=True)[:, :-1])


def _nodes(node: dict) -> list[dict]:
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])] if "split_index" in node else []
