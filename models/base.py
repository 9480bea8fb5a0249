"""The two model contracts, after scikit-learn's estimators.

Classifiers: ``fit(X, y, sample_weight=None, *, X_val=None, y_val=None, val_weight=None)``
returns ``self``; ``predict(X)``; ``predict_proba(X)`` with columns in ``classes_`` order;
``info()``; ``get_params()``. ``sample_weight`` weighs each training row in the loss (bench
uses it so that every training speaker, or every class, counts equally); the validation part is
only for early stopping and is weighted by ``val_weight`` the same way. A model early-stopped
on validation data reports ``best_iteration`` (trees / epochs to use) in ``info()``.

Clusterers: ``fit_predict(X, n_clusters)``, ``transform(X)`` (2-D), ``plot(X, y_true, path)``
and ``info()``.

Learned state ends in ``_`` and exists only after fitting; randomness comes from ``seed``
(``random_state``) alone.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise, numerically stable."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def jsonable(obj: Any) -> Any:
    """numpy scalars / arrays and tuples -> plain JSON types, for the results file."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def check_weights(w: Any, n: int, what: str = "sample_weight") -> np.ndarray:
    """Non-negative finite weights, one per row, not all zero, scaled to mean 1 (so a weighted
    loss keeps the scale, and the learning rate its meaning); None -> all ones."""
    if w is None:
        return np.ones(n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{what} must have one weight per row ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ValueError(f"{what} must be finite, >= 0 and not all 0")
    return w / w.mean()


class Estimator:
    """What both contracts share: parameters, seed, device, ``info()``."""

    name = ""  # set by make_model

    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        self.params = dict(params)
        self.seed = seed
        self.device = device
        self._info: dict[str, Any] = {}

    @property
    def random_state(self) -> int:
        return self.seed

    def get_params(self) -> dict:
        """The parameters this model was built with (``clone`` rebuilds it from them)."""
        return dict(self.params)

    def info(self) -> dict:
        return jsonable(
            {"device": self.device, "seed": self.seed, "params": self.params, **self._info}
        )


class Classifier(Estimator, abc.ABC):
    """Label encoding, weight and validation-set checks shared by every classifier.

    Subclasses implement ``_fit(X, y, w, X_val, y_val, w_val)`` on integer codes ``0..k-1``
    (``w``: weights of mean 1; ``X_val``/``y_val``/``w_val`` may be ``None``) and
    ``predict_proba``.
    """

    min_classes = 2
    classes_: np.ndarray | None = None

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, X_val: Any = None,
            y_val: Any = None, val_weight: Any = None) -> Classifier:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}"
            )
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        w = check_weights(sample_weight, len(y))
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < self.min_classes:
            raise ValueError(
                f"need at least {self.min_classes} classes in y, got {list(self.classes_)}"
            )
        val_codes = w_val = None
        if y_val is not None:
            y_val = np.asarray(y_val)
            if y_val.ndim != 1 or len(y_val) != len(X_val):
                raise ValueError("y_val must be 1-D with one label per row of X_val")
            val_codes = self._encode(y_val)
            w_val = check_weights(val_weight, len(y_val), "val_weight")
        self._info = {}
        self._fit(X, codes.astype(np.int64), w, X_val, val_codes, w_val)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @abc.abstractmethod
    def predict_proba(self, X: Any) -> np.ndarray: ...

    @abc.abstractmethod
    def _fit(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any, y_val: np.ndarray | None,
             w_val: np.ndarray | None) -> None: ...

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels -> codes of ``classes_``; a label unseen in training is an error."""
        self._check_fitted()
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unseen = self.classes_[idx] != y
        if np.any(unseen):
            raise ValueError(
                f"labels not seen in training: {sorted(set(np.asarray(y)[unseen].tolist()))}"
            )
        return idx.astype(np.int64)

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _record_val_accuracy(self, X_val: Any, y_val: np.ndarray | None,
                             w_val: np.ndarray | None) -> None:
        """Weighted validation accuracy, for models that do not use the validation set while
        training."""
        if X_val is not None:
            pred = np.argmax(self.predict_proba(X_val), axis=1)
            self._info["val_accuracy"] = float(np.average(pred == y_val, weights=w_val))


class Clusterer(Estimator, abc.ABC):
    """Unsupervised: ``fit_predict(X, n_clusters)``, ``transform(X)`` to 2-D, ``plot``, ``info``."""

    @abc.abstractmethod
    def fit_predict(self, X: Any, n_clusters: int) -> np.ndarray: ...

    @abc.abstractmethod
    def transform(self, X: Any) -> np.ndarray: ...

    @abc.abstractmethod
    def plot(self, X: Any, y_true: Any, path: str) -> None: ...
