"""Throughput benchmark: how fast featstore turns audio into features, against the classic way.

Every row is one measurement over the same files: audio seconds processed (the real samples in
the 2 s chunks, i.e. what the store holds: a tail shorter than one chunk is dropped, per the
chunk policy), wall seconds (``time.perf_counter``; the best of ``repeat`` runs) and the
real-time factor ``rtf = audio seconds / wall seconds`` (higher is faster).

Sections (``features``):

* always: ``decode`` -- soundfile decode + resample + chunk of the selected files, in this one
  process (the pipeline's ``DecodeDataset`` item), so its rtf is per core;
* ``mfcc``: the classic way (``librosa.load`` + ``librosa.feature.mfcc`` per chunk, one file at a
  time, as notebooks do), our batched MFCC extractor on already-decoded chunks, the real
  ``build()`` in this process, and ``python -m featstore build`` against the classic script,
  each as a new process (start-up and imports included, so the end-to-end ratio is fair);
* ``wav2vec2``: the model's bare forward (hidden states, pre-normalised batches already on the
  device), the same forward one chunk at a time, and the real ``build()``.

Files are the source's utterances in id order; ``max_seconds`` keeps the first ones totalling
at least that much audio (default: all for mfcc, 120 s for wav2vec2 on CPU). Each section runs
``build()`` on a folder of symlinks to exactly its files, so every row sees the same audio.

JSON (``run_perf``'s result; keys of a section that did not run are absent):

  schema          1 (bumped if a key changes meaning)
  device          "cpu" or "cuda[:N]";  device_name  provenance.device_name(device)
  cpus            cores this process may use;  torch_threads  torch.get_num_threads() at the end
  source          the corpus name;  files, chunks, audio_seconds  the largest selection (= decode)
  repeat, batch_size ({"mfcc": n, "wav2vec2": n}), workers (null: build's default)
  rows            [{"id", "section", "name", "audio_seconds", "seconds", "rtf", "note",
                    "batch_size", "runs"}]; a skipped row has seconds and rtf null.
                  ids: decode, mfcc_classic, mfcc_batched, mfcc_build, mfcc_build_e2e,
                  mfcc_classic_e2e, wav2vec2_bare, wav2vec2_unbatched, wav2vec2_build
  speedups        rtf ratios: mfcc_in_process (mfcc_build / mfcc_classic), mfcc_extractor_only
                  (mfcc_batched / mfcc_classic), mfcc_end_to_end (mfcc_build_e2e /
                  mfcc_classic_e2e), wav2vec2_pipeline_vs_bare (wav2vec2_build / wav2vec2_bare),
                  wav2vec2_pipeline_vs_bare_excl_load (the same with the build's model load,
                  timed separately, taken out), wav2vec2_batched_vs_unbatched (wav2vec2_bare /
                  wav2vec2_unbatched)
  wav2vec2_load_seconds  one model load with imports warm (what build() pays up front)
  peak_host_mb    MB: {"self": ru_maxrss of this process, "children": RUSAGE_CHILDREN's (the
                  largest finished child: forked decode workers count the pages they share
                  with this process), and with mfcc "mfcc_build_e2e" / "mfcc_classic_e2e": the
                  peak of that new process and its children (wait4, via a small launcher)}
  peak_gpu_mb     torch.cuda.max_memory_allocated, MB (null without CUDA)
  versions        provenance.versions(("librosa", "tabulate"))
"""

from __future__ import annotations

import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from featstore import provenance
from featstore.build import BuildConfig, DecodeDataset, build, default_batch_size, torch_threads
from featstore.device import resolve_device
from featstore.errors import UserError
from featstore.extractors import ExtractorOptions, make_extractor
from featstore.sources import resolve_source, select_speakers
from featstore.sources.base import Utterance

SCHEMA = 1
SECTIONS = ("mfcc", "wav2vec2")
CPU_WAV2VEC2_SECONDS = 120.0  # default cap for wav2vec2 on CPU: keeps a run to about a minute
UNBATCHED_CHUNKS = {"cpu": 30, "cuda": 256}
_RSS_UNIT = 1024.0 * (1024.0 if sys.platform == "darwin" else 1.0)  # ru_maxrss: KiB (macOS: B)

