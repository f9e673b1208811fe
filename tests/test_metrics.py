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


# ---- ties, missing scores, short queries ----------------------------------------------------------
def test_all_tied_query_is_order_free_and_matches_sklearn():
    rel = np.array([0, 0, 0, 1, 0, 0, 0])
    score = np.zeros(7)
    expected = ndcg_score([2.0**rel - 1], [score], k=10, ignore_ties=False)
    for shift in range(7):  # wherever the relevant item sits in the input
        moved = np.roll(rel, shift)
        assert ndcg_at_k(moved, score, np.zeros(7), k=10) == pytest.approx(expected)
    # one relevant among n tied: expected precision share 1/n of the shown, MAP = mean over positions of 1/(i+1)
    assert precision_at_k(rel, score, np.zeros(7), k=3) == pytest.approx(1 / 7)
    assert map_at_k(rel, score, np.zeros(7), k=10) == pytest.approx(np.mean(1 / np.arange(1, 8)))


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    rel = rng.integers(0, 4, (6, 25))
    score = rng.integers(0, 4, (6, 25)).astype(float)  # heavy ties
    groups = np.repeat(np.arange(6), 25)
    for k in (5, 10, 20):
        ref = [ndcg_score([2.0**r - 1], [s], k=k, ignore_ties=False) for r, s in zip(rel, score, strict=True) if r.max() > 0]
        assert ndcg_at_k(rel.ravel(), score.ravel(), groups, k=k) == pytest.approx(np.mean(ref))


def _brute_force(metric, rel, score, k):
    """Average of ``metric`` over every order of the tied items (permutations within tied blocks)."""
    from itertools import permutations, product

    order = np.argsort(-score, kind="stable")
    blocks = [list(order[score[order] == v]) for v in sorted(set(score), reverse=True)]
    values = []
    for perm in product(*(permutations(b) for b in blocks)):
        ranked = rel[np.concatenate(perm).astype(int)]
        values.append(metric(ranked[:k] if metric is not _ap else ranked, k))
    return np.mean(values)


def _ap(ranked, k):
    hits = ranked >= 1
    top = hits[:k]
    return (np.cumsum(top) / np.arange(1, top.size + 1) * top).sum() / min(hits.sum(), k)


def test_map_and_precision_are_exact_expectations_over_tied_orders():
    rng = np.random.default_rng(3)
    for _ in range(20):
        rel = rng.integers(0, 3, 7)
        rel[0] = max(rel[0], 1)
        score = rng.integers(0, 3, 7).astype(float)
        groups = np.zeros(7)
        for k in (3, 5, 10):
            assert map_at_k(rel, score, groups, k=k) == pytest.approx(_brute_force(_ap, rel, score, k))
            prec = _brute_force(lambda r, k: (r >= 1).sum() / min(k, 7), rel, score, k)
            assert precision_at_k(rel, score, groups, k=k) == pytest.approx(prec)


def test_missing_scores_rank_last_and_never_crash():
    rel = np.array([1, 0, 0, 0])
    groups = np.zeros(4)
    for missing in (np.nan, -np.inf, np.inf):
        score = np.array([missing, 0.3, 0.2, 0.1])
        assert ndcg_at_k(rel, score, groups) == pytest.approx(1 / np.log2(5))  # last of four
        assert np.isfinite(auc_pr(rel, score))
        report = ranking_report(rel, score, groups)
        assert all(np.isfinite(v) for v in report.values())
    all_missing = np.full(4, np.nan)
    assert ndcg_at_k(rel, all_missing, groups) == pytest.approx(ndcg_score([rel], [np.zeros(4)], ignore_ties=False))


def test_worst_order_and_short_queries():
    rel = np.array([0, 0, 1])
    groups = np.zeros(3)
    assert ndcg_at_k(rel, np.array([3.0, 2.0, 1.0]), groups) == pytest.approx(1 / np.log2(4))
    # a query of 3 with every item relevant: P@10 over the 3 shown = 1
    assert precision_at_k(np.ones(3), np.array([3.0, 2.0, 1.0]), groups, k=10) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(4))
def test_weighted_average_precision_is_sklearns_under_bootstrap_weights(seed):
    """The bootstrap's AP (sorted once, cluster counts at each threshold) equals scikit-learn's with
    the draw's weights on every row: many ties, countries not drawn (weight 0), countries drawn twice."""
    from models.uncertainty import WeightedAP

    rng = np.random.default_rng(seed)
    n, countries = 3000, 150
    positive = rng.random(n) < 0.05
    score = np.round(rng.normal(size=n) + positive, 1 if seed % 2 else 3)  # coarse rounding: large tie groups
    country = rng.integers(0, countries, n)
    ap = WeightedAP(positive, score, country, countries)
    assert ap(np.ones(countries)) == pytest.approx(average_precision_score(positive, score), abs=1e-12)
    for _ in range(20):
        weight = np.bincount(rng.integers(0, countries, countries), minlength=countries).astype(float)
        assert (weight == 0).any() and (weight > 1).any()
        assert ap(weight) == pytest.approx(average_precision_score(positive, score, sample_weight=weight[country]), abs=1e-12)
    only_negatives = np.isin(np.arange(countries), country[positive], invert=True).astype(float)
    assert np.isnan(ap(only_negatives))  # no positive drawn: undefined, and the bootstrap leaves the year out
