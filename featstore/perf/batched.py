"""Our registered extractor over chunks already decoded, in batches on the device: what the
"batched" rows of the mfcc, pitch and fbank sections time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from featstore import audio
from featstore.extractors import ExtractContext, make_extractor
from featstore.machine import default_batch_size
from featstore.perf.data import stacked


@dataclass
class Batched:
    run: Callable[[], None]  # extracts every chunk once
    extractor: object
    batch_size: int
    chunks: np.ndarray  # [n, samples] on the host, as stacked
    counts: np.ndarray  # [n] real samples per chunk


def batched_run(name: str, decoded: list[audio.Chunks], context: ExtractContext,
                batch_size: int | None) -> Batched:
    """The extractor ``name`` (its default config) over ``decoded``, warmed up (first-call
    allocations), with the chunks already on the device."""
    ext = make_extractor(name, None, context)
    batch_size = batch_size or default_batch_size([ext], context.device)
    chunks, counts = stacked(decoded)
    x, n = torch.from_numpy(chunks).to(context.device), torch.from_numpy(counts).to(context.device)
    ext.extract(x[:batch_size], n[:batch_size])

    def run() -> None:
        for i in range(0, len(x), batch_size):
            ext.extract(x[i : i + batch_size], n[i : i + batch_size])

    return Batched(run, ext, batch_size, chunks, counts)
