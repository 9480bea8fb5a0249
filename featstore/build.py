"""The build pipeline: corpus -> decoded chunks (DataLoader workers) -> batched extractors on
the device -> writer thread -> shards -> index.

Work is planned up front (plan.json: the utterances, their shards, every parameter). A shard is
the unit of resumption: it exists under its final name only when complete, so ``--resume``
re-plans, checks the plan is the same, and builds only the shards that are missing.
With ``--ray`` the pending shards are built by Ray workers (featstore/build_ray.py), each with
``build_shard``; planning, the lock and the index stay here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from featstore import audio, provenance
from featstore.device import resolve_device
from featstore.errors import UserError
from featstore.extractors import ExtractorOptions, make_extractor
from featstore.sources import resolve_source, select_speakers
from featstore.sources.base import AudioInput, Utterance
from featstore.store.layout import (
    FORMAT_VERSION,
    INDEX,
    LOCK,
    META_COLUMNS,
    PLAN,
    SHARDS,
    TMP_PREFIX,
    fsync_dir,
    sha256_file,
    shard_name,
    write_json_atomic,
)
from featstore.store.writer import ShardSink, StoreLock


@dataclass
class BuildConfig:
    out: Path
    source: str | None = None
    subsets: list[str] | None = None
    speakers: int | None = None
    seed: int = 0
    features: list[str] = field(default_factory=lambda: ["mfcc"])
    chunk_seconds: float = 2.0
    batch_size: int | None = None
    workers: int | None = None
    shard_size: int = 256  # utterances per shard
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    cache_dir: str | None = None
    source_options: dict[str, str] = field(default_factory=dict)  # hf column mapping
    extract: ExtractorOptions = field(default_factory=ExtractorOptions)
    optional: tuple[str, ...] = ()  # features left out, with a notice, if they cannot load
    ray: str | None = None  # Ray address ("auto"): shards built on a Ray cluster


class DecodeDataset(Dataset):
    """Decodes and chunks one utterance per item, in DataLoader worker processes."""

    def __init__(self, items: list[tuple[int, Utterance]], sample_rate: int, chunk_samples: int,
                 open_audio: Callable[[Utterance], AudioInput] = lambda u: u.path):
        self.items, self.sample_rate, self.chunk_samples = items, sample_rate, chunk_samples
        self.open_audio = open_audio  # Corpus.open_audio: a path, or bytes for a dataset record

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        shard, utt = self.items[i]
        problems = []
        try:
            decoded = audio.decode(self.open_audio(utt), self.sample_rate)
            chunks, starts, counts = audio.cut(decoded.samples, self.chunk_samples)
            problems += decoded.notes
        except audio.AudioError as exc:
            chunks = np.zeros((0, self.chunk_samples), np.float32)
            starts, counts = np.zeros(0, np.int64), np.zeros(0, np.int32)
            problems.append(f"{exc} (skipped)")
        if 0 < len(counts) and counts[0] < self.chunk_samples:
            problems.append(f"shorter than one chunk ({counts[0]} samples): zero-padded")
        return {"shard": shard, "utt": utt, "chunks": chunks, "starts": starts,
                "counts": counts, "problems": [{"path": utt.path, "reason": r} for r in problems]}


class _Batcher:
    """Collects chunks from utterances into fixed-size batches for the extractors."""

    def __init__(self):
        self.chunks, self.meta = [], []

    def add(self, item: dict) -> None:
        utt = item["utt"]
        for chunk, start, count in zip(item["chunks"], item["starts"], item["counts"], strict=True):
            self.chunks.append(chunk)
            self.meta.append((utt, int(start), int(count)))

    def __len__(self) -> int:
        return len(self.chunks)

    def take(self, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        chunks, meta = self.chunks[:n], self.meta[:n]
        self.chunks, self.meta = self.chunks[n:], self.meta[n:]
        cols = {c: np.array([getattr(u, c).encode("ascii", "replace") for u, _, _ in meta],
                            dtype="S") for c in META_COLUMNS}
        cols["start_sample"] = np.array([s for _, s, _ in meta], dtype=np.int64)
        cols["n_samples"] = np.array([c for _, _, c in meta], dtype=np.int32)
        return np.stack(chunks), cols


def build(cfg: BuildConfig) -> dict:
    """Build (or resume) a store; returns its index."""
    opts = cfg.extract
    ray = None
    if cfg.ray is not None and str(cfg.source or "").startswith("hf:"):
        # Ray workers read audio files by path; an hf: record's bytes live in the driver's dataset.
        raise UserError("--ray does not take an hf: source yet: build it without --ray")
    if cfg.ray is not None:  # Ray seam (issue 11): the device is the workers', on the cluster
        from featstore.build_ray import RayBuild

        ray = RayBuild.connect(cfg.ray, opts.device)
        opts.device = ray.device
    else:
        try:
            opts.device = resolve_device(opts.device)
        except UserError as exc:
            raise UserError(f"--device: {exc}") from None
    if cfg.chunk_seconds <= 0:
        raise UserError("--chunk-seconds must be positive")
    opts.chunk_samples = int(round(cfg.chunk_seconds * opts.sample_rate))
    if not cfg.features:
        raise UserError("--features must name at least one feature")
    out = Path(cfg.out)
    existing = _check_folder(out, cfg)
    # Everything that can fail on user input (source, model) runs before the folder is touched.
    corpus = resolve_source(cfg.source, subsets=cfg.subsets, speakers=cfg.speakers,
                            seed=cfg.seed, cache_dir=cfg.cache_dir, options=cfg.source_options)
    if cfg.speakers is not None:
        corpus = select_speakers(corpus, cfg.speakers, cfg.seed)
    if not corpus.utterances:
        raise UserError(f"no utterances found in {corpus.name}")
    extractors = _load_extractors(cfg, ray.plan_options(opts) if ray else opts)
    _make_folder(out)
    with StoreLock(out):
        if cfg.overwrite:
            _clear(out, existing)
            (out / SHARDS).mkdir(exist_ok=True)
        return _build_locked(out, cfg, corpus, extractors, ray)


def _load_extractors(cfg: BuildConfig, opts: ExtractorOptions) -> list:
    """The extractors of ``cfg.features``. One named in ``cfg.optional`` that cannot be loaded
    (no network for a hub model, say) is left out with one line saying why and how to fix it;
    any other failure stops the build."""
    extractors = []
    for name in dict.fromkeys(cfg.features):
        try:
            extractors.append(make_extractor(name, opts))
        except UserError as exc:
            if name not in cfg.optional:
                raise
            print(f"featstore build: {name} features skipped, building the others: {exc} "
                  "(naming --features makes this an error)", file=sys.stderr)
    if not extractors:
        raise UserError("no feature could be extracted")
    return extractors


def _check_folder(out: Path, cfg: BuildConfig) -> list[Path]:
    """What is already in ``out``; refuses unless --resume or --overwrite says what to do."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    existing = [p for p in out.iterdir() if p.name != LOCK] if out.exists() else []
    if existing and not (cfg.resume or cfg.overwrite):
        raise UserError(f"{out} already exists: pass --resume to finish it or --overwrite "
                        "to replace it")
    if existing and cfg.overwrite and not ((out / PLAN).exists() or (out / INDEX).exists()):
        raise UserError(f"refusing to --overwrite {out}: it is not a feature store")
    parent = out.absolute()
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to {out}: {parent} is not writable")
    return existing


