"""Baseline: scikit-learn logistic regression on standardised vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .base import Classifier, ModelSpec, as_vectors, check_positive, register


class LogRegClassifier(Classifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive("logreg", params, "C", "max_iter")
        super().__init__(params, seed=seed, device=device)

    def _fit(self, X: Any, y: np.ndarray, X_val: Any, y_val: np.ndarray | None) -> None:
        p = self.params
        # scaler inside the pipeline: statistics come from the training data only
        self.pipe_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=p["C"], max_iter=p["max_iter"], random_state=self.seed),
        )
        self.pipe_.fit(as_vectors(X, np.float64), y)
        self._info["n_iter"] = int(np.max(self.pipe_[-1].n_iter_))
        self._record_val_accuracy(X_val, y_val)

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return self.pipe_.predict_proba(as_vectors(X, np.float64))


register(
    ModelSpec(
        name="logreg",
        kind="classifier",
        inputs=("vector",),
        defaults={"C": 1.0, "max_iter": 1000},
        factory=LogRegClassifier,
        description="Baseline: logistic regression on standardised vectors.",
    )
)
