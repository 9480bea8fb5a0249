"""Scores of one cell's test predictions (scikit-learn metrics), with cluster bootstrap CIs.

Chunks of one speaker (or one utterance) are not independent, so confidence intervals resample
whole test units of the task (bench/tasks/: speakers for gender, sessions for speaker ID),
never single chunks.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm

from featstore.standardize import Standardizer

SILHOUETTE_MAX = 2000  # silhouette is O(n^2): scored on a seeded subsample above this


def classification(y_true: np.ndarray, y_pred: np.ndarray, labels: list | None = None) -> dict:
    """Accuracy, macro precision / recall / F1, balanced accuracy and the confusion matrix
    (rows: true label, columns: predicted label, both in ``labels`` order)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist())) if labels is None else labels
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                     average="macro", zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        # over the classes present in y_true (sklearn's definition); warns if y_pred has others
        "balanced_accuracy": float(_quiet(skm.balanced_accuracy_score, y_true, y_pred)),
        "labels": [str(x) for x in labels],
        "confusion": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args)


def utterance_votes(
    y_pred: np.ndarray, groups: np.ndarray, proba: np.ndarray | None = None,
    classes: np.ndarray | None = None,
) -> dict:
    """Utterance -> label by majority vote over its chunks. A tie goes to the tied label with
    the highest mean predicted probability (``proba`` columns follow ``classes``), else to the
    smallest label."""
    y_pred, groups = np.asarray(y_pred), np.asarray(groups)
    out = {}
    for g in np.unique(groups):
        sel = groups == g
        values, counts = np.unique(y_pred[sel], return_counts=True)
        tied = values[counts == counts.max()]
        if len(tied) > 1 and proba is not None and classes is not None:
            mean = proba[sel].mean(axis=0)
            score = [mean[np.flatnonzero(classes == v)[0]] for v in tied]
            tied = tied[[int(np.argmax(score))]]
        out[g] = tied[0]
    return out


def utterance_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, utterances: np.ndarray,
    proba: np.ndarray | None = None, classes: np.ndarray | None = None,
) -> float:
    """Accuracy of the per-utterance majority vote (each utterance counts once)."""
    y_true, utterances = np.asarray(y_true), np.asarray(utterances)
    votes = utterance_votes(y_pred, utterances, proba, classes)
    truth = {u: y_true[utterances == u][0] for u in votes}  # one speaker per utterance
    return float(np.mean([votes[u] == truth[u] for u in votes]))


def group_accuracy(correct: np.ndarray, groups: np.ndarray) -> float:
    """Mean over groups (e.g. test speakers) of each group's share of correct chunks: every
    speaker counts once, however many chunks they brought."""
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    hits = np.bincount(inverse, weights=np.asarray(correct, dtype=float))
    return float(np.mean(hits / np.bincount(inverse)))


def bootstrap_ci(
    correct: np.ndarray, clusters: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile CI of accuracy, resampling whole clusters with replacement.

    Each resample's accuracy is (correct chunks) / (chunks) over the drawn clusters, so big
    clusters weigh as much as their chunks do in the point estimate. None when n_boot is 0."""
    if n_boot <= 0 or len(correct) == 0:
        return None
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    hits = np.bincount(inverse, weights=np.asarray(correct, dtype=float))
    sizes = np.bincount(inverse).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sizes), size=(n_boot, len(sizes)))
    acc = hits[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(acc, [alpha, 1 - alpha])
    return float(low), float(high)


def purity(y_true: np.ndarray, clusters: np.ndarray) -> float:
    """Share of rows whose cluster's most common true label is their own."""
    table = skm.cluster.contingency_matrix(np.asarray(y_true), np.asarray(clusters))
    return float(table.max(axis=0).sum() / table.sum())


def clustering(y_true: np.ndarray, clusters: np.ndarray, X: np.ndarray, seed: int) -> dict:
    """ARI, NMI, V-measure, purity and silhouette (None when undefined: one cluster, or as
    many clusters as rows). The silhouette is computed on standardised ``X`` (so one
    large-scale coefficient does not dominate the distances), on at most SILHOUETTE_MAX rows."""
    y_true, clusters = np.asarray(y_true), np.asarray(clusters)
    n_clusters = len(np.unique(clusters))
    silhouette = None
    if 2 <= n_clusters < len(clusters):
        X = np.asarray(X, dtype=np.float64)
        silhouette = float(skm.silhouette_score(
            Standardizer.fit(X).transform(X), clusters,
            sample_size=min(SILHOUETTE_MAX, len(clusters)), random_state=seed))
    return {
        "ari": float(skm.adjusted_rand_score(y_true, clusters)),
        "nmi": float(skm.normalized_mutual_info_score(y_true, clusters)),
        "v_measure": float(skm.v_measure_score(y_true, clusters)),
        "purity": purity(y_true, clusters),
        "silhouette": silhouette,
    }