def _clear(out: Path, existing: list[Path]) -> None:
    """Remove an old store for --overwrite. The index goes first (and durably), so an
    interrupted removal leaves a store that reads as incomplete, never an index describing
    deleted shards; the plan goes last, so a retried --overwrite still recognises the store."""
    rank = {INDEX: 0, PLAN: 2}
    for p in sorted(existing, key=lambda p: rank.get(p.name, 1)):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
        if p.name == INDEX:
            fsync_dir(out)  # gone on disk before any shard is


def _make_folder(out: Path) -> None:
    try:
        (out / SHARDS).mkdir(parents=True, exist_ok=True)
        probe = out / (TMP_PREFIX + "probe")
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror}") from None


def _build_locked(out: Path, cfg: BuildConfig, corpus, extractors, ray=None) -> dict:
    opts = cfg.extract
    specs = [s for e in extractors for s in e.specs()]
    plan = _plan(cfg, corpus, extractors, opts)
    plan = _check_resume(out, plan)
    utts = [Utterance(**u) for u in plan["utterances"]]
    shards = plan["shards"]
    for tmp in (out / SHARDS).glob(TMP_PREFIX + "*"):  # left by a killed build
        tmp.unlink()
    pending = [i for i in range(len(shards)) if not (out / SHARDS / shard_name(i)).exists()]
    index = _finished_index(out, len(shards)) if not pending else None
    if index is None:  # shards changed (or no index yet): only then is a new index written
        if pending:  # an old index would describe shards about to change: never leave it
            (out / INDEX).unlink(missing_ok=True)
        if ray is not None:  # Ray seam (issue 11): workers build the pending shards
            batch_size = ray.run(out, pending, plan, cfg)
        else:
            items = [(i, u) for i in pending for u in utts[shards[i][0] : shards[i][1]]]
            batch_size = cfg.batch_size or default_batch_size(extractors, opts)
            wanted = [n for e in extractors if (n := getattr(e, "num_threads", lambda: None)())]
            with torch_threads(max(wanted, default=None)):
                _run(out, items, extractors, specs, plan, batch_size, cfg, corpus.open_audio)
        index = _write_index(out, plan, specs, extractors, batch_size, opts,
                             ray.provenance() if ray else None)
    if not cfg.quiet:
        _summary(index)
    return index


