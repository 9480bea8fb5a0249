"""Low-pass and keep every q-th sample: the pitch extractor's way to its analysis rate.

One linear-phase FIR per factor q, a Kaiser-windowed sinc cut at the new Nyquist frequency
(24 q - 1 taps, beta 6: for q = 2 at 16 kHz, flat within 1 dB to 3.6 kHz and at least 60 dB
down from 4.7 kHz; ``tests/test_decimate.py`` holds it to that). Output sample j is centred on
input sample q j, with zeros outside the chunk, so frame positions carry over exactly. On the
CPU a numba kernel (``kernels.decimate``: polyphase, only the nonzero taps, each pair of
mirrored taps with one product; every second tap of a q = 2 filter is zero), elsewhere one
strided ``conv1d``: the same sums to float32 rounding.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

BETA = 6.0
FILTER = f"Kaiser-windowed sinc, 24 q - 1 taps, beta {BETA:g}, cut at the new Nyquist"


@cache
def taps(q: int) -> np.ndarray:
    """The filter for factor ``q`` (float64, odd length 24 q - 1, unit DC gain)."""
    half = 12 * q - 1
    n = np.arange(-half, half + 1)
    h = np.sinc(n / q) * np.kaiser(2 * half + 1, BETA)
    return h / h.sum()


@cache
def half_taps(q: int) -> tuple[np.ndarray, np.ndarray]:
    """The symmetric filter's nonzero taps at offsets >= 0, as (offsets, weights): output j
    adds weight * (x[q j - offset] + x[q j + offset]), the centre tap once."""
    h = taps(q)
    half = len(h) // 2
    keep = np.flatnonzero(np.abs(h[half:]) > 1e-12 * np.abs(h).max())
    return keep.astype(np.int64), h[half + keep].astype(np.float32)


def decimated_length(n: int, q: int) -> int:
    return -(-n // q)


def decimate(x: torch.Tensor, q: int, out: torch.Tensor, kernels=None) -> torch.Tensor:
    """``x`` [n, samples] low-passed and decimated by ``q`` into ``out`` [n,
    decimated_length(samples, q)] (a view of a larger buffer is fine); ``kernels``: the numba
    module (CPU), else the torch op."""
    if q == 1:
        return out.copy_(x)
    if kernels is not None:
        offsets, weights = half_taps(q)
        kernels.decimate(x.numpy(), q, offsets, weights, out.numpy())
        return out
    h = torch.from_numpy(taps(q).astype(np.float32)).to(x.device)
    y = F.conv1d(x.unsqueeze(1), h.view(1, 1, -1), stride=q, padding=len(h) // 2)
    return out.copy_(y.squeeze(1))
