"""Masked pooling over time: the one implementation of "mean and population std of each frame
sequence over the frames that cover real (non-padded) audio".

Used by the wav2vec2 extractor (torch, on the device), the bench ``mfcc`` view and the EDA
(numpy). Both functions take numpy arrays or torch tensors; this module never imports torch (a
tensor argument means it is loaded already), so numpy callers stay light.

Arithmetic follows the inputs' dtypes, so each caller keeps its precision: float32 frames with
a float32 count stay float32 (wav2vec2); float32 frames with an integer count are summed in
float32 and divided in float64 (numpy promotion: the ``mfcc`` view); float64 frames stay
float64 (EDA).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def _torch(x: Any) -> Any:
    """The torch module if ``x`` is a tensor, else None (a tensor implies torch is imported)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None


def frame_shift(params: dict) -> int:
    """Samples between frame starts as a frame-level feature recorded them in its params
    (``frame_shift``; stores written before that key give their ``hop_length``), never guessed."""
    shift = params.get("frame_shift", params.get("hop_length"))
    if shift is None:
        raise KeyError("the feature's params record no frame_shift")
    return int(shift)


def valid_frames(n_samples: Any, hop: int, n_frames: int) -> Any:
    """Frames covering real audio per chunk: ceil(n_samples / hop) clipped to [1, n_frames].

    For centred frames (MFCC: frame t sits at sample t * hop) these are the frames whose centre
    lies in real audio; for wav2vec2 (frame t starts at sample t * hop) the frames whose
    receptive field starts inside it. numpy: computed in float64, returned as int64. torch: in
    the tensor's dtype on its device, returned in that dtype (pass a float tensor).
    """
    if _torch(n_samples) is not None:
        return (n_samples / hop).ceil().clamp(1, n_frames)
    n = np.ceil(np.asarray(n_samples, dtype=np.float64) / hop).astype(np.int64)
    return np.clip(n, 1, n_frames)


def masked_mean_std(x: Any, n_valid: Any, axis: int = 1) -> tuple[Any, Any]:
    """(mean, population std) over time ``axis`` of ``x``, counting for each row ``i`` (the
    leading axis) only its first ``n_valid[i]`` frames; the rest never affect the result.

    ``x``: [rows, ..., frames, ...] numpy array or torch tensor (e.g. [B, T, D] or
    [B, layers, T, D]); ``n_valid``: [rows] counts, at least 1, of the same library (as
    ``valid_frames`` returns). Returns two arrays of ``x``'s shape without ``axis``; their dtype
    is the promotion of ``x``'s and ``n_valid``'s (see the module docstring).
    """
    torch = _torch(x)
    x = x if torch is not None else np.asarray(x)
    ndim = x.ndim
    axis = axis % ndim
    if axis == 0:
        raise ValueError("axis 0 holds the rows; time must be another axis")
    frames = x.shape[axis]
    rows = (-1,) + (1,) * (ndim - 1)  # n_valid broadcast against x
    counts = (-1,) + (1,) * (ndim - 2)  # n_valid broadcast against the pooled result
    time = (frames,) + (1,) * (ndim - 1 - axis)  # frame index broadcast against x
    if torch is None:
        n = np.asarray(n_valid)
        mask = (np.arange(frames).reshape(time) < n.reshape(rows)).astype(x.dtype)
    else:
        n = torch.as_tensor(n_valid, device=x.device)
        mask = (torch.arange(frames, device=x.device).reshape(time) < n.reshape(rows)).to(x.dtype)
    n = n.reshape(counts)
    mean = (x * mask).sum(axis) / n
    expand = (slice(None),) * axis + (None,)
    var = (((x - mean[expand]) * mask) ** 2).sum(axis) / n
    return mean, (np.sqrt(var) if torch is None else var.sqrt())


def deltas(x: np.ndarray, n_valid: np.ndarray, width: int = 2) -> np.ndarray:
    """Kaldi / HTK regression deltas over time (axis 1) of [rows, frames, d]:
    sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2) for n = 1..width, with row i's frame index
    clamped to its own [0, n_valid[i] - 1], so the padded frames after them are never read
    (their deltas are those of the last real frame's neighbourhood and are to be masked)."""
    x = np.asarray(x)
    t = np.arange(x.shape[1])
    last = np.asarray(n_valid).reshape(-1, 1) - 1
    out = np.zeros_like(x)
    for n in range(1, width + 1):
        ahead = np.minimum(t + n, last)[..., None]
        behind = np.clip(t - n, 0, last)[..., None]
        out += n * (np.take_along_axis(x, ahead, 1) - np.take_along_axis(x, behind, 1))
    return out / (2 * sum(n * n for n in range(1, width + 1)))
