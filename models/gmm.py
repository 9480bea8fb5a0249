"""One Gaussian mixture per class, on frames or on vectors.

On frames, each class's mixture is fitted on all frames of that class's training chunks and a
chunk is scored by the mean log-likelihood of its frames (the classic GMM speaker / gender
recogniser). A vector is treated as a chunk of one frame, so both inputs share one path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.mixture import GaussianMixture

from .base import (
    Classifier,
    ModelSpec,
    check_choice,
    check_positive,
    frame_statistics,
    register,
    softmax,
)

COVARIANCE_TYPES = ("diag", "full", "tied", "spherical")


class GMMClassifier(Classifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive("gmm", params, "n_components", "max_iter", "n_init", "max_frames_per_class")
        check_positive("gmm", params, "reg_covar", allow_zero=True)
        check_choice("gmm", params, "covariance_type", COVARIANCE_TYPES)
        super().__init__(params, seed=seed, device=device)  # sklearn: always runs on the CPU

    @staticmethod
    def _as_chunks(X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 2:
            return X[:, None, :]  # vectors: one "frame" per chunk
        if X.ndim == 3:
            return X
        raise ValueError(f"expected vectors [n, d] or frames [n, T, d], got shape {X.shape}")

    def _fit(self, X: Any, y: np.ndarray, X_val: Any, y_val: np.ndarray | None) -> None:
        p = self.params
        self.input_ndim_ = np.ndim(X)
        X = self._as_chunks(X)
        mean, std = frame_statistics(X)  # training data only
        self.mean_, self.std_ = mean.astype(np.float32), std.astype(np.float32)
        rng = np.random.default_rng(self.seed)
        self.gmms_: list[GaussianMixture] = []
        per_class: dict[str, Any] = {}
        for code, label in enumerate(self.classes_):
            frames = X[y == code].reshape(-1, X.shape[2])
            if len(frames) > p["max_frames_per_class"]:  # bound EM cost on frame-level features
                keep = np.sort(rng.choice(len(frames), p["max_frames_per_class"], replace=False))
                frames = frames[keep]
            frames = self._scale(frames)
            # a class with fewer samples than components gets fewer components
            k = min(p["n_components"], len(frames))
            gmm = GaussianMixture(
                n_components=k,
                covariance_type=p["covariance_type"],
                reg_covar=p["reg_covar"],
                max_iter=p["max_iter"],
                n_init=p["n_init"],
                random_state=self.seed,
            ).fit(frames)
            self.gmms_.append(gmm)
            per_class[str(label)] = {
                "n_components": k,
                "n_frames": len(frames),
                "converged": bool(gmm.converged_),
            }
        self._info["per_class"] = per_class
        self._record_val_accuracy(X_val, y_val)

    def _scale(self, frames: np.ndarray) -> np.ndarray:
        return (frames.astype(np.float32) - self.mean_) / self.std_

    def mean_log_likelihood(self, X: Any, chunk: int = 256) -> np.ndarray:
        """[n, n_classes]: each chunk's mean per-frame log-likelihood under each class's GMM."""
        self._check_fitted()
        if np.ndim(X) != self.input_ndim_:
            raise ValueError(f"fitted on {self.input_ndim_}-D input, got shape {np.shape(X)}")
        X = self._as_chunks(X)
        out = np.empty((len(X), len(self.gmms_)))
        for i in range(0, len(X), chunk):  # bounded memory on long frame arrays
            part = X[i : i + chunk]
            frames = self._scale(part.reshape(-1, part.shape[2]))
            for c, gmm in enumerate(self.gmms_):
                out[i : i + chunk, c] = gmm.score_samples(frames).reshape(len(part), -1).mean(1)
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        return softmax(self.mean_log_likelihood(X))


register(
    ModelSpec(
        name="gmm",
        kind="classifier",
        inputs=("frames", "vector"),
        defaults={
            "n_components": 8,
            "covariance_type": "diag",
            "reg_covar": 1e-3,
            "max_iter": 200,
            "n_init": 1,
            "max_frames_per_class": 100_000,
        },
        factory=GMMClassifier,
        description="One Gaussian mixture per class; frames scored by mean log-likelihood.",
    )
)
