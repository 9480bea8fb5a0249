"""A torch MLP on standardised vectors, early-stopped on the validation set."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from featstore.standardize import Standardizer

from .inputs import as_vectors
from .params import ModelConfigError
from .registry import ModelSpec, register
from .torch_train import TorchClassifier, TrainConfig, check_train_params, torch_train_config


class MLPClassifier(TorchClassifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_train_params("mlp", params)
        sizes = params["hidden_sizes"]
        if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in sizes):
            raise ModelConfigError(
                f"model 'mlp': hidden_sizes must be positive ints, got {sizes!r}"
            )
        super().__init__(params, seed=seed, device=device)

    def _as_input(self, X: Any) -> np.ndarray:
        return as_vectors(X)

    def _setup(self, X: np.ndarray, w: np.ndarray) -> None:
        # standardisation statistics from the (weighted) training data only, applied per batch
        # on the device
        self.mean_, self.scale_ = Standardizer.fit(X, w).to_torch(self.device)

    def _build(self, X: np.ndarray, n_classes: int) -> nn.Module:
        layers: list[nn.Module] = []
        width = X.shape[1]
        for h in self.params["hidden_sizes"]:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(self.params["dropout"])]
            width = h
        layers.append(nn.Linear(width, n_classes))
        return nn.Sequential(*layers)

    def _prepare(self, batch: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        return (x - self.mean_) / self.scale_

    def _train_config(self) -> TrainConfig:
        return torch_train_config(self.params)


register(
    ModelSpec(
        name="mlp",
        kind="classifier",
        inputs=("vector",),
        defaults={
            "hidden_sizes": (256, 128),
            "dropout": 0.2,
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "max_epochs": 200,
            "batch_size": 64,
            "patience": 15,
        },
        factory=MLPClassifier,
        description="Torch MLP on standardised vectors, early stopping on validation loss.",
        search={"weight_decay": (1e-4, 1e-2), "dropout": (0.2, 0.5)},
        iterations="max_epochs",
    )
)
