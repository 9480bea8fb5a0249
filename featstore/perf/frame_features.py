"""The pitch and fbank sections: our batched extractor against the per-chunk reference the field
uses (librosa.yin; torchaudio's Kaldi fbank), on the same decoded chunks, alternated."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from featstore import audio
from featstore.extractors import ExtractContext
from featstore.perf.batched import batched_run
from featstore.perf.timing import alternate, make_row, timed

REFERENCE_CHUNKS = 200  # the per-chunk references run on at most this many chunks (slow ones)
YIN_FRAME = 1024  # librosa.yin's frame: >= 2 periods of 50 Hz at 16 kHz, as librosa asks


def _reference(name: str, p: dict, context: ExtractContext) -> tuple[Callable, str] | None:
    """A function of one chunk (float32 numpy), and its description; None without librosa.
    ``p``: our extractor's parameters (the range and hop librosa.yin is given)."""
    if name == "fbank":
        from torchaudio.compliance import kaldi

        def fbank(x: np.ndarray) -> object:
            return kaldi.fbank(torch.from_numpy(x)[None], num_mel_bins=p["num_mel_bins"],
                               sample_frequency=context.sample_rate, dither=0.0)

        return fbank, "torchaudio.compliance.kaldi.fbank, one chunk at a time"
    try:
        import librosa
    except ImportError:
        return None

    def yin(x: np.ndarray) -> object:
        return librosa.yin(x, fmin=p["f0_min"], fmax=p["f0_max"], sr=context.sample_rate,
                           frame_length=YIN_FRAME, hop_length=p["hop_length"])

    return yin, f"librosa.yin, one chunk at a time (frame {YIN_FRAME}, hop {p['hop_length']})"


def measure(name: str, decoded: list[audio.Chunks], context: ExtractContext,
            batch_size: int | None, repeat: int) -> list[dict]:
    """Rows ``<name>_batched`` and ``<name>_reference``, timed alternately."""
    ours = batched_run(name, decoded, context, batch_size)
    chunks, counts = ours.chunks, ours.counts
    seconds = float(counts.sum()) / context.sample_rate
    fns = {"ours": lambda: timed(ours.run, context.device)}
    reference = _reference(name, ours.extractor.params(), context)
    few = chunks[:REFERENCE_CHUNKS]
    if reference is not None:
        one_chunk, _ = reference
        fns["reference"] = lambda: timed(lambda: [one_chunk(c) for c in few])
    runs = alternate(fns, repeat)
    rows = [make_row(f"{name}_batched", name, f"{name} batched (in-process)", seconds,
                     runs["ours"], f"our extractor on {len(counts)} decoded chunks on "
                     f"{context.device}, incl. copy back to host", ours.batch_size)]
    if reference is None:
        rows.append(make_row(f"{name}_reference", name, f"{name} reference", 0.0, None,
                             "librosa is not installed"))
    else:
        rows.append(make_row(f"{name}_reference", name, f"{name} reference",
                             float(counts[:REFERENCE_CHUNKS].sum()) / context.sample_rate,
                             runs["reference"], f"{reference[1]}, on {len(few)} chunks"))
    return rows
