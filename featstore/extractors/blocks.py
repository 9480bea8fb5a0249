"""CPU machinery the frame extractors (mfcc, pitch, fbank) share.

* Cache-sized blocks: a batch's frame and spectrum tensors are hundreds of MB, so each step
  over a whole batch would stream them from memory; a few chunks at a time stay in cache
  (``BLOCK_BYTES``).
* One pool of block workers, one per core, each with one torch thread (the setting is per
  thread): blocks, not ops, run in parallel, and torch's own threads never synchronise on the
  many small ops of a block. On CUDA a batch is one block.
* Per-thread work buffers, grown when needed and then reused, so a block never pays for fresh
  pages.
* The power spectrum of frames (rfft, re² + im² squared in place) and the banded mel product
  (the filterbank's nonzero band only: the same sums as the dense product, a fraction of the
  work).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import torch

from featstore.machine import cache_share, cores

# A CPU block's working set: the core's share of the last-level cache, within 4-24 MiB. Small
# blocks pay torch's and numba's per-call costs on every few chunks; past ~24 MiB the blocks
# leave L2 for good (on the 2-core Xeon VM, 480 MiB L3: 24 MiB took 0.66 core-ms per audio
# second for pitch + fbank + mfcc, 4 MiB 1.04, 48 MiB 0.81; docs/speed.md).
BLOCK_BYTES = min(24 << 20, max(4 << 20, cache_share()))
MEL_BANDS = 8  # groups of neighbouring mel filters (more bands: less zero work, more overlap)

Band = tuple[int, int, int, int, torch.Tensor]


@cache
def pool(threads: int) -> ThreadPoolExecutor:
    """CPU block workers, shared by every extractor; each uses one torch thread."""
    return ThreadPoolExecutor(threads, thread_name_prefix="blocks",
                              initializer=torch.set_num_threads, initargs=(1,))


def cpu_kernels(device: torch.device, backend: str | None = None):
    """``featstore.extractors.kernels`` (numba) where ``backend`` is "numba", by default on
    the CPU, its kernels loading on a side thread; None for the torch ops (CUDA's). Imported
    only here, so a CUDA build never loads numba."""
    if (backend or ("numba" if device.type == "cpu" else "torch")) != "numba":
        return None
    from featstore.extractors import kernels

    kernels.warm_in_background()
    return kernels


def block_rows(bytes_per_chunk: int) -> int:
    """Chunks per CPU block, from one chunk's working set in bytes."""
    return max(1, BLOCK_BYTES // max(1, bytes_per_chunk))


def run_blocks(fn: Callable[[slice], None], n: int, block: int, device: torch.device) -> None:
    """``fn(rows)`` over ``range(n)`` in spans of ``block`` rows, on the pool (CPU) or as one
    call (CUDA, or one block). ``fn`` writes its rows of preallocated outputs."""
    if device.type != "cpu" or n <= block:
        fn(slice(0, n))
        return
    spans = [slice(i, i + block) for i in range(0, n, block)]
    list(pool(cores()).map(fn, spans))


class ThreadBuffers:
    """Each thread's named work tensors; ``get(n)`` gives views of the first ``n`` rows.
    ``make(n)`` returns the dict of fresh tensors for ``n`` rows; anything it zeroes (padding
    columns) stays zero as long as callers never write there."""

    def __init__(self, make: Callable[[int], dict[str, torch.Tensor]]) -> None:
        self._make = make
        self._local = threading.local()

    def get(self, n: int) -> dict[str, torch.Tensor]:
        bufs = getattr(self._local, "bufs", None)
        if bufs is None or len(next(iter(bufs.values()))) < n:
            bufs = self._local.bufs = self._make(n)
        return {k: v[:n] for k, v in bufs.items()}


def mel_bands(fbank: torch.Tensor, groups: int) -> list[Band]:
    """The filterbank [bins, mels] as ``groups`` blocks of neighbouring filters: (first mel,
    end mel, first bin, end bin, the block's weights), covering every nonzero weight."""
    n_mels = fbank.shape[1]
    out = []
    for g in range(min(groups, n_mels)):
        m0, m1 = g * n_mels // groups, (g + 1) * n_mels // groups
        bins = (fbank[:, m0:m1] != 0).any(1).nonzero().flatten()
        lo, hi = (int(bins[0]), int(bins[-1]) + 1) if len(bins) else (0, 1)
        out.append((m0, m1, lo, hi, fbank[lo:hi, m0:m1].contiguous()))
    return out


def banded_mel(power: torch.Tensor, bands: list[Band], out: torch.Tensor) -> torch.Tensor:
    """``power`` [..., bins] times the filterbank of ``bands`` into ``out`` [..., mels]."""
    for m0, m1, lo, hi, weights in bands:
        torch.matmul(power[..., lo:hi], weights, out=out[..., m0:m1])
    return out


def power_spectrum(frames: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """|rfft(frames)|² [..., n // 2 + 1] into ``power``: re² and im² squared in place, then one
    add (no complex magnitude). The rfft writes a fresh tensor: with ``out=`` it copies."""
    parts = torch.view_as_real(torch.fft.rfft(frames)).square_()
    return torch.add(parts[..., 0], parts[..., 1], out=power)
