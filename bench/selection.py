"""Model selection inside the training data only, then one refit.

``cv`` (default): the split's train and validation parts together are the training data. A
grouped, stratified K-fold over it (``StratifiedGroupKFold``; groups: speakers for gender,
recording sessions or utterances for speaker ID, so no group is on both sides of a fold)
scores every candidate of the model's search grid by weighted accuracy on the held-out fold,
early-stopping iterative models (trees, epochs) on that fold. The candidate with the best mean
score wins; its number of trees / epochs is the mean best iteration over the folds; the model
is then refit on all training data with exactly those settings, without early stopping, and
predicts the test part once.

``validation``: every candidate is trained on the train part, early-stopped and scored on the
one validation part; the best fitted model is kept as it is (no refit). Cheaper, noisier: for
models too costly to fit K times per candidate (hf-finetune).

The test part is never seen here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, ParameterGrid, StratifiedGroupKFold

import models

METHODS = ("cv", "validation")


@dataclass
class TrainingData:
    X: np.ndarray
    y: np.ndarray
    w: np.ndarray  # row weights (bench.weights)
    groups: np.ndarray  # what may not cross an inner fold

    def take(self, idx: np.ndarray) -> TrainingData:
        return TrainingData(self.X[idx], self.y[idx], self.w[idx], self.groups[idx])


@dataclass
class Selection:
    method: str
    chosen: dict  # the settings picked here (grid values and the number of iterations)
    score: float | None  # mean held-out weighted accuracy of the chosen candidate
    folds: int = 0
    candidates: list[dict] = field(default_factory=list)
    iterations: str | None = None  # the model's iterations parameter (ModelSpec.iterations)

    def to_dict(self) -> dict:
        return {"method": self.method, "folds": self.folds, "chosen": self.chosen,
                "score": self.score, "candidates": self.candidates,
                "iterations": self.iterations}


def candidates(search: dict[str, list]) -> list[dict]:
    """Every combination of the grid, in a fixed order (the defaults alone when empty)."""
    return list(ParameterGrid({k: list(v) for k, v in search.items()})) if search else [{}]


def inner_folds(data: TrainingData, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped stratified folds (plain grouped folds when a class has fewer rows than folds,
    which StratifiedGroupKFold cannot take); validation rows whose label no fold-training row
    has are dropped (a closed-set model cannot be scored on them)."""
    k = min(k, len(np.unique(data.groups)))
    if k < 2:
        raise ValueError("model selection needs at least 2 groups in the training data")
    smallest = np.unique(data.y, return_counts=True)[1].min()
    kind = StratifiedGroupKFold if smallest >= k else GroupKFold
    splitter = kind(n_splits=k, shuffle=True, random_state=seed)
    out = []
    with warnings.catch_warnings():  # "least populated class has only n members": expected
        warnings.simplefilter("ignore", UserWarning)
        for tr, va in splitter.split(data.X, data.y, data.groups):
            va = va[np.isin(data.y[va], data.y[tr])]
            if len(va):
                out.append((tr, va))
    return out


def _score(model: Any, data: TrainingData) -> float:
    return float(np.average(model.predict(data.X) == data.y, weights=data.w))


def _iterations(spec: models.ModelSpec, found: list) -> dict:
    """{iterations parameter: mean best iteration} for iterative models (each model reports the
    iterations it would use, its own floors included)."""
    found = [i for i in found if i is not None]
    if spec.iterations is None or not found:
        return {}
    return {spec.iterations: max(1, int(round(float(np.mean(found)))))}


def fit_cv(name: str, params: dict, search: dict, data: TrainingData, *, folds: int, seed: int,
           device: str) -> tuple[Any, Selection]:
    spec = models.spec_of(name)
    grid = candidates(search)
    if len(grid) == 1 and spec.iterations is None:  # nothing to choose: fit once
        model = models.make_model(name, {**params, **grid[0]}, seed=seed, device=device)
        return (model.fit(data.X, data.y, data.w),
                Selection("cv", dict(grid[0]), None, iterations=spec.iterations))
    splits = inner_folds(data, folds, seed)
    results = []
    for cand in grid:
        scores, iters = [], []
        for tr, va in splits:
            model = models.make_model(name, {**params, **cand}, seed=seed, device=device)
            inner, held = data.take(tr), data.take(va)
            model.fit(inner.X, inner.y, inner.w, X_val=held.X, y_val=held.y, val_weight=held.w)
            scores.append(_score(model, held))
            iters.append(model.info().get("best_iteration"))
        results.append({"params": cand, "score": float(np.mean(scores)),
                        "score_std": float(np.std(scores)), "iterations": iters})
    best = max(range(len(results)), key=lambda i: (results[i]["score"], -i))  # ties: first
    chosen = {**results[best]["params"], **_iterations(spec, results[best]["iterations"])}
    model = models.make_model(name, {**params, **chosen}, seed=seed, device=device)
    model.fit(data.X, data.y, data.w)
    return model, Selection("cv", chosen, results[best]["score"], len(splits), results,
                            spec.iterations)


def fit_validation(name: str, params: dict, search: dict, train: TrainingData,
                   val: TrainingData | None, *, seed: int, device: str) -> tuple[Any, Selection]:
    spec = models.spec_of(name)
    if val is None:  # nothing to select on: the parameters as given
        model = models.make_model(name, params, seed=seed, device=device)
        return (model.fit(train.X, train.y, train.w),
                Selection("validation", {}, None, iterations=spec.iterations))
    best_model, best_score, results, chosen = None, -np.inf, [], {}
    for cand in candidates(search):
        model = models.make_model(name, {**params, **cand}, seed=seed, device=device)
        model.fit(train.X, train.y, train.w, X_val=val.X, y_val=val.y, val_weight=val.w)
        score = _score(model, val)
        iterations = model.info().get("best_iteration")
        results.append({"params": cand, "score": score, "iterations": [iterations]})
        if score > best_score:
            best_model, best_score = model, score
            chosen = {**cand, **_iterations(spec, [iterations])}
    return best_model, Selection("validation", chosen, float(best_score), 1, results,
                                 spec.iterations)
