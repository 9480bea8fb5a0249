"""SUPERB's layer-weighted sum as a probe: softmax-normalised learnable weights over the layers
of an upstream's pooled states (``NAME:layers`` views, [n, L, d]), then a linear head (or a small
MLP with ``hidden_sizes``), trained end to end with the usual torch loop.

The weights start at zero (uniform: the ``NAME:all`` average), so what they learn is read
against that start; ``info()`` records them per seed (``layer_weights``, one per layer in the
view's order) for the report's layer plot. Each layer's [mean | std] is standardised with the
training data's statistics first, so no layer wins by scale alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from featstore.standardize import Standardizer

from .params import ModelConfigError
from .registry import ModelSpec, register
from .torch_train import TorchClassifier, TrainConfig, check_train_params, torch_train_config


def as_layers(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"expected layer input [n, layers, d], got shape {X.shape}")
    return X.astype(np.float32, copy=False)


class LayerWeightedHead(nn.Module):
    def __init__(self, n_layers: int, width: int, hidden: tuple[int, ...], n_classes: int,
                 dropout: float) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_layers))
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*layers, nn.Linear(width, n_classes))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, L, d]
        return self.head(torch.einsum("l,bld->bd", self.weights(), x))


class LayerWeightsClassifier(TorchClassifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_train_params("layer-weights", params)
        sizes = params["hidden_sizes"]
        if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in sizes):
            raise ModelConfigError(
                f"model 'layer-weights': hidden_sizes must be positive ints, got {sizes!r}")
        super().__init__(params, seed=seed, device=device)

    def _as_input(self, X: Any) -> np.ndarray:
        return as_layers(X)

    def _setup(self, X: np.ndarray, w: np.ndarray) -> None:
        n, layers, d = X.shape
        mean, scale = Standardizer.fit(X.reshape(n, layers * d), w).to_torch(self.device)
        self.mean_, self.scale_ = mean.reshape(layers, d), scale.reshape(layers, d)

    def _build(self, X: np.ndarray, n_classes: int) -> nn.Module:
        return LayerWeightedHead(X.shape[1], X.shape[2], tuple(self.params["hidden_sizes"]),
                                 n_classes, self.params["dropout"])

    def _prepare(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        return (x - self.mean_) / self.scale_

    def _train_config(self) -> TrainConfig:
        return torch_train_config(self.params)

    def _fit(self, X, y, w, X_val, y_val, w_val) -> None:
        super()._fit(X, y, w, X_val, y_val, w_val)
        self._info["layer_weights"] = self.net_.weights().detach().cpu().tolist()


register(
    ModelSpec(
        name="layer-weights",
        kind="classifier",
        inputs=("layers",),
        defaults={
            "hidden_sizes": (),
            "dropout": 0.1,
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "max_epochs": 100,
            "batch_size": 64,
            "patience": 10,
        },
        factory=LayerWeightsClassifier,
        description="SUPERB-style softmax layer weights over an upstream's pooled layers "
                    "(NAME:layers views), then a linear head (hidden_sizes: a small MLP); "
                    "records the learned weights per seed.",
        search={"weight_decay": (1e-4, 1e-2)},
        iterations="max_epochs",
    )
)
