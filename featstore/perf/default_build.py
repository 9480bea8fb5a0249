"""The ``build`` section: the default CPU build (mfcc, pitch, fbank, audio) against an
MFCC-only build and against the whole-file librosa script, each as a new process, alternated;
and the ceiling: the core-seconds per audio second that decoding and extraction need at least,
measured as CPU time (``time.process_time``: every thread of this process), so the build's
real-time factor can be set against ``cores / (decode + extraction)``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from featstore import audio
from featstore.extractors import ExtractContext
from featstore.machine import cores
from featstore.perf import builds, classic
from featstore.perf.batched import batched_run
from featstore.perf.config import PerfConfig
from featstore.perf.data import audio_seconds
from featstore.perf.timing import alternate, make_row
from featstore.sources.base import Utterance

DEFAULT_CPU = ("mfcc", "pitch", "fbank", "audio")  # the default build where no wav2vec2 loads


def cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The median CPU time of ``fn`` (all threads of this process)."""
    runs = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        runs.append(time.process_time() - t0)
    return sorted(runs)[len(runs) // 2]


def ceiling(utts: list[Utterance], decoded: list[audio.Chunks], context: ExtractContext,
            batch_size: int | None, repeat: int) -> dict:
    """Core-seconds per audio second of decoding and of each default extractor, and the
    real-time factors they allow on this machine's cores (writing the store not counted)."""
    seconds = audio_seconds(decoded, context.sample_rate)
    decode = cpu_seconds(lambda: [audio.load_chunks(u.path, context.sample_rate,
                                                    context.chunk_samples) for u in utts], repeat)
    extract = {}
    for name in DEFAULT_CPU:
        ours = batched_run(name, decoded, context, batch_size)
        extract[name] = cpu_seconds(ours.run, repeat) / seconds
    per_audio = {"decode": decode / seconds, **extract}
    n = cores()
    return {"cores": n, "core_seconds_per_audio_second": per_audio,
            "mfcc_rtf": n / (per_audio["decode"] + per_audio["mfcc"]),
            "default_rtf": n / sum(per_audio.values())}


def measure(view: Path, utts: list[Utterance], decoded: list[audio.Chunks], cfg: PerfConfig,
            context: ExtractContext, tmp: Path, log) -> tuple[list[dict], dict]:
    """Rows build_mfcc_e2e, build_default_e2e, mfcc_classic_file_e2e, and the ceiling."""
    seconds = audio_seconds(decoded, context.sample_rate)
    log("build: core-seconds of decoding and of each default extractor (the ceiling)")
    top = ceiling(utts, decoded, context, cfg.batch_size, cfg.repeat)
    log("build: mfcc-only and default builds and the whole-file librosa script as new "
        "processes, alternated")
    fns = {"mfcc": builds.new_process(view, "mfcc", cfg, context.device, tmp)[0],
           "default": builds.new_process(view, ",".join(DEFAULT_CPU), cfg, context.device, tmp)[0]}
    whole = classic.whole_file_process(utts, context, tmp)
    if whole is not None:
        fns["whole"] = whole
    runs = alternate(fns, cfg.repeat)
    note = "python -m featstore build, incl. process start, imports and writing the store"
    rows = [make_row("build_mfcc_e2e", "build", "featstore build mfcc (new process)", seconds,
                     runs["mfcc"], note),
            make_row("build_default_e2e", "build", f"featstore build {','.join(DEFAULT_CPU)} "
                     "(new process)", seconds, runs["default"], note)]
    name = "mfcc classic, whole files (new process)"
    if whole is None:
        rows.append(make_row("mfcc_classic_file_e2e", "build", name, 0.0, None,
                             classic.MISSING))
    else:
        rows.append(make_row("mfcc_classic_file_e2e", "build", name, seconds, runs["whole"],
                             "python -c <librosa.load + librosa.feature.mfcc once per whole "
                             "file, np.save each>, incl. process start and imports (it also "
                             "computes the tails the store drops)"))
    for key, row in (("mfcc_rtf", rows[0]), ("default_rtf", rows[1])):
        top[f"{key.split('_')[0]}_build_share"] = (row["rtf"] / top[key]) if row["rtf"] else None
    return rows, top
