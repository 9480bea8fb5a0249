"""Device resolution and seeding shared by the torch-based models."""

from __future__ import annotations

import random

import numpy as np
import torch

from .base import ModelConfigError


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when available else "cpu"; an unavailable CUDA device is a config error."""
    if not isinstance(device, str):
        raise ModelConfigError(f"device must be a string, got {type(device).__name__}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelConfigError(
                f"device {device!r} requested but CUDA is not available; use cpu or auto"
            )
        try:
            torch.device(device)
        except RuntimeError as e:
            raise ModelConfigError(f"invalid device {device!r}: {e}") from None
        return device
    raise ModelConfigError(f"invalid device {device!r}; use cpu, cuda, cuda:N or auto")


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def seed_everything(seed: int, device: str) -> None:
    """Seed python / numpy / torch before building and training a network.

    cuDNN's deterministic mode is cheap for these small models, so it is always on for CUDA;
    full ``torch.use_deterministic_algorithms`` is not forced (it is global and needs env setup).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if is_cuda(device):
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
