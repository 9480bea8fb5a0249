"""Seeding for the torch-based models (the device itself is resolved by featstore.device)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def torch_threads(n: int | None, device: str) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (then restore the count); nothing on CUDA or
    when ``n`` is None. Small networks (mlp, cnn on a few thousand chunks) are faster on one
    thread than on two: each batch is too small to split, and a second thread that spins on a
    core another process needs makes a fit several times slower (docs/speed-bench.md)."""
    if n is None or is_cuda(device):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
