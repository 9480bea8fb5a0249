"""Batch sizes and thread counts, chosen from the machine when the user gives none.

* cores: the CPUs this process may use (its affinity mask, not the host's count; a Ray actor's
  own CPU share, ``set_cpu_share``, when smaller);
* torch threads: an extractor may ask for its own (``num_threads()``); they are set around
  extraction only, since the setting is process-wide;
* decode threads: soundfile (libsndfile via cffi) and the resampler release the GIL, so threads
  decode in parallel with each other and with extraction, a bounded number of files ahead. On
  CPU one per core (at most 8): for MFCCs decoding is the larger half of the work, and the
  operating system shares the cores between decoding and extraction (on 2 cores, 2 threads
  built MFCC stores 13% faster than 1 and 36% faster than decoding inline); on a GPU the CPU
  only decodes, so up to 8 threads, leaving two cores for the main thread (batching,
  transfers) and the shard writer;
* CPU blocks (``featstore.extractors.blocks``): sized from ``cache_share``;
* batch size: the smallest an extractor suggests (wav2vec2 on CUDA: from free GPU memory),
  else 256 chunks (CPU) or 1024 (GPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

MAX_DECODE_THREADS = 8


_share: int | None = None  # CPUs granted to this process by a scheduler (a Ray actor's num_cpus)


def set_cpu_share(n: int | None) -> None:
    """Size every thread pool from ``n`` CPUs (None: the affinity mask): a Ray actor granted
    one CPU of a 64-core node must not start 64 threads."""
    global _share
    _share = None if n is None else max(1, int(n))


def cores() -> int:
    """CPUs this process may run on: its affinity mask, or its scheduler's share if smaller."""
    if hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0)) or 1
    else:
        n = os.cpu_count() or 1
    return min(n, _share) if _share else n


def cache_share(default: int = 4 << 20, base: str = "/sys/devices/system/cpu/cpu0/cache"
                ) -> int:
    """Bytes of the last-level cache per CPU sharing it (Linux sysfs), or ``default``."""
    try:
        levels = sorted(d for d in os.listdir(base) if d.startswith("index"))
        with open(f"{base}/{levels[-1]}/size") as f:
            size = f.read().strip()
        with open(f"{base}/{levels[-1]}/shared_cpu_list") as f:
            shared = sum(int(b) - int(a) + 1 for a, _, b in
                         (part.partition("-") for part in f.read().strip().split(",")))
    except (OSError, ValueError, IndexError):
        return default
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        value = int(size[:-1]) * scale[size[-1]] if size[-1] in scale else int(size)
    except ValueError:
        return default
    return max(1, value // max(1, shared))


def cpu_threads(device: str) -> int | None:
    """torch threads for CPU extraction: every core; None (keep torch's setting) on CUDA or
    when the user chose with OMP_NUM_THREADS / MKL_NUM_THREADS."""
    user_threads = any(v in os.environ for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"))
    if str(device).startswith("cuda") or user_threads:
        return None
    return cores()


def decode_threads(device: str) -> int:
    """Decoding threads when --workers is not given (see the module docstring)."""
    if not str(device).startswith("cuda"):
        return min(MAX_DECODE_THREADS, cores())
    return max(1, min(MAX_DECODE_THREADS, cores() - 2))


def default_batch_size(extractors: list, device: str) -> int:
    sizes = [getattr(e, "suggested_batch_size", lambda: None)() for e in extractors]
    sizes = [s for s in sizes if s]
    return min(sizes) if sizes else (1024 if str(device).startswith("cuda") else 256)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's thread count set to ``n`` (None: unchanged) inside the block only: the setting
    is process-wide, and a build run inside a longer process (bench, tests, perf) must leave
    what runs after it as it was."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)