# The classic way, as notebooks do it. One source for both the in-process row (exec'd) and the
# end-to-end row (``python -c``), so the two run the very same code. Same chunk policy as ours.
CLASSIC_CODE = '''
import numpy as np
import librosa

def classic_mfcc(path, chunk, sr, n_mfcc, n_fft, hop_length, n_mels):
    y, _ = librosa.load(path, sr=sr)
    feats, real = [], 0
    for start in range(0, max(len(y) - chunk, 0) + 1, chunk):
        c = y[start:start + chunk]
        real += len(c)
        if len(c) < chunk:
            c = np.pad(c, (0, chunk - len(c)))
        feats.append(librosa.feature.mfcc(y=c, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft,
                                          hop_length=hop_length, n_mels=n_mels).T)
    return feats, real
'''
CLASSIC_MAIN = '''
import sys
paths = open(sys.argv[1]).read().splitlines()
args = [int(a) for a in sys.argv[3:]]
out = []
for p in paths:
    out += classic_mfcc(p, *args)[0]
np.save(sys.argv[2], np.stack(out))
'''


@dataclass
class PerfConfig:
    source: str | None = "synthetic"
    subsets: list[str] | None = None
    speakers: int | None = None
    seed: int = 0
    cache_dir: str | None = None
    features: list[str] = field(default_factory=lambda: ["mfcc"])
    model: str = "facebook/wav2vec2-base"
    device: str = "auto"
    batch_size: int | None = None
    workers: int | None = None
    max_seconds: float | None = None
    repeat: int = 1
    quiet: bool = False
    chunk_seconds: float = 2.0


# ---------------------------------------------------------------------------------- helpers


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], repeat: int, device: str) -> tuple[list[float], object]:
    """Wall seconds of each of ``repeat`` calls, and the last call's result."""
    runs, result = [], None
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        result = fn()
        _sync(device)
        runs.append(time.perf_counter() - t0)
    return runs, result


def make_row(row_id: str, section: str, name: str, audio_seconds: float, runs: list[float] | None,
             note: str, batch_size: int | None = None) -> dict:
    """A result row: the best of ``runs`` (None: skipped, note says why)."""
    seconds = min(runs) if runs else None
    rtf = audio_seconds / seconds if seconds else None
    return {"id": row_id, "section": section, "name": name, "audio_seconds": audio_seconds,
            "seconds": seconds, "rtf": rtf, "note": note, "batch_size": batch_size,
            "runs": list(runs or [])}


def _ratio(rows: dict[str, dict], num: str, den: str) -> float | None:
    a, b = rows.get(num, {}).get("rtf"), rows.get(den, {}).get("rtf")
    return a / b if a and b else None


def _audio_seconds(decoded: list[dict], sample_rate: int) -> float:
    return float(sum(int(d["counts"].sum()) for d in decoded)) / sample_rate


def _file_seconds(path: str) -> float:
    import soundfile as sf

    try:
        info = sf.info(path)
        return info.frames / info.samplerate
    except Exception:  # unreadable: decode will say why; it adds no audio
        return 0.0


def select(utts: list[Utterance], cap: float | None) -> list[Utterance]:
    """The first utterances (in id order) totalling at least ``cap`` seconds; all if None."""
    if cap is None:
        return list(utts)
    out, total = [], 0.0
    for u in utts:
        if total >= cap:
            break
        out.append(u)
        total += _file_seconds(u.path)
    return out