def _finished_index(out: Path, num_shards: int) -> dict | None:
    """The index of a store whose shards are all there already, or None if it needs writing.
    A resume with nothing to build keeps index.json byte-identical (its created time, host and
    command line would otherwise change every time)."""
    try:
        index = json.loads((out / INDEX).read_text())
    except (OSError, ValueError):
        return None
    return index if len(index.get("shards", ())) == num_shards else None


def _plan(cfg, corpus, extractors, opts) -> dict:
    utts = sorted(corpus.utterances, key=lambda u: u.utterance_id)
    bounds = [(i, min(i + cfg.shard_size, len(utts))) for i in range(0, len(utts), cfg.shard_size)]
    params = {
        "features": [e.name for e in extractors],
        "extractors": {e.name: e.params() for e in extractors},
        "sample_rate": opts.sample_rate, "chunk_samples": opts.chunk_samples,
        "chunk_seconds": cfg.chunk_seconds, "chunk_policy": audio.CHUNK_POLICY,
        "shard_size": cfg.shard_size, "source": cfg.source, "subsets": cfg.subsets,
        "speakers": cfg.speakers, "seed": cfg.seed,
    }
    if cfg.source_options:  # only when set: plans written before this key still resume
        params["source_options"] = cfg.source_options
    return {
        "format_version": FORMAT_VERSION, "params": params, "source_name": corpus.name,
        "utterances": [dataclasses.asdict(u) for u in utts], "shards": bounds,
        "source_problems": [p.to_dict() for p in corpus.problems],
    }


def _check_resume(out: Path, plan: dict) -> dict:
    path = out / PLAN
    if not path.exists():
        (out / INDEX).unlink(missing_ok=True)
        write_json_atomic(path, plan)
        return plan
    old = json.loads(path.read_text())
    # JSON round trip so tuples and lists compare equal
    new = json.loads(json.dumps(plan))
    for key in ("params", "utterances", "shards"):
        if old.get(key) != new[key]:
            diff = _first_difference(old.get(key), new[key])
            raise UserError(f"cannot --resume {out}: the build differs from the one started "
                            f"there ({key}: {diff}); use --overwrite to start again")
    return old


def _first_difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return f"{k}: {_first_difference(a.get(k), b.get(k))}"
    if isinstance(a, list) and isinstance(b, list) and len(a) != len(b):
        return f"{len(a)} items vs {len(b)}"
    return f"{str(a)[:60]} vs {str(b)[:60]}"


