"""The one device resolver: featstore build, bench and the models all call it."""

from __future__ import annotations

import re

from featstore.errors import UserError

VALID = "auto, cpu, cuda, cuda:N"


def is_valid(device: object) -> bool:
    """Whether ``device`` is spelled right (without asking torch whether it exists)."""
    return isinstance(device, str) and (device in ("auto", "cpu", "cuda")
                                        or re.fullmatch(r"cuda:\d+", device) is not None)


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cpu', 'cuda' and 'cuda:N' are
    checked against what torch sees. A bad or unavailable device is a one-line UserError."""
    if not is_valid(device):
        raise UserError(f"invalid device {device!r}; use {VALID}")
    if device == "cpu":
        return device
    import torch  # heavy: only when a GPU may be involved

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UserError(f"device {device!r}: no CUDA GPU is visible to torch; use cpu or auto")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise UserError(f"device {device!r}: torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")