def make_view(folder: Path, utts: list[Utterance]) -> Path:
    """A LibriSpeech-layout folder of symlinks to exactly ``utts``, for ``build --source``."""
    lines = []
    for u in utts:
        dest = folder / u.subset / u.speaker_id / u.chapter_id / Path(u.path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(Path(u.path).resolve())
    for speaker, (gender, subset) in sorted({u.speaker_id: (u.gender, u.subset)
                                             for u in utts}.items()):
        lines.append(f"{speaker} | {gender} | {subset} | 0 | perf")
    (folder / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    return folder


def _warm_page_cache(utts: list[Utterance]) -> None:
    for u in utts:  # so no row pays for the disk and the first does not pay alone
        try:
            Path(u.path).read_bytes()
        except OSError:
            pass


def _classic_function() -> Callable | None:
    namespace: dict = {}
    try:
        exec(CLASSIC_CODE, namespace)  # noqa: S102 -- our own constant, see CLASSIC_CODE
    except ImportError:
        return None
    return namespace["classic_mfcc"]


def _mfcc_args(opts: ExtractorOptions) -> tuple[int, ...]:
    return (opts.chunk_samples, opts.sample_rate, opts.n_mfcc, opts.n_fft, opts.hop_length,
            opts.n_mels)


# ------------------------------------------------------------------------------ measurements


def measure_decode(utts: list[Utterance], opts: ExtractorOptions, repeat: int
                   ) -> tuple[dict, list[dict]]:
    """Row 1, and the decoded items (chunks, counts) the other rows reuse."""
    data = DecodeDataset([(0, u) for u in utts], opts.sample_rate, opts.chunk_samples)
    runs, decoded = _time(lambda: [data[i] for i in range(len(data))], repeat, "cpu")
    row = make_row("decode", "decode", "decode", _audio_seconds(decoded, opts.sample_rate), runs,
                   f"soundfile + resample + chunk of {len(utts)} files, 1 process (rtf per core)")
    return row, decoded


def measure_mfcc_classic(utts: list[Utterance], opts: ExtractorOptions, repeat: int) -> dict:
    name = "mfcc classic (librosa, one file at a time)"
    classic = _classic_function()
    if classic is None:
        return make_row("mfcc_classic", "mfcc", name, 0.0, None,
                        "skipped: librosa is not installed (a dev dependency)")
    args = _mfcc_args(opts)
    classic(utts[0].path, *args)  # warm-up: librosa's lazy imports and numba caches

    def run() -> int:
        return sum(classic(u.path, *args)[1] for u in utts)

    runs, real = _time(run, repeat, "cpu")
    return make_row("mfcc_classic", "mfcc", name, real / opts.sample_rate, runs,
                    "librosa.load(sr=16000) + librosa.feature.mfcc per 2 s chunk, in-process")


def measure_mfcc_batched(decoded: list[dict], opts: ExtractorOptions, batch_size: int | None,
                         repeat: int) -> dict:
    ext = make_extractor("mfcc", opts)
    batch_size = batch_size or default_batch_size([ext], opts)
    x = torch.from_numpy(np.concatenate([d["chunks"] for d in decoded])).to(opts.device)
    n = torch.from_numpy(np.concatenate([d["counts"] for d in decoded])).to(opts.device)
    ext.extract(x[:batch_size], n[:batch_size])  # warm-up: first-call allocations

    def run() -> None:
        for i in range(0, len(x), batch_size):
            ext.extract(x[i : i + batch_size], n[i : i + batch_size])

    runs, _ = _time(run, repeat, opts.device)
    return make_row("mfcc_batched", "mfcc", "mfcc batched (in-process)",
                    _audio_seconds(decoded, opts.sample_rate), runs,
                    f"our extractor on {len(x)} decoded chunks on {opts.device}, incl. copy "
                    "back to host", batch_size)


def build_runner(view: Path, feature: str, cfg: PerfConfig, device: str, tmp: Path
                 ) -> Callable[[], None]:
    """A call of the real ``build()`` of one feature, into a fresh temporary store each time."""
    counter = itertools.count()

    def run() -> None:
        build(BuildConfig(
            out=tmp / f"{feature}-store-{next(counter)}", source=str(view), features=[feature],
            chunk_seconds=cfg.chunk_seconds, batch_size=cfg.batch_size, workers=cfg.workers,
            quiet=True, extract=ExtractorOptions(device=device, model=cfg.model),
        ))

    return run


def measure_build(view: Path, cfg: PerfConfig, device: str, audio_seconds: float, tmp: Path,
                  batch_size: int) -> dict:
    runs, _ = _time(build_runner(view, "mfcc", cfg, device, tmp), cfg.repeat, device)
    return make_row("mfcc_build", "mfcc", "featstore build mfcc (pipeline, in-process)",
                    audio_seconds, runs, "build(): decode + extraction + HDF5 writing",
                    batch_size)


# Runs a command and reports its exit code, wall seconds and peak RSS (KiB, wait4). Started
# from this (large) process, a child's ru_maxrss would start at our own RSS: Linux carries the
# parent's high-water mark over at exec. This small launcher makes the child's numbers its own.
LAUNCHER = """
import json, os, subprocess, sys, time
with open(sys.argv[1], "w") as log:
    t0 = time.perf_counter()
    proc = subprocess.Popen(sys.argv[3:], stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[2], "w") as out:
    json.dump([proc.returncode, seconds, usage.ru_maxrss], out)
"""


def run_process(cmd: list[str], cwd: Path, what: str) -> tuple[float, float]:
    """Run ``cmd`` to completion in ``cwd``: (wall seconds from spawn to exit, peak resident
    memory in MB of it and its children). Raises UserError with its last line if it fails."""
    log, report = cwd / "process.log", cwd / "process.json"
    subprocess.run([sys.executable, "-c", LAUNCHER, str(log), str(report), *cmd], cwd=cwd,
                   check=True)
    code, seconds, maxrss = json.loads(report.read_text())
    if code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{what} failed (exit {code}): {tail[0][:200]}")
    return seconds, maxrss / _RSS_UNIT


def _time_process(run: Callable[[], tuple[float, float]], repeat: int
                  ) -> tuple[list[float], float]:
    """Wall seconds of each run, and the peak memory of the last."""
    runs, peak = [], 0.0
    for _ in range(repeat):
        seconds, peak = run()
        runs.append(seconds)
    return runs, peak


def measure_build_process(view: Path, cfg: PerfConfig, device: str, audio_seconds: float,
                          tmp: Path, batch_size: int) -> tuple[dict, float]:
    counter = itertools.count()
    extra = [] if cfg.batch_size is None else ["--batch-size", str(cfg.batch_size)]
    extra += [] if cfg.workers is None else ["--workers", str(cfg.workers)]

    def run() -> tuple[float, float]:
        out = tmp / f"mfcc-e2e-{next(counter)}"
        return run_process([sys.executable, "-m", "featstore", "build", "--source", str(view),
                      "--out", str(out), "--features", "mfcc", "--device", device,
                      "--chunk-seconds", str(cfg.chunk_seconds), "--quiet", *extra],
                     tmp, "python -m featstore build")

    runs, peak = _time_process(run, cfg.repeat)
    row = make_row("mfcc_build_e2e", "mfcc", "featstore build mfcc (end to end, new process)",
                   audio_seconds, runs, "python -m featstore build, incl. process start, "
                   "imports and writing the store", batch_size)
    return row, peak


def measure_classic_process(utts: list[Utterance], opts: ExtractorOptions, audio_seconds: float,
                            repeat: int, tmp: Path) -> tuple[dict, float | None]:
    name = "mfcc classic (end to end, new process)"
    if _classic_function() is None:
        return make_row("mfcc_classic_e2e", "mfcc", name, 0.0, None,
                        "skipped: librosa is not installed (a dev dependency)"), None
    paths = tmp / "classic-files.txt"
    paths.write_text("\n".join(u.path for u in utts) + "\n")
    args = [str(a) for a in _mfcc_args(opts)]

    def run() -> tuple[float, float]:
        return run_process([sys.executable, "-c", CLASSIC_CODE + CLASSIC_MAIN, str(paths),
                      str(tmp / "classic.npy"), *args], tmp, "the classic librosa script")

    runs, peak = _time_process(run, repeat)
    row = make_row("mfcc_classic_e2e", "mfcc", name, audio_seconds, runs,
                   "python -c <librosa per chunk, np.save>, incl. process start and imports")
    return row, peak


def measure_wav2vec2(decoded: list[dict], opts: ExtractorOptions, batch_size: int | None,
                     repeat: int, pipeline: Callable[[], None]) -> tuple[list[dict], float]:
    """Rows: the bare forward on pre-normalised chunks on the device, batched and one chunk at
    a time, and ``pipeline`` (the real build() of the same files). The batched forward and the
    pipeline alternate, so a busy machine slows both alike and their ratio stays meaningful.
    Also returns the seconds of one model load with imports warm (what build() pays first)."""
    from featstore.extractors.wav2vec2 import COMPUTE_DTYPES, Wav2Vec2Extractor, load_model

    ext: Wav2Vec2Extractor = make_extractor("wav2vec2", opts)  # imports transformers, loads
    t0 = time.perf_counter()
    load_model(opts.model)  # again, imports now warm: the cost build() pays
    load_seconds = time.perf_counter() - t0
    batch_size = batch_size or default_batch_size([ext], opts)
    device = opts.device
    compute = COMPUTE_DTYPES[ext.compute_dtype]
    x = torch.from_numpy(np.concatenate([d["chunks"] for d in decoded])).to(device)
    n = torch.from_numpy(np.concatenate([d["counts"] for d in decoded])).to(device)
    with torch.inference_mode():
        n = n.clamp(1, x.shape[1]).to(torch.float32)
        x = ext._normalise(x, n) if ext.normalize else x  # the pipeline's own normalisation

    @torch.inference_mode()
    def forward(batch: torch.Tensor) -> None:
        with torch.autocast(torch.device(device).type, dtype=compute,
                            enabled=compute != torch.float32):
            ext.model(batch, output_hidden_states=True)

    def batched() -> None:
        for i in range(0, len(x), batch_size):
            forward(x[i : i + batch_size])

    few = x[: UNBATCHED_CHUNKS["cuda" if device.startswith("cuda") else "cpu"]]

    def unbatched() -> None:
        for i in range(len(few)):
            forward(few[i : i + 1])

    forward(x[:batch_size])  # warm-up: first-call allocations, kernel selection
    forward(x[:1])
    seconds = _audio_seconds(decoded, opts.sample_rate)
    runs, build_runs = [], []
    for _ in range(repeat):
        runs += _time(batched, 1, device)[0]
        build_runs += _time(pipeline, 1, device)[0]
    built = make_row("wav2vec2_build", "wav2vec2", "wav2vec2 pipeline (featstore build, "
                     "in-process)", seconds, build_runs, "build(): decode + normalise + "
                     f"forward + pooling + writing, incl. model load (~{load_seconds:.1f} s)",
                     batch_size)
    bare = make_row("wav2vec2_bare", "wav2vec2", "wav2vec2 bare forward", seconds, runs,
                    f"model forward + hidden states on {len(x)} pre-normalised chunks on "
                    f"{device} ({ext.compute_dtype})", batch_size)
    counts = np.concatenate([d["counts"] for d in decoded])[: len(few)]
    runs, _ = _time(unbatched, repeat, device)
    single = make_row("wav2vec2_unbatched", "wav2vec2", "wav2vec2 unbatched loop",
                      float(counts.sum()) / opts.sample_rate, runs,
                      f"the same forward one chunk at a time, first {len(few)} chunks", 1)
    return [bare, single, built], load_seconds


# ------------------------------------------------------------------------------------ driver


def run_perf(cfg: PerfConfig) -> dict:
    """Run the requested sections; returns the result described in the module docstring."""
    features = list(dict.fromkeys(cfg.features))
    unknown = [f for f in features if f not in SECTIONS]
    if unknown or not features:
        raise UserError(f"perf --features: choose from {', '.join(SECTIONS)} "
                        f"(got {','.join(cfg.features) or 'nothing'})")
    if cfg.repeat < 1:
        raise UserError("--repeat must be at least 1")
    device = resolve_device(cfg.device)
    log = (lambda msg: None) if cfg.quiet else (lambda msg: print(f"perf: {msg}",
                                                                  file=sys.stderr, flush=True))
    opts = ExtractorOptions(device=device, model=cfg.model)
    opts.chunk_samples = int(round(cfg.chunk_seconds * opts.sample_rate))

    corpus = resolve_source(cfg.source, subsets=cfg.subsets, speakers=cfg.speakers,
                            seed=cfg.seed, cache_dir=cfg.cache_dir)
    if cfg.speakers is not None:
        corpus = select_speakers(corpus, cfg.speakers, cfg.seed)
    utts = sorted(corpus.utterances, key=lambda u: u.utterance_id)
    if not utts:
        raise UserError(f"no utterances found in {corpus.name}")
    caps = {"mfcc": cfg.max_seconds, "wav2vec2": cfg.max_seconds}
    if cfg.max_seconds is None and device == "cpu":
        caps["wav2vec2"] = CPU_WAV2VEC2_SECONDS
    chosen = {f: select(utts, caps[f]) for f in features}
    largest = max(chosen.values(), key=len)  # each is a prefix of the same list
    _warm_page_cache(largest)

    result: dict = {
        "schema": SCHEMA, "device": device, "device_name": provenance.device_name(device),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "source": corpus.name, "repeat": cfg.repeat, "workers": cfg.workers, "batch_size": {},
    }
    rows: list[dict] = []
    peaks: dict[str, float | None] = {}  # MB: each new process's peak (its last run)
    log(f"decode: {len(largest)} files")
    row, decoded = measure_decode(largest, opts, cfg.repeat)
    rows.append(row)
    result.update(files=len(largest), chunks=int(sum(len(d["counts"]) for d in decoded)),
                  audio_seconds=row["audio_seconds"])

    with tempfile.TemporaryDirectory(prefix="featstore-perf-") as tmp_name:
        tmp = Path(tmp_name)
        if "mfcc" in features:
            sel = chosen["mfcc"]
            dec = decoded[: len(sel)]
            seconds = _audio_seconds(dec, opts.sample_rate)
            view = make_view(tmp / "mfcc-corpus", sel)
            log(f"mfcc: {len(sel)} files, {seconds:.1f} s of audio")
            log("mfcc: classic (librosa)")
            rows.append(measure_mfcc_classic(sel, opts, cfg.repeat))
            log("mfcc: batched extractor")
            rows.append(measure_mfcc_batched(dec, opts, cfg.batch_size, cfg.repeat))
            result["batch_size"]["mfcc"] = rows[-1]["batch_size"]
            log("mfcc: build() in-process")
            rows.append(measure_build(view, cfg, device, seconds, tmp, rows[-1]["batch_size"]))
            log("mfcc: end to end, new processes")
            row, peaks["mfcc_build_e2e"] = measure_build_process(
                view, cfg, device, seconds, tmp, result["batch_size"]["mfcc"])
            rows.append(row)
            row, peaks["mfcc_classic_e2e"] = measure_classic_process(sel, opts, seconds,
                                                                     cfg.repeat, tmp)
            rows.append(row)
        if "wav2vec2" in features:
            sel = chosen["wav2vec2"]
            dec = decoded[: len(sel)]
            seconds = _audio_seconds(dec, opts.sample_rate)
            log(f"wav2vec2: {len(sel)} files, {seconds:.1f} s of audio, model {cfg.model}: "
                "bare forward and build(), alternating, then one chunk at a time")
            view = make_view(tmp / "wav2vec2-corpus", sel)
            pipeline = build_runner(view, "wav2vec2", cfg, device, tmp)
            from featstore.extractors.wav2vec2 import cpu_threads

            with torch_threads(cpu_threads(device)):  # the bare forward gets build()'s threads
                w2v_rows, load_seconds = measure_wav2vec2(dec, opts, cfg.batch_size,
                                                          cfg.repeat, pipeline)
            rows += w2v_rows
            result["batch_size"]["wav2vec2"] = w2v_rows[0]["batch_size"]
            result["wav2vec2_load_seconds"] = load_seconds

    by_id = {r["id"]: r for r in rows}
    speedups = {}
    if "mfcc" in features:
        speedups.update(mfcc_in_process=_ratio(by_id, "mfcc_build", "mfcc_classic"),
                        mfcc_extractor_only=_ratio(by_id, "mfcc_batched", "mfcc_classic"),
                        mfcc_end_to_end=_ratio(by_id, "mfcc_build_e2e", "mfcc_classic_e2e"))
    if "wav2vec2" in features:
        speedups["wav2vec2_pipeline_vs_bare"] = _ratio(by_id, "wav2vec2_build", "wav2vec2_bare")
        build_row, bare_row = by_id["wav2vec2_build"], by_id["wav2vec2_bare"]
        steady = build_row["seconds"] - result["wav2vec2_load_seconds"]
        if steady > 0:
            speedups["wav2vec2_pipeline_vs_bare_excl_load"] = bare_row["seconds"] / steady
        speedups["wav2vec2_batched_vs_unbatched"] = _ratio(by_id, "wav2vec2_bare",
                                                           "wav2vec2_unbatched")
    result["rows"] = rows
    result["speedups"] = {k: v for k, v in speedups.items() if v is not None}
    result["torch_threads"] = torch.get_num_threads()
    result["peak_host_mb"] = {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _RSS_UNIT,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / _RSS_UNIT,
        **{k: v for k, v in peaks.items() if v is not None},
    }
    result["peak_gpu_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                             if device.startswith("cuda") else None)
    result["versions"] = provenance.versions(("librosa", "tabulate"))
    return result


# ---------------------------------------------------------------------------------- markdown


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


SPEEDUP_LABELS = {
    "mfcc_in_process": "mfcc in-process: featstore build vs classic",
    "mfcc_extractor_only": "mfcc extractor only: batched vs classic",
    "mfcc_end_to_end": "mfcc end to end (new process): featstore build vs classic",
    "wav2vec2_pipeline_vs_bare": "wav2vec2 pipeline vs bare forward (target >= 0.9 on CPU)",
    "wav2vec2_pipeline_vs_bare_excl_load": "wav2vec2 pipeline vs bare forward, model load "
                                           "excluded",
    "wav2vec2_batched_vs_unbatched": "wav2vec2 batched vs unbatched forward",
}


def render_markdown(result: dict) -> str:
    """The result as a header line, a rows table, a speed-ups table and a resources line."""
    from tabulate import tabulate

    head = (f"featstore perf on {result['device']} ({result['device_name']}), "
            f"{result['cpus']} CPUs, {result['torch_threads']} torch threads; "
            f"{result['source']}: {result['files']} files, {_num(result['audio_seconds'])} s of "
            f"audio in {result['chunks']} chunks; best of {result['repeat']}")
    rows = [[r["name"], _num(r["audio_seconds"]), _num(r["seconds"], 3), _num(r["rtf"]),
             r["note"]] for r in result["rows"]]
    table = tabulate(rows, headers=["what", "audio s", "wall s", "x real time", "note"],
                     tablefmt="github", colalign=("left", "right", "right", "right", "left"),
                     disable_numparse=True)
    parts = [head, "", table]
    if result["speedups"]:
        sp = [[SPEEDUP_LABELS.get(k, k), _num(v, 2)] for k, v in result["speedups"].items()]
        parts += ["", tabulate(sp, headers=["speed-up", "x"], tablefmt="github",
                               colalign=("left", "right"), disable_numparse=True)]
    mem = result["peak_host_mb"]
    tail = (f"peak host memory: {mem['self']:,.0f} MB this process, {mem['children']:,.0f} MB "
            "largest child")
    if "mfcc_build_e2e" in mem:
        tail += f", {mem['mfcc_build_e2e']:,.0f} MB featstore build process"
    if "mfcc_classic_e2e" in mem:
        tail += f", {mem['mfcc_classic_e2e']:,.0f} MB classic process"
    if result["peak_gpu_mb"] is not None:
        tail += f"; peak GPU memory: {result['peak_gpu_mb']:,.0f} MB"
    parts += ["", tail]
    return "\n".join(parts)
