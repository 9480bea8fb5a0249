"""A torch 2-D CNN over each chunk's frames, early-stopped on the validation set.

A chunk's frames [T, d] are one 1 x T x d image (time x coefficients), so the kernels see
neighbouring frames *and* neighbouring coefficients. The head averages over time only and
keeps the coefficient axis: which coefficient carries the energy matters (e.g. pitch-related
MFCCs), where in the 2 s chunk it happens does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from featstore.standardize import Standardizer

from .inputs import as_frames
from .params import ModelConfigError, check_fraction
from .registry import ModelSpec, register
from .torch_train import TorchClassifier, TrainConfig, check_train_params, torch_train_config


class FrameCNN(nn.Module):
    def __init__(
        self, T: int, d: int, channels: tuple[int, ...], kernel: int, dropout: float, n_classes: int
    ):
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 1
        for c in channels:
            pool = (2 if T >= 2 else 1, 2 if d >= 2 else 1)  # never pool an axis of length 1
            blocks += [
                nn.Conv2d(c_in, c, kernel, padding=kernel // 2),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(pool),
            ]
            T, d, c_in = T // pool[0], d // pool[1], c
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * d, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, 1, T, d]
        h = self.features(x)  # [B, C, T', d']
        return self.head(h.mean(dim=2))  # average over time, keep coefficients


class CNNClassifier(TorchClassifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_train_params("cnn", params)
        check_fraction("cnn", params, "time_shift", "time_mask", "freq_mask")
        ch = params["channels"]
        if not ch or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in ch):
            raise ModelConfigError(
                f"model 'cnn': channels must be a non-empty list of positive ints, got {ch!r}"
            )
        k = params["kernel_size"]
        if k < 1 or k % 2 == 0:
            raise ModelConfigError(
                f"model 'cnn': kernel_size must be a positive odd int, got {k!r}"
            )
        super().__init__(params, seed=seed, device=device)

    def _as_input(self, X: Any) -> np.ndarray:
        return as_frames(X)

    def _setup(self, X: np.ndarray, w: np.ndarray) -> None:
        self.mean_, self.std_ = Standardizer.fit(X, w).to_torch(self.device)  # training frames

    def _build(self, X: np.ndarray, n_classes: int) -> nn.Module:
        p = self.params
        self.frame_shape_ = X.shape[1:]
        return FrameCNN(
            X.shape[1], X.shape[2], p["channels"], p["kernel_size"], p["dropout"], n_classes
        )

    def _prepare(self, batch: np.ndarray) -> torch.Tensor:
        if batch.shape[1:] != self.frame_shape_:
            raise ValueError(f"expected frames of shape {self.frame_shape_}, got {batch.shape[1:]}")
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, torch.float32)
        return ((x - self.mean_) / self.std_).unsqueeze(1)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Random circular time shift, then one time mask and one frequency mask per chunk
        (SpecAugment-style; masked cells are set to 0, the training mean after scaling)."""
        p = self.params
        B, _, T, d = x.shape
        dev = x.device
        if p["time_shift"] > 0:
            s = int(round(p["time_shift"] * T))
            shift = torch.randint(-s, s + 1, (B, 1), device=dev)
            idx = (torch.arange(T, device=dev)[None, :] - shift) % T  # [B, T]
            x = torch.gather(x, 2, idx[:, None, :, None].expand(B, 1, T, d))
        for frac, length, axis in ((p["time_mask"], T, 2), (p["freq_mask"], d, 3)):
            w_max = int(round(frac * length))
            if w_max < 1:
                continue
            width = torch.randint(0, w_max + 1, (B, 1), device=dev)
            start = (torch.rand(B, 1, device=dev) * (length - width + 1)).long()
            pos = torch.arange(length, device=dev)[None, :]
            mask = (pos >= start) & (pos < start + width)  # [B, length]
            shape = (B, 1, length, 1) if axis == 2 else (B, 1, 1, length)
            x = x.masked_fill(mask.view(shape), 0.0)
        return x

    def _train_config(self) -> TrainConfig:
        return torch_train_config(self.params)


register(
    ModelSpec(
        name="cnn",
        kind="classifier",
        inputs=("frames",),
        defaults={
            "channels": (16, 32, 64),
            "kernel_size": 3,
            "dropout": 0.3,
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "max_epochs": 60,
            "batch_size": 32,
            "patience": 8,
            "augment": False,
            "time_shift": 0.1,
            "time_mask": 0.1,
            "freq_mask": 0.15,
        },
        factory=CNNClassifier,
        description="Torch 2-D CNN over time x coefficient frames, optional SpecAugment.",
        search={"weight_decay": (1e-4, 1e-2), "dropout": (0.3, 0.5)},
        iterations="max_epochs",
    )
)
