"""Input coercion: what each input kind must look like before a model sees it.

"vector" = [n, d] float, "frames" = [n, T, d] per-chunk frame sequences, "audio" =
[n, samples] int16 or float waveforms at 16 kHz, "layers" = [n, L, d] one pooled vector per
layer of an upstream.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INPUT_KINDS = ("vector", "frames", "audio", "layers")


def as_vectors(X: Any, dtype: Any = np.float32) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected vector input [n, d], got shape {X.shape}")
    return X.astype(dtype, copy=False)


def as_frames(X: Any) -> np.ndarray:
    """Frames stay in their stored dtype (often float16); models convert per batch."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"expected frame input [n, T, d], got shape {X.shape}")
    return X


def as_audio(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected audio input [n, samples], got shape {X.shape}")
    if X.dtype != np.int16 and not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"expected int16 or float audio, got dtype {X.dtype}")
    return X


def audio_to_float(X: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1); float input is taken as already scaled."""
    if X.dtype == np.int16:
        return X.astype(np.float32) / 32768.0
    return X.astype(np.float32, copy=False)