def default_workers(device: str) -> int:
    """Decoding processes. Decoding (~2000x real time per core) is cheap next to extraction;
    on a small CPU machine worker processes only compete with torch's threads for the same
    cores (measured on 2 cores: inline decoding builds MFCC stores 27% faster)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return 0 if device == "cpu" and cores <= 4 else min(4, cores)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's thread count set to ``n`` (None: unchanged) inside the block only: the setting
    is process-wide, and a build run inside a longer process (bench, tests, perf) must leave
    what runs after it as it was."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)


def default_batch_size(extractors, opts) -> int:
    sizes = [getattr(e, "suggested_batch_size", lambda: None)() for e in extractors]
    sizes = [s for s in sizes if s]
    return min(sizes) if sizes else (256 if opts.device == "cpu" else 1024)


def _meta_widths(utts: list[Utterance]) -> dict[str, int]:
    return {c: max((len(getattr(u, c)) for u in utts), default=1) for c in META_COLUMNS}


def _run(out, items, extractors, specs, plan, batch_size, cfg, open_audio) -> None:
    if not items:
        return
    opts = cfg.extract
    workers = cfg.workers if cfg.workers is not None else default_workers(opts.device)
    loader = DataLoader(
        DecodeDataset(items, opts.sample_rate, opts.chunk_samples, open_audio), batch_size=None,
        num_workers=workers, prefetch_factor=4 if workers else None,
        persistent_workers=False, multiprocessing_context="fork" if workers else None,
    )
    shards = plan["shards"]
    utts = [Utterance(**u) for u in plan["utterances"]]
    sink = ShardSink()
    batcher, problems, current = _Batcher(), [], None
    cuda = opts.device.startswith("cuda")

    def flush(n: int) -> None:
        chunks, meta = batcher.take(n)
        x = torch.from_numpy(chunks)
        counts = torch.from_numpy(meta["n_samples"])
        if cuda:
            x, counts = x.pin_memory().to(opts.device, non_blocking=True), counts.to(opts.device)
        feats = {}
        for e in extractors:
            feats.update(e.extract(x, counts))
        sink.rows(meta, feats)

    def close_shard() -> None:
        while len(batcher):
            flush(min(batch_size, len(batcher)))
        sink.close_shard(problems)

    bar = tqdm(total=len(items), unit="utt", desc="build", disable=cfg.quiet or None)
    try:
        for item in loader:
            if item["shard"] != current:
                if current is not None:
                    close_shard()
                current, problems = item["shard"], []
                lo, hi = shards[current]
                sink.open(out / SHARDS / shard_name(current), specs, _meta_widths(utts[lo:hi]),
                          {"shard": current, "format_version": FORMAT_VERSION})
            problems.extend(item["problems"])
            batcher.add(item)
            while len(batcher) >= batch_size:
                flush(batch_size)
            bar.update(1)
        close_shard()
    finally:
        bar.close()
        sink.finish()


def build_shard(out: Path, shard: int, plan: dict, extractors, batch_size: int,
                cfg: BuildConfig) -> None:
    """Build shard ``shard`` of ``plan`` on its own (written under a temporary name, published by
    rename): a Ray worker's unit of work. Quiet: the driver shows progress over shards."""
    lo, hi = plan["shards"][shard]
    items = [(shard, Utterance(**u)) for u in plan["utterances"][lo:hi]]
    specs = [s for e in extractors for s in e.specs()]
    _run(out, items, extractors, specs, plan, batch_size, dataclasses.replace(cfg, quiet=True))


def _write_index(out, plan, specs, extractors, batch_size: int, opts,
                 where: dict | None = None) -> dict:
    """``where``: provenance of a Ray build (its cluster), in place of this machine's."""
    import h5py

    shards, problems = [], list(plan["source_problems"])
    for i, (lo, hi) in enumerate(plan["shards"]):
        path = out / SHARDS / shard_name(i)
        with h5py.File(path, "r") as f:
            rows = int(f.attrs["num_rows"])
            problems += json.loads(f.attrs["problems"])
        shards.append({"file": path.name, "rows": rows, "utterances": hi - lo,
                       "sha256": sha256_file(path)})
    index = {
        "format_version": FORMAT_VERSION,
        "num_rows": sum(s["rows"] for s in shards),
        "shards": shards,
        "features": {s.name: {"shape": list(s.shape), "dtype": s.dtype, "params": s.params,
                              "extractor": e.name}
                     for e in extractors for s in e.specs()},
        "problems": problems,
        "provenance": {**(where or provenance.record(opts.device)), "params": plan["params"],
                       "source_name": plan["source_name"],
                       "batch_size": batch_size},  # the size used, default or not
    }
    write_json_atomic(out / INDEX, index)
    return index


def _summary(index: dict) -> None:
    problems = index["problems"]
    print(f"wrote {index['num_rows']} chunks in {len(index['shards'])} shards; "
          f"{len(problems)} problem(s) recorded", file=sys.stderr)
    for p in problems[:10]:
        print(f"  {p['path']}: {p['reason']}", file=sys.stderr)
    if len(problems) > 10:
        print(f"  ... and {len(problems) - 10} more (featstore info STORE)", file=sys.stderr)
