"""The one standardiser: per-feature mean and scale, learned from training data only.

Shared by the models, the EDA and bench's clustering scores; it lives in featstore, the base
layer, so none of them has to import the models package (and torch) to use it.

Used on vectors [n, d] and on frames [n, T, d] (statistics over all frames of all rows), with
optional per-row sample weights, so that a speaker with many chunks does not set the scale.
Statistics are accumulated in float64 blocks: a large float16 frame array is never copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BLOCK = 512  # rows per float64 block


@dataclass(frozen=True)
class Standardizer:
    mean: np.ndarray  # [d] float64
    scale: np.ndarray  # [d] float64; 1 where a feature is constant (centred, not blown up)

    @classmethod
    def fit(cls, X: Any, sample_weight: np.ndarray | None = None) -> Standardizer:
        X = np.asarray(X)
        if X.ndim not in (2, 3):
            raise ValueError(f"expected [n, d] or [n, T, d], got shape {X.shape}")
        d = X.shape[-1]
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
        total, sq, mass = np.zeros(d), np.zeros(d), 0.0
        for i in range(0, len(X), BLOCK):
            part = X[i : i + BLOCK].astype(np.float64).reshape(-1, d)
            frames = part.shape[0] // max(len(X[i : i + BLOCK]), 1)  # frames per row (1: vectors)
            wf = np.repeat(w[i : i + BLOCK], frames)
            total += wf @ part
            sq += wf @ part**2
            mass += wf.sum()
        mean = total / max(mass, 1e-300)
        std = np.sqrt(np.maximum(sq / max(mass, 1e-300) - mean**2, 0.0))
        std[std < 1e-8] = 1.0
        return cls(mean, std)

    def transform(self, X: Any) -> np.ndarray:
        """float32, same shape as ``X``."""
        X = np.asarray(X)
        return ((X - self.mean) / self.scale).astype(np.float32)

    def to_torch(self, device: str) -> tuple[Any, Any]:
        """(mean, scale) as float32 tensors on ``device``, for per-batch scaling on the GPU."""
        import torch

        return (torch.as_tensor(self.mean, dtype=torch.float32, device=device),
                torch.as_tensor(self.scale, dtype=torch.float32, device=device))
