"""Baseline: always predict the most frequent (by weight) training class."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Classifier
from .registry import ModelSpec, register


class MajorityClassifier(Classifier):
    """predict_proba returns the (weighted) training class priors for every row."""

    min_classes = 1

    def _fit(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any, y_val: np.ndarray | None,
             w_val: np.ndarray | None) -> None:
        mass = np.bincount(y, weights=w, minlength=len(self.classes_))
        self.prior_ = mass / mass.sum()
        self._info["majority_class"] = self.classes_[int(np.argmax(mass))]
        self._record_val_accuracy(X_val, y_val, w_val)

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        n = len(X)  # any input kind: only the row count matters
        return np.tile(self.prior_, (n, 1))


register(
    ModelSpec(
        name="majority",
        uses_gpu=False,
        kind="classifier",
        inputs=("vector", "frames", "audio"),
        defaults={},
        factory=MajorityClassifier,
        description="Baseline: predicts the most frequent training class.",
    )
)
