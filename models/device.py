"""Seeding for the torch-based models (the device itself is resolved by featstore.device)."""

from __future__ import annotations

import random

import numpy as np
import torch

from featstore.device import is_cuda


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
