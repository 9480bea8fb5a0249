"""The pitch and fbank sections: our batched extractor against the per-chunk reference the field
uses (librosa.yin; torchaudio's Kaldi fbank), on the same decoded chunks, alternated."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from featstore import audio
from featstore.extractors import ExtractorOptions, make_extractor
from featstore.machine import default_batch_size
from featstore.perf.data import stacked
from featstore.perf.timing import alternate, make_row, timed

REFERENCE_CHUNKS = 200  # the per-chunk references run on at most this many chunks (slow ones)
YIN_FRAME = 1024  # librosa.yin's frame: >= 2 periods of 50 Hz at 16 kHz, as librosa asks


def _reference(name: str, ext, opts: ExtractorOptions) -> tuple[Callable, str] | None:
    """A function of one chunk (float32 numpy), and its description; None without librosa."""
    p = ext.params()
    if name == "fbank":
        from torchaudio.compliance import kaldi

        def fbank(x: np.ndarray) -> object:
            return kaldi.fbank(torch.from_numpy(x)[None], num_mel_bins=opts.fbank_bins,
                               sample_frequency=opts.sample_rate, dither=0.0)

        return fbank, "torchaudio.compliance.kaldi.fbank, one chunk at a time"
    try:
        import librosa
    except ImportError:
        return None

    def yin(x: np.ndarray) -> object:
        return librosa.yin(x, fmin=p["f0_min"], fmax=p["f0_max"], sr=opts.sample_rate,
                           frame_length=YIN_FRAME, hop_length=p["hop_length"])

    return yin, f"librosa.yin, one chunk at a time (frame {YIN_FRAME}, hop {p['hop_length']})"


def measure(name: str, decoded: list[audio.Chunks], opts: ExtractorOptions,
            batch_size: int | None, repeat: int) -> list[dict]:
    """Rows ``<name>_batched`` and ``<name>_reference``, timed alternately."""
    ext = make_extractor(name, opts)
    batch_size = batch_size or default_batch_size([ext], opts.device)
    chunks, counts = stacked(decoded)
    x, n = torch.from_numpy(chunks).to(opts.device), torch.from_numpy(counts).to(opts.device)
    seconds = float(counts.sum()) / opts.sample_rate
    ext.extract(x[:batch_size], n[:batch_size])  # warm-up: first-call allocations

    def batched() -> float:
        def run() -> None:
            for i in range(0, len(x), batch_size):
                ext.extract(x[i : i + batch_size], n[i : i + batch_size])
        return timed(run, opts.device)

    fns = {"ours": batched}
    reference = _reference(name, ext, opts)
    few = chunks[:REFERENCE_CHUNKS]
    if reference is not None:
        one_chunk, _ = reference
        fns["reference"] = lambda: timed(lambda: [one_chunk(c) for c in few])
    runs = alternate(fns, repeat)
    rows = [make_row(f"{name}_batched", name, f"{name} batched (in-process)", seconds,
                     runs["ours"], f"our extractor on {len(x)} decoded chunks on {opts.device}, "
                     "incl. copy back to host", batch_size)]
    if reference is None:
        rows.append(make_row(f"{name}_reference", name, f"{name} reference", 0.0, None,
                             "librosa is not installed"))
    else:
        rows.append(make_row(f"{name}_reference", name, f"{name} reference",
                             float(counts[:REFERENCE_CHUNKS].sum()) / opts.sample_rate,
                             runs["reference"], f"{reference[1]}, on {len(few)} chunks"))
    return rows
