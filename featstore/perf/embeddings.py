"""The dvector and NAME=MODEL sections: our batched extractor on decoded chunks already on the
device, against one chunk at a time (dvector: Resemblyzer's own ``embed_utterance``, the way its
users call it; an upstream or xvector: our same extractor with batches of one), alternated on
the same chunks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from featstore import audio
from featstore.extractors import ExtractContext
from featstore.perf.batched import batched_run
from featstore.perf.timing import alternate, make_row, timed

ONE_AT_A_TIME_CHUNKS = {"cpu": 200, "cuda": 500}


def _resemblyzer(device: str) -> tuple[Callable[[np.ndarray], object], str] | str:
    """Resemblyzer's embed of one chunk (its volume normalisation, no VAD trimming: what our
    extractor computes), or why it cannot run."""
    try:
        from resemblyzer import VoiceEncoder
        from resemblyzer.audio import normalize_volume
    except Exception as exc:  # noqa: BLE001 - its import needs webrtcvad and librosa
        return f"resemblyzer not importable ({type(exc).__name__}: {exc})"[:200]
    from featstore.extractors.dvector import CPU_LSTM_THREADS
    from featstore.machine import torch_threads

    encoder = VoiceEncoder(device, verbose=False)
    threads = CPU_LSTM_THREADS if device == "cpu" else None

    def embed(x: np.ndarray) -> object:
        with torch_threads(threads):  # the torch threads our LSTM gets: batching alone differs
            return encoder.embed_utterance(normalize_volume(x, -30, increase_only=True))

    return embed, ("Resemblyzer's VoiceEncoder.embed_utterance, one chunk at a time "
                   f"({threads or 'default'} torch thread(s), as ours)")


def measure(entry: str, decoded: list[audio.Chunks], context: ExtractContext,
            batch_size: int | None, repeat: int) -> list[dict]:
    """Rows ``<name>_batched`` and ``<name>_one_at_a_time`` for the --features ``entry``."""
    ours = batched_run(entry, decoded, context, batch_size)
    name = ours.extractor.name
    chunks, counts = ours.chunks, ours.counts
    few = min(len(counts), ONE_AT_A_TIME_CHUNKS["cuda" if context.device.startswith("cuda")
                                                else "cpu"])
    if name == "dvector":
        reference = _resemblyzer(context.device)
    else:
        import torch

        x = torch.from_numpy(chunks[:few]).to(context.device)
        n = torch.from_numpy(counts[:few]).to(context.device)
        ext = ours.extractor

        def single(i: int) -> object:
            return ext.extract(x[i : i + 1], n[i : i + 1])

        reference = (single, f"our {name} extractor with batches of one")
    fns = {"ours": lambda: timed(ours.run, context.device)}
    if not isinstance(reference, str):
        one, _ = reference
        if name == "dvector":
            fns["one"] = lambda: timed(lambda: [one(chunks[i, : counts[i]]) for i in range(few)],
                                       context.device)
        else:
            fns["one"] = lambda: timed(lambda: [one(i) for i in range(few)], context.device)
    runs = alternate(fns, repeat)
    seconds = float(counts.sum()) / context.sample_rate
    rows = [make_row(f"{name}_batched", name, f"{name} batched (in-process)", seconds,
                     runs["ours"], f"our extractor on {len(counts)} decoded chunks on "
                     f"{context.device}, incl. copy back to host", ours.batch_size)]
    if isinstance(reference, str):
        rows.append(make_row(f"{name}_one_at_a_time", name, f"{name} one chunk at a time", 0.0,
                             None, reference))
    else:
        rows.append(make_row(f"{name}_one_at_a_time", name, f"{name} one chunk at a time",
                             float(counts[:few].sum()) / context.sample_rate, runs["one"],
                             f"{reference[1]}, on the first {few} chunks", 1))
    return rows
