"""Feature contributions (SHAP values) of a LightGBM model, computed once per distinct decision pattern.

LightGBM's ``pred_contrib`` runs path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2) for
every row and every tree: O(T·L·D²) a row. Within one tree, that algorithm reads a row only through
its decision at each internal node (it descends to both children of every split, the row's side
weighted as "hot"), so rows that take the same side at every split of a tree get the same
contributions from that tree. A list of 263,000 keys shows 250–1,500 distinct decision patterns per
tree of 15 leaves: :func:`contributions` runs LightGBM's own TreeSHAP on one row of each pattern, tree
by tree (``start_iteration=t, num_iteration=1``), and adds each tree's values to every row of the
pattern. The values are LightGBM's (the same code per tree), summed over trees in the same order;
only the grouping of the floating-point additions inside a tree can differ (≤ 1e-12 relative).

The decisions replicate LightGBM's numerical split (``Tree::NumericalDecision``): a missing value
counts as 0 unless the split's missing type is ``NaN``; a ``Zero`` or ``NaN`` missing value goes to
the default side; otherwise ``x <= threshold`` goes left. Each pattern's leaf is checked against
LightGBM's own ``pred_leaf`` for every row; models with categorical or linear trees, several trees
per iteration, or a failed check take the plain ``pred_contrib``, as do lists where a tree has nearly
as many patterns as rows (under 5,000 rows, or more than half of them distinct), where it is faster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ZERO = 1e-35  # LightGBM's kZeroThreshold


def contributions(booster, features: np.ndarray) -> np.ndarray:
    """SHAP values (rows × features, without the bias column): LightGBM's ``pred_contrib``, grouped by pattern."""
    features = np.ascontiguousarray(features, dtype=np.float64)
    dump = booster.dump_model()
    trees = dump["tree_info"]
    used = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    trees = trees[:used]

    def whole_list() -> np.ndarray:  # LightGBM's own run over every row
        return booster.predict(features, pred_contrib=True)[:, :-1]

    if len(features) < 5_000 or dump.get("num_tree_per_iteration", 1) != 1 or not all(map(_plain, trees)):
        return whole_list()
    leaves = booster.predict(features, pred_leaf=True)
    columns = np.ascontiguousarray(features.T)
    missing = np.isnan(columns)
    out = np.zeros((len(features), features.shape[1]), order="F")
    for t, tree in enumerate(trees):
        nodes = _splits(tree["tree_structure"])
        if not nodes:  # a single leaf: no feature contributes
            continue
        pattern = _patterns(columns, missing, nodes)
        if pattern.max() + 1 > len(features) // 2:  # nearly every row its own pattern: one run over all rows is faster
            return whole_list()
        representative = np.empty(pattern.max() + 1, dtype=np.int64)
        representative[pattern] = np.arange(len(features))  # any row of a pattern stands for it
        if not np.array_equal(leaves[representative[pattern], t], leaves[:, t]):  # a decision read differently
            return whole_list()
        phi = booster.predict(features[representative], pred_contrib=True, start_iteration=t, num_iteration=1)
        for j in sorted({n["split_feature"] for n in nodes}):  # the other features' contributions are 0 here
            out[:, j] += phi[pattern, j]
    return out


def _patterns(columns: np.ndarray, missing: np.ndarray, nodes: list[dict]) -> np.ndarray:
    """Each row's decision pattern in one tree as a code 0..k−1 (63 splits to a 64-bit word; words combined).

    ``columns`` is the feature matrix transposed (one contiguous row per feature), ``missing`` its NaN mask."""
    n = columns.shape[1]
    codes = None
    for start in range(0, len(nodes), 63):
        word = np.zeros(n, dtype=np.uint64)
        for bit, node in enumerate(nodes[start:start + 63]):
            j = node["split_feature"]
            word |= _left(columns[j], missing[j], node).astype(np.uint64) << np.uint64(bit)
        local = pd.factorize(word)[0].astype(np.uint64)
        codes = local if codes is None else pd.factorize(codes * np.uint64(n) + local)[0].astype(np.uint64)  # < n² < 2⁶⁴
    return codes.astype(np.int64)


def _left(x: np.ndarray, nan: np.ndarray, node: dict) -> np.ndarray:
    """Whether each value goes to the left child of a numerical split, as ``Tree::NumericalDecision`` decides:
    a missing value is 0 unless the missing type is ``NaN``; ``Zero``/``NaN`` missing values take the default
    side; otherwise ``x <= threshold`` (a NaN compares False)."""
    threshold, default_left, kind = node["threshold"], bool(node["default_left"]), node["missing_type"]
    left = x <= threshold
    if kind == "NaN":
        return left | nan if default_left else left
    if kind == "Zero":
        default = nan | (np.abs(x) <= ZERO)
        return np.where(default, default_left, left)
    return left | nan if 0.0 <= threshold else left


def _plain(tree: dict) -> bool:
    """Only numerical splits and constant leaves (no categorical split, no linear leaf)."""
    return all(n["decision_type"] == "<=" for n in _splits(tree["tree_structure"])) and not _linear(tree["tree_structure"])


def _linear(node: dict) -> bool:
    if "split_index" in node:
        return _linear(node["left_child"]) or _linear(node["right_child"])
    return "leaf_coeff" in node


def _splits(node: dict) -> list[dict]:
    """The internal nodes of a tree, in pre-order."""
    if "split_index" not in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]
