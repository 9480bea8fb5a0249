"""Metric values on hand-made predictions, against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bench import metrics
from bench.compare import mcnemar

Y_TRUE = np.array(["a", "a", "a", "b", "b", "c"])
Y_PRED = np.array(["a", "a", "b", "b", "c", "c"])


def test_classification_metrics_by_hand():
    m = metrics.classification(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class (P, R, F1): a (1, 2/3, 0.8), b (1/2, 1/2, 1/2), c (1/2, 1, 2/3)
    assert m["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["balanced_accuracy"] == pytest.approx(13 / 18)  # mean per-class recall
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["labels"] == ["a", "b", "c"]


def test_confusion_keeps_label_order_and_absent_labels():
    m = metrics.classification(np.array(["F", "F"]), np.array(["F", "F"]), ["M", "F"])
    assert m["confusion"] == [[0, 0], [0, 2]] and m["labels"] == ["M", "F"]


def test_utterance_majority_vote():
    utts = np.array(["u1", "u1", "u1", "u2", "u2", "u3"])
    # u1: a,a,b -> a (right); u2: b,c tie -> smallest label b (right); u3: c (right)
    assert metrics.utterance_accuracy(Y_TRUE, Y_PRED, utts) == pytest.approx(1.0)
    # the same tie, broken by mean probability in favour of c: u2 becomes wrong
    classes = np.array(["a", "b", "c"])
    proba = np.tile([0.2, 0.3, 0.5], (6, 1))
    assert metrics.utterance_accuracy(Y_TRUE, Y_PRED, utts, proba, classes) == pytest.approx(2 / 3)
    # a strict majority is never overturned by probabilities
    votes = metrics.utterance_votes(Y_PRED, utts, np.tile([0.0, 1.0, 0.0], (6, 1)), classes)
    assert votes["u1"] == "a"


def test_purity_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    clusters = np.array([1, 1, 0, 0, 0, 2])
    # cluster 1 {0,0}: 2; cluster 0 {0,1,1}: 2; cluster 2 {2}: 1 -> 5/6
    assert metrics.purity(y, clusters) == pytest.approx(5 / 6)


def test_clustering_metrics_of_a_relabelled_perfect_clustering():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    X = rng.normal(size=(60, 4)) + 10 * y[:, None]
    m = metrics.clustering(y, (y + 1) % 3, X, seed=0)
    assert m["ari"] == pytest.approx(1) and m["nmi"] == pytest.approx(1)
    assert m["v_measure"] == pytest.approx(1) and m["purity"] == pytest.approx(1)
    assert 0.5 < m["silhouette"] <= 1
    assert metrics.clustering(y, np.zeros(60, int), X, seed=0)["silhouette"] is None


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(30), rng.integers(1, 8, size=30))
    correct = rng.random(len(clusters)) < 0.7
    ci = metrics.bootstrap_ci(correct, clusters, 1000, seed=5)
    low, high = ci
    assert low <= correct.mean() <= high and high - low < 0.5
    assert metrics.bootstrap_ci(correct, clusters, 1000, seed=5) == ci
    assert metrics.bootstrap_ci(correct, clusters, 1000, seed=6) != ci
    assert metrics.bootstrap_ci(correct, clusters, 0, seed=5) is None
    assert metrics.bootstrap_ci(np.ones(10, bool), np.arange(10), 200, seed=0) == (1.0, 1.0)


def test_bootstrap_resamples_clusters_not_chunks():
    # two speakers of 10 chunks, one all right, one all wrong: a resample's accuracy can
    # only be 0, 1/2 or 1, and the 95% CI spans [0, 1] (chunk resampling would be ~[0.3, 0.7])
    correct = np.repeat([True, False], 10)
    clusters = np.repeat(["s1", "s2"], 10)
    assert metrics.bootstrap_ci(correct, clusters, 2000, seed=0) == (0.0, 1.0)


def test_exact_mcnemar():
    a = np.array([True] * 10 + [False] * 2 + [True] * 5)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5)
    a_only, b_only, p = mcnemar(a, b)
    assert (a_only, b_only) == (10, 2)
    # two-sided exact binomial: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * 79 / 4096
    assert p == pytest.approx(2 * 79 / 4096)
    assert mcnemar(a, a)[2] == 1.0
