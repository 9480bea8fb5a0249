"""Audio path: decode with soundfile, downmix, resample, and cut into fixed-length chunks.

Chunk policy (the same for every feature, recorded in the store's provenance):
- chunks are contiguous, non-overlapping windows of ``chunk_samples`` starting at sample 0;
- a tail shorter than one chunk is dropped (it would need padding, and padding changes
  wav2vec2's outputs);
- an utterance shorter than one chunk is kept as ONE zero-padded chunk whose ``n_samples``
  (the count of real samples) is stored, so no utterance silently disappears and readers can
  filter padded rows out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from featstore.pcm import PCM_SCALE

CHUNK_POLICY = "contiguous; tail < 1 chunk dropped; utterance < 1 chunk zero-padded to 1 chunk"


class AudioError(Exception):
    """The file cannot give valid audio (corrupt, not audio, empty). The message is the reason."""


@dataclass
class Decoded:
    """Mono float32 audio at the target rate, plus notes about what was done to get it."""

    samples: np.ndarray
    notes: list[str] = field(default_factory=list)


def decode(path: str | BinaryIO, sample_rate: int = 16000) -> Decoded:
    """Read ``path`` (a file, or a file-like object of encoded audio) as mono float32 at
    ``sample_rate``. Raises AudioError with a reason."""
    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            if f.subtype == "PCM_16":  # LibriSpeech's FLAC: libsndfile's own int -> float
                # conversion costs ~13% of the decode; numpy's gives the same floats (x / 2^15)
                data = f.read(dtype="int16", always_2d=True).astype(np.float32)
                data *= np.float32(1 / PCM_SCALE)
            else:
                data = f.read(dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for corrupt / non-audio input
        raise AudioError(f"cannot decode: {str(exc).splitlines()[0][:200]}") from None
    notes = []
    if data.shape[0] == 0:
        raise AudioError("empty: no audio samples")
    if data.shape[1] > 1:
        notes.append(f"downmixed {data.shape[1]} channels to mono")
        data = data.mean(axis=1, keepdims=True)
    samples = np.ascontiguousarray(data[:, 0])
    if not np.isfinite(samples).all():
        raise AudioError("corrupt: non-finite samples")
    if sr != sample_rate:
        notes.append(f"resampled {sr} Hz to {sample_rate} Hz")
        samples = AF.resample(torch.from_numpy(samples), sr, sample_rate).numpy()
    if not np.any(samples):
        notes.append("digital silence (kept)")
    return Decoded(samples, notes)


def chunk_spans(n_samples: int, chunk_samples: int) -> list[tuple[int, int]]:
    """(start, real samples) of each chunk of an utterance, following CHUNK_POLICY."""
    if n_samples <= 0:
        return []
    if n_samples < chunk_samples:
        return [(0, n_samples)]
    return [(i * chunk_samples, chunk_samples) for i in range(n_samples // chunk_samples)]


def cut(samples: np.ndarray, chunk_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunks [k, chunk_samples] float32 (a view of ``samples`` when no padding is needed),
    their start samples and real-sample counts."""
    spans = chunk_spans(len(samples), chunk_samples)
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    counts = np.array([n for _, n in spans], dtype=np.int32)
    if len(samples) >= chunk_samples:
        whole = samples[: len(spans) * chunk_samples].astype(np.float32, copy=False)
        return whole.reshape(len(spans), chunk_samples), starts, counts
    chunks = np.zeros((len(spans), chunk_samples), dtype=np.float32)
    chunks[:, : len(samples)] = samples
    return chunks, starts, counts


@dataclass
class Chunks:
    """One utterance cut into chunks (as ``cut``), and what went wrong or was done on the way."""

    chunks: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    problems: list[str] = field(default_factory=list)


def load_chunks(path: str | BinaryIO | Callable[[], str | BinaryIO], sample_rate: int,
                chunk_samples: int) -> Chunks:
    """Decode and cut one file; never raises for bad audio: a file that gives none has no
    chunks and says why in ``problems`` (the build records it and goes on). ``path`` may be a
    function that opens the audio (a dataset record's reader), whose AudioError is bad audio."""
    try:
        decoded = decode(path() if callable(path) else path, sample_rate)
    except AudioError as exc:
        empty = np.zeros((0, chunk_samples), np.float32)
        return Chunks(empty, np.zeros(0, np.int64), np.zeros(0, np.int32), [f"{exc} (skipped)"])
    out = Chunks(*cut(decoded.samples, chunk_samples), decoded.notes)
    if len(out.counts) and out.counts[0] < chunk_samples:
        out.problems.append(f"shorter than one chunk ({out.counts[0]} samples): zero-padded")
    return out
