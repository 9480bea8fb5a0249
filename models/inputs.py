"""Input coercion: what each input kind must look like before a model sees it.

"vector" = [n, d] float, "frames" = [n, T, d] per-chunk frame sequences (a plain array, or
:class:`Frames`: the array with each chunk's number of valid frames), "audio" = [n, samples]
int16 or float waveforms at 16 kHz, "layers" = [n, L, d] one pooled vector per
layer of an upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from featstore.pcm import PCM_SCALE

INPUT_KINDS = ("vector", "frames", "audio", "layers")


def as_vectors(X: Any, dtype: Any = np.float32) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected vector input [n, d], got shape {X.shape}")
    return X.astype(dtype, copy=False)


@dataclass(frozen=True)
class Frames:
    """Frame sequences ``data`` [n, T, d] and each chunk's number of valid frames ``lengths``
    [n] (1..T). Frames past a chunk's length are padding (the zeros after a short last chunk
    of an utterance): models must give the same result whatever they hold. Indexing by rows
    (``frames[idx]``) keeps the two together, so bench's row selection and the training
    loop's batches need no special case."""

    data: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        data, lengths = np.asarray(self.data), np.asarray(self.lengths, dtype=np.int64)
        if data.ndim != 3:
            raise ValueError(f"expected frame input [n, T, d], got shape {data.shape}")
        if lengths.shape != (len(data),):
            raise ValueError(f"expected one length per chunk ({len(data)}), got shape "
                             f"{lengths.shape}")
        if len(lengths) and (lengths.min() < 1 or lengths.max() > data.shape[1]):
            raise ValueError(f"frame lengths must lie in 1..{data.shape[1]}")
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "lengths", lengths)

    @classmethod
    def full(cls, data: Any) -> Frames:
        """Every frame valid (a plain [n, T, d] array)."""
        data = np.asarray(data)
        return cls(data, np.full(len(data), data.shape[1] if data.ndim == 3 else 0))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: Any) -> Frames:
        idx = np.arange(len(self))[idx] if isinstance(idx, slice) else idx
        return Frames(self.data[idx], self.lengths[idx])

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return 3

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def mask(self) -> np.ndarray:
        """[n, T] bool: True on valid frames."""
        return np.arange(self.data.shape[1])[None, :] < self.lengths[:, None]


def as_frames(X: Any) -> Frames:
    """:class:`Frames` (a plain 3-D array: every frame valid). Frames stay in their stored
    dtype (often float16); models convert per batch."""
    if isinstance(X, Frames):
        return X
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"expected frame input [n, T, d], got shape {X.shape}")
    return Frames.full(X)


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
        return X.astype(np.float32) / np.float32(PCM_SCALE)
    return X.astype(np.float32, copy=False)
