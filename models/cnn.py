"""A torch 2-D CNN over each chunk's frames, early-stopped on the validation set.

A chunk's frames [T, d] are one 1 x T x d image (time x coefficients), so the kernels see
neighbouring frames *and* neighbouring coefficients. The head averages over time only and
keeps the coefficient axis: which coefficient carries the energy matters (e.g. pitch-related
MFCCs), where in the 2 s chunk it happens does not.

Wide inputs are average-pooled before the first convolution to at most ``max_frames`` x
``max_bins`` (198 frames x 80 log-mel bins -> 198 x 20): adjacent mel bins are
strongly correlated, and the convolutions' cost scales with the image size.

Padding never counts: frames past a chunk's valid length (:class:`models.inputs.Frames`) are
set to the training mean (0 after scaling) and kept at 0 after every block, the time shift and
masks of the augmentation stay inside the valid frames, and the head averages over valid
positions only, so a padded chunk's prediction does not depend on what its padding holds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from featstore.standardize import Standardizer

from .inputs import Frames, as_frames
from .params import ModelConfigError, check_fraction, check_positive
from .registry import ModelSpec, register
from .torch_train import TorchClassifier, TrainConfig, check_train_params, torch_train_config


def time_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """[B, 1, T, 1] float: 1 on a chunk's valid positions."""
    pos = torch.arange(T, device=lengths.device)
    return (pos[None, :] < lengths[:, None]).to(torch.float32)[:, None, :, None]


def pooled_lengths(lengths: torch.Tensor, factor: int, T: int) -> torch.Tensor:
    """Valid positions after pooling time by ``factor`` (floor mode, ``T`` positions out): a
    pooled position is valid if its window holds a valid frame."""
    return torch.clamp(torch.div(lengths + factor - 1, factor, rounding_mode="floor"), 1, T)


class FrameCNN(nn.Module):
    def __init__(
        self, T: int, d: int, channels: tuple[int, ...], kernel: int, dropout: float, n_classes: int
    ):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.time_pools: list[int] = []
        c_in = 1
        for c in channels:
            pool = (2 if T >= 2 else 1, 2 if d >= 2 else 1)  # never pool an axis of length 1
            self.blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c, kernel, padding=kernel // 2),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(pool),
            ))
            self.time_pools.append(pool[0])
            T, d, c_in = T // pool[0], d // pool[1], c
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * d, n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, T, d], zero past each chunk's ``lengths`` [B]."""
        h = x
        for block, factor in zip(self.blocks, self.time_pools, strict=True):
            h = block(h)
            lengths = pooled_lengths(lengths, factor, h.shape[2])
            h = h * time_mask(lengths, h.shape[2])  # padding stays 0 for the next block
        # average over valid time positions, keep coefficients: [B, C, d']
        pooled = h.sum(dim=2) / lengths.to(h.dtype)[:, None, None]
        return self.head(pooled)


class CNNClassifier(TorchClassifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_train_params("cnn", params)
        check_fraction("cnn", params, "time_shift", "time_mask", "freq_mask")
        check_positive("cnn", params, "max_frames", "max_bins")
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

    def _as_input(self, X: Any) -> Frames:
        return as_frames(X)

    def _setup(self, X: Frames, w: np.ndarray) -> None:
        # scaling statistics over the valid training frames only
        frames = X.data[X.mask()]
        stats = Standardizer.fit(frames, np.repeat(w, X.lengths))
        self.mean_, self.std_ = stats.to_torch(self.device)

    def _input_pool(self, T: int, d: int) -> tuple[int, int]:
        """Average-pooling factors (time, bins) that bring the input within max_frames x
        max_bins."""
        return (math.ceil(T / self.params["max_frames"]), math.ceil(d / self.params["max_bins"]))

    def _build(self, X: Frames, n_classes: int) -> nn.Module:
        p = self.params
        self.frame_shape_ = X.shape[1:]
        self.input_pool_ = self._input_pool(*self.frame_shape_)
        T, d = (n // f for n, f in zip(self.frame_shape_, self.input_pool_, strict=True))
        self._info["input_shape"] = [T, d]
        return FrameCNN(T, d, p["channels"], p["kernel_size"], p["dropout"], n_classes)

    def _prepare(self, batch: Frames) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [B, 1, T', d'] scaled, pooled and 0 past each chunk's length; lengths [B])."""
        if batch.shape[1:] != self.frame_shape_:
            raise ValueError(f"expected frames of shape {self.frame_shape_}, got {batch.shape[1:]}")
        x = torch.from_numpy(np.ascontiguousarray(batch.data)).to(self.device, torch.float32)
        lengths = torch.from_numpy(batch.lengths).to(self.device)
        x = ((x - self.mean_) / self.std_).unsqueeze(1) * time_mask(lengths, x.shape[1])
        ft, fd = self.input_pool_
        if ft > 1 or fd > 1:
            x = nn.functional.avg_pool2d(x, (ft, fd))
            lengths = pooled_lengths(lengths, ft, x.shape[2])
        return x, lengths

    def _forward(self, module: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return module(*batch)

    def _augment(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Random circular time shift of each chunk's valid frames, then one time mask and one
        frequency mask per chunk (SpecAugment-style; masked cells are set to 0, the training
        mean after scaling). The time shift and mask stay inside the valid frames."""
        x, lengths = batch
        p = self.params
        B, _, T, d = x.shape
        dev = x.device
        pos = torch.arange(T, device=dev)[None, :]  # [1, T]
        valid = lengths[:, None]  # [B, 1]
        if p["time_shift"] > 0:
            s = int(round(p["time_shift"] * T))
            shift = torch.randint(-s, s + 1, (B, 1), device=dev)
            idx = torch.where(pos < valid, torch.remainder(pos - shift, valid), pos)  # [B, T]
            x = torch.gather(x, 2, idx[:, None, :, None].expand(B, 1, T, d))
        for frac, size, length, axis in ((p["time_mask"], T, valid, 2),
                                         (p["freq_mask"], d, torch.full_like(valid, d), 3)):
            w_max = int(round(frac * size))
            if w_max < 1:
                continue
            width = torch.minimum(torch.randint(0, w_max + 1, (B, 1), device=dev), length)
            start = (torch.rand(B, 1, device=dev) * (length - width + 1)).long()
            at = torch.arange(size, device=dev)[None, :]
            mask = (at >= start) & (at < start + width)  # [B, size]
            shape = (B, 1, size, 1) if axis == 2 else (B, 1, 1, size)
            x = x.masked_fill(mask.view(shape), 0.0)
        return x, lengths

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
            "max_frames": 200,
            "max_bins": 20,
        },
        factory=CNNClassifier,
        description="Torch 2-D CNN over time x coefficient frames, optional SpecAugment.",
        search={"weight_decay": (1e-4, 1e-2), "dropout": (0.3, 0.5)},
        iterations="max_epochs",
    )
)
