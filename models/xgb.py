"""Gradient-boosted trees (XGBoost) on vectors, early-stopped on the validation set."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Classifier, ModelSpec, as_vectors, check_fraction, check_positive, register
from .device import is_cuda


class XGBoostClassifier(Classifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive(
            "xgboost", params, "n_estimators", "learning_rate", "max_depth", "early_stopping_rounds"
        )
        check_positive("xgboost", params, "reg_lambda", "min_child_weight", allow_zero=True)
        check_fraction(
            "xgboost", params, "subsample", "colsample_bytree", low_open=True, high_open=False
        )
        super().__init__(params, seed=seed, device=device)

    def _fit(self, X: Any, y: np.ndarray, X_val: Any, y_val: np.ndarray | None) -> None:
        from xgboost import XGBClassifier  # heavy import, only when used

        p = self.params
        has_val = X_val is not None and len(X_val) > 0
        self.model_ = XGBClassifier(
            n_estimators=p["n_estimators"],
            learning_rate=p["learning_rate"],
            max_depth=p["max_depth"],
            subsample=p["subsample"],
            colsample_bytree=p["colsample_bytree"],
            reg_lambda=p["reg_lambda"],
            min_child_weight=p["min_child_weight"],
            early_stopping_rounds=p["early_stopping_rounds"] if has_val else None,
            tree_method="hist",
            device="cuda" if is_cuda(self.device) else "cpu",
            random_state=self.seed,
        )
        # trees need no standardisation; y is already encoded as 0..k-1
        eval_set = [(as_vectors(X_val), y_val)] if has_val else None
        self.model_.fit(as_vectors(X), y, eval_set=eval_set, verbose=False)
        if has_val:
            self._info["best_iteration"] = int(self.model_.best_iteration)
            self._info["best_val_logloss"] = float(self.model_.best_score)
            self._record_val_accuracy(X_val, y_val)
        self._info["n_trees"] = int(self.model_.get_booster().num_boosted_rounds())

    def predict_proba(self, X: Any) -> np.ndarray:
        self._check_fitted()
        # with early stopping, xgboost predicts with the best iteration automatically
        return self.model_.predict_proba(as_vectors(X))


register(
    ModelSpec(
        name="xgboost",
        kind="classifier",
        inputs=("vector",),
        defaults={
            "n_estimators": 500,
            "learning_rate": 0.1,
            "max_depth": 6,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            "min_child_weight": 1.0,
            "early_stopping_rounds": 20,
        },
        factory=XGBoostClassifier,
        description="XGBoost trees on vectors, early stopping on the validation set.",
    )
)
