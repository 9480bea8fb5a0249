"""The MFCC section: featstore against the classic loop, in this process and as new processes
(alternated, so a busy machine slows both alike), and our extractor alone."""

from __future__ import annotations

from pathlib import Path

from featstore import audio
from featstore.extractors import ExtractContext
from featstore.perf import builds, classic
from featstore.perf.batched import batched_run
from featstore.perf.config import PerfConfig
from featstore.perf.data import audio_seconds
from featstore.perf.timing import alternate, make_row, timed
from featstore.sources.base import Utterance


def measure_batched(decoded: list[audio.Chunks], context: ExtractContext,
                    batch_size: int | None, repeat: int) -> dict:
    """Our extractor alone on chunks already decoded (and on the device)."""
    ours = batched_run("mfcc", decoded, context, batch_size)
    runs = [timed(ours.run, context.device) for _ in range(repeat)]
    return make_row("mfcc_batched", "mfcc", "mfcc batched (in-process)",
                    audio_seconds(decoded, context.sample_rate), runs,
                    f"our extractor on {len(ours.counts)} decoded chunks on {context.device}, "
                    "incl. copy back to host", ours.batch_size)


def measure(view: Path, utts: list[Utterance], decoded: list[audio.Chunks], cfg: PerfConfig,
            context: ExtractContext, tmp: Path, log) -> tuple[list[dict], dict[str, float]]:
    """Rows mfcc_classic, mfcc_batched, mfcc_build, mfcc_build_e2e, mfcc_classic_e2e, and the
    peak memory (MB) of the new processes."""
    seconds = audio_seconds(decoded, context.sample_rate)
    rows, peaks = [], {}
    classic_name = "mfcc classic (librosa, one file at a time)"
    build_name = "featstore build mfcc (pipeline, in-process)"
    build_note = "build(): decode + extraction + HDF5 writing"

    log("mfcc: batched extractor")
    batched = measure_batched(decoded, context, cfg.batch_size, cfg.repeat)
    batch_size = batched["batch_size"]
    ours = builds.in_process(view, "mfcc", cfg, context.device, tmp)
    reference = classic.in_process(utts, context)
    log("mfcc: build() and the classic loop in this process, alternated")
    if reference is None:
        rows.append(make_row("mfcc_classic", "mfcc", classic_name, 0.0, None, classic.MISSING))
        runs = alternate({"ours": ours}, cfg.repeat)
    else:
        run_classic, real = reference
        runs = alternate({"ours": ours, "classic": run_classic}, cfg.repeat)
        rows.append(make_row("mfcc_classic", "mfcc", classic_name, real[-1] / context.sample_rate,
                             runs["classic"], "librosa.load(sr=16000) + librosa.feature.mfcc "
                             "per 2 s chunk, in-process"))
    rows += [batched, make_row("mfcc_build", "mfcc", build_name, seconds, runs["ours"],
                               build_note, batch_size)]

    log("mfcc: featstore build and the classic loop as new processes, alternated")
    ours_e2e, our_peaks = builds.new_process(view, "mfcc", cfg, context.device, tmp)
    reference = classic.new_process(utts, context, tmp)
    fns = {"ours": ours_e2e} if reference is None else {"ours": ours_e2e, "classic": reference[0]}
    runs = alternate(fns, cfg.repeat)
    rows.append(make_row("mfcc_build_e2e", "mfcc", "featstore build mfcc (end to end, new "
                         "process)", seconds, runs["ours"], "python -m featstore build, incl. "
                         "process start, imports and writing the store", batch_size))
    peaks["mfcc_build_e2e"] = max(our_peaks)
    name = "mfcc classic (end to end, new process)"
    if reference is None:
        rows.append(make_row("mfcc_classic_e2e", "mfcc", name, 0.0, None, classic.MISSING))
    else:
        rows.append(make_row("mfcc_classic_e2e", "mfcc", name, seconds, runs["classic"],
                             "python -c <librosa per chunk, np.save>, incl. process start and "
                             "imports"))
        peaks["mfcc_classic_e2e"] = max(reference[1])
    return rows, peaks
