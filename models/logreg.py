"""Baseline: scikit-learn logistic regression on standardised vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from featstore.standardize import Standardizer

from .base import Classifier
from .inputs import as_vectors
from .params import check_positive
from .registry import ModelSpec, register


class LogRegClassifier(Classifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive("logreg", params, "C", "max_iter")
        super().__init__(params, seed=seed, device=device)

    def _fit(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any, y_val: np.ndarray | None,
             w_val: np.ndarray | None) -> None:
        p = self.params
        X = as_vectors(X, np.float64)
        self.scaler_ = Standardizer.fit(X, w)  # training data only
        self.model_ = LogisticRegression(C=p["C"], max_iter=p["max_iter"], random_state=self.seed)
        self.model_.fit(self.scaler_.transform(X), y, sample_weight=w)
        self._info["n_iter"] = int(np.max(self.model_.n_iter_))
        self._record_val_accuracy(X_val, y_val, w_val)

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self.model_.predict_proba(self.scaler_.transform(as_vectors(X, np.float64)))


register(
    ModelSpec(
        name="logreg",
        uses_gpu=False,
        kind="classifier",
        inputs=("vector",),
        defaults={"C": 1.0, "max_iter": 1000},
        factory=LogRegClassifier,
        description="Baseline: logistic regression on standardised vectors.",
        search={"C": (0.01, 0.1, 1.0, 10.0)},
    )
)
