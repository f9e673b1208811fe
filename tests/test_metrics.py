"""Ranking metrics: perfect, zero, golden and textbook cases; wrong input."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

from models.metrics import auc_pr, dcg_at_k, map_at_k, ndcg_at_k, precision_at_k, ranking_report


def test_dcg_textbook_example():
    # Järvelin & Kekäläinen style gains 2^rel − 1 with log2(i + 1) discounts
    rel = [3, 2, 3, 0, 1, 2]
    expected = sum((2**r - 1) / np.log2(i + 2) for i, r in enumerate(rel))
    assert dcg_at_k(np.array(rel), 6) == pytest.approx(expected)
    assert dcg_at_k(np.array(rel), 2) == pytest.approx(7 + 3 / np.log2(3))


def test_perfect_and_reversed_rankings():
    rel = np.array([3, 2, 1, 0])
    groups = np.zeros(4)
    assert ndcg_at_k(rel, np.array([4, 3, 2, 1]), groups, k=10) == pytest.approx(1.0)
    assert map_at_k(rel, np.array([4, 3, 2, 1]), groups, k=10) == pytest.approx(1.0)
    worst = ndcg_at_k(rel, np.array([1, 2, 3, 4]), groups, k=10)
    assert 0 < worst < 0.6


def test_ndcg_matches_sklearn_with_exponential_gains():
    rng = np.random.default_rng(0)
    rel = rng.integers(0, 4, 30)
    score = rng.random(30)
    ours = ndcg_at_k(rel, score, np.zeros(30), k=10)
    ref = ndcg_score([2.0**rel - 1], [score], k=10)
    assert ours == pytest.approx(ref)


def test_queries_without_relevant_items_are_left_out():
    rel = np.array([0, 0, 1, 0])
    groups = np.array([0, 0, 1, 1])
    score = np.array([1.0, 2.0, 2.0, 1.0])
    assert ndcg_at_k(rel, score, groups) == pytest.approx(1.0)
    assert np.isnan(ndcg_at_k(np.zeros(4), score, groups))


def test_map_and_precision_golden_values():
    # ranking: rel, not, rel, not ; R = 2 → AP = (1/1 + 2/3) / 2
    rel = np.array([1, 0, 2, 0])
    score = np.array([4, 3, 2, 1.0])
    groups = np.zeros(4)
    assert map_at_k(rel, score, groups, k=10) == pytest.approx((1 + 2 / 3) / 2)
    assert precision_at_k(rel, score, groups, k=2) == pytest.approx(0.5)
    assert precision_at_k(rel, score, groups, k=10) == pytest.approx(0.5)  # 2 of the 4 items


def test_auc_pr_is_average_precision_of_relevance_ge_1():
    rng = np.random.default_rng(1)
    rel = rng.integers(0, 3, 50)
    score = rng.random(50)
    assert auc_pr(rel, score) == pytest.approx(average_precision_score(rel >= 1, score))
    assert np.isnan(auc_pr(np.zeros(5), score[:5]))


def test_report_has_every_metric():
    report = ranking_report(np.array([1, 0]), np.array([0.2, 0.1]), np.zeros(2))
    assert set(report) == {"ndcg_at_5", "ndcg_at_10", "ndcg_at_20", "map_at_10", "precision_at_10", "auc_pr"}
