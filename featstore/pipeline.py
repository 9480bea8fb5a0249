"""One shard's pipeline: decode threads -> batches -> extractors -> shard writer.

Three stages overlap. Decoding runs on a thread pool (soundfile and the resampler release the
GIL) a bounded number of utterances ahead; a batching thread stacks their chunks into batches
(pinned memory on CUDA) a bounded number of batches ahead; the calling thread only extracts;
a ``ShardSink`` thread writes behind a bounded queue. Every bound is back-pressure: a slow
stage makes the ones before it wait instead of filling memory.

``build_shard`` is the unit a distributed build schedules: it writes one planned shard under
a temporary name and publishes it by rename, so it is idempotent and its output appears whole
or not at all. ``featstore.build`` runs it for each pending shard, then writes the index.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np
import torch

from featstore import audio
from featstore.machine import torch_threads
from featstore.sources.base import AudioInput, Utterance
from featstore.store.layout import FORMAT_VERSION, META_COLUMNS, SHARDS, group_file, shard_name
from featstore.store.plan import shard_utterances
from featstore.store.shards import PLAN_ATTR, plan_fingerprint
from featstore.store.writer import ShardPart, ShardSink

DECODE_AHEAD = 4  # utterances in flight per decode thread
BATCHES_AHEAD = 2  # batches stacked ahead of extraction


@dataclass(frozen=True)
class RunSettings:
    """How a shard is built (none of it changes what is stored, only how fast)."""

    device: str
    sample_rate: int
    chunk_samples: int
    batch_size: int
    decode_threads: int  # 0: decode and batch inline in the calling thread
    reader: Callable[[Utterance], AudioInput] | None = None  # Corpus.reader; None: u.path


@dataclass
class Batch:
    chunks: torch.Tensor  # [n, chunk_samples] float32 on the host (pinned for CUDA)
    meta: dict[str, np.ndarray]  # META_COLUMNS + start_sample, n_samples, one row per chunk
    problems: list[dict]  # problems of the utterances first seen in this batch
    utterances: int  # utterances finished with this batch (progress)

    def __len__(self) -> int:
        return len(self.chunks)


def build_shard(out: Path, plan: dict, shard: int, extractors: list, settings: RunSettings, *,
                sink: ShardSink | None = None, progress: Callable[[int], object] | None = None
                ) -> None:
    """Build shard ``shard`` of ``plan`` into ``out/shards/``: decode its utterances, extract
    every feature, write it under a temporary name and publish it by rename.

    ``sink``: a running writer shared across shards (the local build's, so writing one shard
    overlaps extracting the next); the shard is then published once the sink has written it.
    Without one, this call owns a writer and returns only once the shard is published.
    ``progress`` is called with the number of utterances done as they finish.
    """
    settle_gc()
    utts = shard_utterances(plan, shard)
    own = sink is None
    sink = sink or ShardSink()
    threads = max((t for e in extractors if (t := getattr(e, "num_threads", lambda: None)())),
                  default=None)
    try:
        with torch_threads(threads):
            parts = [ShardPart(out / SHARDS / shard_name(shard), [], meta_widths(utts)),
                     *group_parts(out, shard, extractors)]
            sink.open(parts, {"shard": shard, "format_version": FORMAT_VERSION,
                              PLAN_ATTR: plan_fingerprint(plan, shard)})
            problems: list[dict] = []
            for batch in batches(utts, settings):
                problems += batch.problems
                if len(batch):
                    sink.rows(batch.meta, extract(extractors, batch, settings.device))
                if progress is not None:
                    progress(batch.utterances)
            sink.close_shard(problems)
    finally:
        if own:
            sink.finish()


@cache
def settle_gc() -> None:
    """Once per process, as the first shard starts: what is alive then (modules, the corpus,
    the plan, the models) lives as long as the process, so ``gc.freeze`` takes it out of the
    collector's scans (they cost the default CPU build ~0.5 core-s of its 22 at --scale 8)."""
    gc.freeze()


def group_parts(out: Path, shard: int, extractors: list) -> list[ShardPart]:
    """One file per extractor (its feature group) for ``shard``."""
    return [ShardPart(out / group_file(e.name, shard), e.specs()) for e in extractors]


def extract(extractors: list, batch: Batch, device: str) -> dict[str, np.ndarray]:
    """Every extractor's features of one batch, on the host."""
    x, counts = batch.chunks, torch.from_numpy(batch.meta["n_samples"])
    if device.startswith("cuda"):
        x = x.to(device, non_blocking=True)  # from pinned memory: an asynchronous copy
        counts = counts.to(device, non_blocking=True)
    features: dict[str, np.ndarray] = {}
    for e in extractors:
        features.update(e.extract(x, counts))
    return features


def meta_widths(utts: list[Utterance]) -> dict[str, int]:
    """Widths in bytes (UTF-8) of the fixed-length metadata strings of a shard."""
    return {c: max((len(getattr(u, c).encode()) for u in utts), default=1) for c in META_COLUMNS}


def batches(utts: list[Utterance], s: RunSettings) -> Iterator[Batch]:
    """The utterances' chunks in order, as batches of ``s.batch_size`` (the last may be
    shorter, or empty when only problems are left to report)."""
    stacked = _stack(_decoded(utts, s), s.batch_size, s.chunk_samples,
                     pin=s.device.startswith("cuda") and torch.cuda.is_available())
    return _ahead(stacked, BATCHES_AHEAD) if s.decode_threads else stacked


def _decoded(utts: list[Utterance], s: RunSettings
             ) -> Iterator[tuple[Utterance, audio.Chunks]]:
    """(utterance, its chunks) in order; decoded by a thread pool a bounded way ahead."""
    def load(u: Utterance) -> audio.Chunks:
        source = u.path if s.reader is None else partial(s.reader, u)
        return audio.load_chunks(source, s.sample_rate, s.chunk_samples)

    if not s.decode_threads:
        yield from ((u, load(u)) for u in utts)
        return
    with ThreadPoolExecutor(s.decode_threads, thread_name_prefix="decode") as pool:
        todo, ahead = iter(utts), deque()
        try:
            for u in todo:
                ahead.append((u, pool.submit(load, u)))
                if len(ahead) >= DECODE_AHEAD * s.decode_threads:
                    break
            while ahead:
                u, future = ahead.popleft()
                nxt = next(todo, None)
                if nxt is not None:
                    ahead.append((nxt, pool.submit(load, nxt)))
                yield u, future.result()
        finally:
            for _, future in ahead:
                future.cancel()


def _stack(decoded: Iterable[tuple[Utterance, audio.Chunks]], size: int, width: int, pin: bool
           ) -> Iterator[Batch]:
    """Cut the stream of utterances' chunks into batches of ``size`` rows."""
    parts: deque[tuple[Utterance, audio.Chunks]] = deque()
    held, problems, finished = 0, [], 0

    def take(n: int) -> Batch:
        nonlocal held, problems, finished
        pieces, rows = [], 0
        while rows < n:
            u, c = parts[0]
            k = min(n - rows, len(c.counts))
            pieces.append((u, c.chunks[:k], c.starts[:k], c.counts[:k]))
            if k == len(c.counts):
                parts.popleft()
            else:
                parts[0] = (u, audio.Chunks(c.chunks[k:], c.starts[k:], c.counts[k:]))
            rows += k
        x = torch.empty((n, width), dtype=torch.float32, pin_memory=pin)
        if n:
            np.concatenate([p[1] for p in pieces], out=x.numpy())
        repeats = [len(p[3]) for p in pieces]
        # UTF-8, losslessly: "José" and "Josè" stay two speakers
        meta = {c: np.repeat(np.array([getattr(p[0], c).encode() for p in pieces], dtype="S"),
                             repeats)
                for c in META_COLUMNS}
        meta["start_sample"] = np.concatenate([p[2] for p in pieces] or [[]]).astype(np.int64)
        meta["n_samples"] = np.concatenate([p[3] for p in pieces] or [[]]).astype(np.int32)
        batch = Batch(x, meta, problems, finished)
        held, problems, finished = held - n, [], 0
        return batch

    for u, c in decoded:
        problems += [{"path": u.path, "reason": r} for r in c.problems]
        finished += 1
        if len(c.counts):
            parts.append((u, c))
            held += len(c.counts)
        while held >= size:
            yield take(size)
    if held or problems or finished:
        yield take(held)


def _ahead(items: Iterator, depth: int) -> Iterator:
    """``items`` produced on a background thread, at most ``depth`` ahead of the consumer.
    An error there is raised here; closing this generator stops the producer."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(msg: tuple) -> bool:
        while not stop.is_set():
            try:
                box.put(msg, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # in this thread: it is the one running the generator

    thread = threading.Thread(target=produce, name="batcher", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()
