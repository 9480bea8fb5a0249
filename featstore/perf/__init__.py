"""Throughput benchmark: how fast featstore turns audio into features, against the classic way.

Every row is one measurement over the same files: audio seconds processed (the real samples in
the 2 s chunks, i.e. what the store holds: a tail shorter than one chunk is dropped, per the
chunk policy), wall seconds (``time.perf_counter``; the median of ``repeat`` runs) and the
real-time factor ``rtf = audio seconds / wall seconds`` (higher is faster). Pairs that are
compared run alternately (ours, theirs, ours, ...), so a busy spell slows both alike.

Sections (``features``):

* always: ``decode`` -- soundfile decode + resample + chunk of the selected files, in one
  thread, so its rtf is per core (``featstore.perf.data``);
* ``mfcc`` (``featstore.perf.mfcc``): the classic way (``featstore.perf.classic``: librosa one
  file at a time, as notebooks do), our batched MFCC extractor on already-decoded chunks, the
  real ``build()`` in this process, and ``python -m featstore build`` against the classic
  script, each as a new process (start-up and imports included, so the end-to-end ratio is
  fair);
* ``pitch``, ``fbank`` (``featstore.perf.frame_features``): our batched extractor against the
  per-chunk reference the field uses (librosa.yin; torchaudio's Kaldi fbank), alternated;
* ``build`` (``featstore.perf.default_build``): ``python -m featstore build`` of the default CPU
  features (mfcc, pitch, fbank, audio) and of mfcc alone, and the whole-file librosa script
  (one ``librosa.feature.mfcc`` per file, each saved), as new processes, alternated; and the
  ceiling: decoding's and each extractor's CPU time per audio second;
* ``wav2vec2`` (``featstore.perf.wav2vec2``): the model's bare forward (hidden states,
  pre-normalised batches already on the device), the same forward one chunk at a time, and the
  real ``build()``;
* ``dvector`` and ``NAME=MODEL`` entries (``featstore.perf.embeddings``): our batched extractor
  against one chunk at a time (dvector: Resemblyzer's own ``embed_utterance``; an upstream or
  xvector: our extractor with batches of one), alternated; rows ``<name>_batched``,
  ``<name>_one_at_a_time``, speedup ``<name>_batched_vs_one_at_a_time``.

Files are the source's utterances in id order; ``max_seconds`` keeps the first ones totalling
at least that much audio (default: all for mfcc, 120 s for wav2vec2 on CPU), and ``scale``
tiles them that many times under new speaker ids (the real sample x8 is dev-clean's size).
Each section builds from a folder of symlinks to exactly its files, so every row sees the same
audio.

JSON (``run_perf``'s result; keys of a section that did not run are absent):

  schema          2 (bumped when a key changes meaning; 2: seconds are medians, not minima)
  device          "cpu" or "cuda[:N]";  device_name  provenance.device_name(device)
  cpus            cores this process may use;  torch_threads  torch.get_num_threads() at the end
  source          the corpus name;  scale  copies of each file;  files, chunks, audio_seconds
                  the largest selection (= decode), tiles included
  repeat, batch_size ({"mfcc": n, "wav2vec2": n}), workers (null: build's default)
  rows            [{"id", "section", "name", "audio_seconds", "seconds", "rtf", "note",
                    "batch_size", "runs"}]; a skipped row has seconds and rtf null.
                  ids: decode, mfcc_classic, mfcc_batched, mfcc_build, mfcc_build_e2e,
                  mfcc_classic_e2e, pitch_batched, pitch_reference, fbank_batched,
                  fbank_reference, build_mfcc_e2e, build_default_e2e, mfcc_classic_file_e2e,
                  wav2vec2_bare, wav2vec2_unbatched, wav2vec2_build
  speedups        rtf ratios: mfcc_in_process (mfcc_build / mfcc_classic), mfcc_extractor_only
                  (mfcc_batched / mfcc_classic), mfcc_end_to_end (mfcc_build_e2e /
                  mfcc_classic_e2e), pitch_batched_vs_reference, fbank_batched_vs_reference,
                  default_build_wall_vs_mfcc_build (build_default_e2e seconds /
                  build_mfcc_e2e seconds), mfcc_build_vs_classic_whole_file (build_mfcc_e2e /
                  mfcc_classic_file_e2e), wav2vec2_pipeline_vs_bare (wav2vec2_build /
                  wav2vec2_bare),
                  wav2vec2_pipeline_vs_bare_excl_load (the same with the build's model load,
                  timed separately, taken out), wav2vec2_batched_vs_unbatched (wav2vec2_bare /
                  wav2vec2_unbatched)
  ceiling         (build section) {"cores", "core_seconds_per_audio_second": {"decode", "mfcc",
                  "pitch", "fbank", "audio"}, "mfcc_rtf" and "default_rtf": cores / (decode +
                  extraction), "mfcc_build_share" and "default_build_share": the build's rtf
                  (new process) / that ceiling}
  wav2vec2_load_seconds  one model load with imports warm (what build() pays up front)
  peak_host_mb    MB: {"self": ru_maxrss of this process, "children": RUSAGE_CHILDREN's (the
                  largest finished child), and with mfcc "mfcc_build_e2e" / "mfcc_classic_e2e":
                  the peak of that new process and its children (wait4, via a small launcher)}
  peak_gpu_mb     torch.cuda.max_memory_allocated, MB (null without CUDA)
  versions        provenance.versions(("librosa", "tabulate"))
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
from pathlib import Path

from featstore import provenance
from featstore.device import resolve_device
from featstore.errors import UserError
from featstore.extractors.base import SAMPLE_RATE, ExtractContext
from featstore.machine import cores, cpu_threads, torch_threads
from featstore.perf import builds, default_build, embeddings, frame_features, mfcc, wav2vec2
from featstore.perf.config import PerfConfig
from featstore.perf.data import audio_seconds, make_view, measure_decode, select, warm_page_cache
from featstore.perf.report import render_markdown
from featstore.perf.timing import RSS_UNIT, ratio
from featstore.sources import resolve_source, select_speakers

__all__ = ["SCHEMA", "SECTIONS", "PerfConfig", "render_markdown", "run_perf"]

SCHEMA = 2
SECTIONS = ("mfcc", "wav2vec2", "pitch", "fbank", "build", "dvector")  # and NAME=MODEL
CPU_WAV2VEC2_SECONDS = 120.0  # default cap for wav2vec2 on CPU: keeps a run to about a minute


def run_perf(cfg: PerfConfig) -> dict:
    """Run the requested sections; returns the result described in the module docstring."""
    import torch

    features = list(dict.fromkeys(cfg.features))
    unknown = [f for f in features if f not in SECTIONS and "=" not in f]
    if unknown or not features:
        raise UserError(f"perf --features: choose from {', '.join(SECTIONS)}, NAME=MODEL "
                        f"(got {','.join(cfg.features) or 'nothing'})")
    if cfg.repeat < 1 or cfg.scale < 1:
        raise UserError("--repeat and --scale must be at least 1")
    device = resolve_device(cfg.device)
    log = (lambda msg: None) if cfg.quiet else (lambda msg: print(f"perf: {msg}",
                                                                  file=sys.stderr, flush=True))
    context = ExtractContext(device, SAMPLE_RATE, int(round(cfg.chunk_seconds * SAMPLE_RATE)))

    corpus = resolve_source(cfg.source, subsets=cfg.subsets, speakers=cfg.speakers,
                            seed=cfg.seed, cache_dir=cfg.cache_dir)
    if cfg.speakers is not None:
        corpus = select_speakers(corpus, cfg.speakers, cfg.seed)
    utts = sorted(corpus.utterances, key=lambda u: u.utterance_id)
    if not utts:
        raise UserError(f"no utterances found in {corpus.name}")
    caps = dict.fromkeys([*SECTIONS, *features], cfg.max_seconds)
    if cfg.max_seconds is None and device == "cpu":
        caps.update({f: CPU_WAV2VEC2_SECONDS for f in features if f == "wav2vec2" or "=" in f})
    chosen = {f: select(utts, caps[f]) for f in features}
    largest = max(chosen.values(), key=len)  # each is a prefix of the same list
    warm_page_cache(largest)

    result: dict = {
        "schema": SCHEMA, "device": device, "device_name": provenance.device_name(device),
        "cpus": cores(), "source": corpus.name, "scale": cfg.scale, "repeat": cfg.repeat,
        "workers": cfg.workers, "batch_size": {},
    }
    rows: list[dict] = []
    peaks: dict[str, float] = {}  # MB: the new processes' peaks
    with tempfile.TemporaryDirectory(prefix="featstore-perf-") as tmp_name:
        tmp = Path(tmp_name)
        views = {f: make_view(tmp / f"{f.split('=')[0]}-corpus", chosen[f], cfg.scale)
                 for f in features}
        tiled = max(views.values(), key=len)
        log(f"decode: {len(tiled)} files")
        row, decoded = measure_decode(tiled, context.sample_rate, context.chunk_samples, cfg.repeat)
        rows.append(row)
        result.update(files=len(tiled), chunks=int(sum(len(d.counts) for d in decoded)),
                      audio_seconds=row["audio_seconds"])
        # every view's files are among the largest's: the same audio behind each symlink
        by_file = {os.path.realpath(u.path): d for u, d in zip(tiled, decoded, strict=True)}
        for f in features:
            dec = [by_file[os.path.realpath(u.path)] for u in views[f]]
            log(f"{f}: {len(views[f])} files, {audio_seconds(dec, context.sample_rate):.1f} s of "
                "audio")
            if f == "mfcc":
                section_rows, section_peaks = mfcc.measure(tmp / "mfcc-corpus", views[f], dec,
                                                           cfg, context, tmp, log)
                rows += section_rows
                peaks.update(section_peaks)
                result["batch_size"]["mfcc"] = section_rows[1]["batch_size"]
            elif f == "build":
                section_rows, result["ceiling"] = default_build.measure(
                    tmp / "build-corpus", views[f], dec, cfg, context, tmp, log)
                rows += section_rows
            elif f == "dvector" or "=" in f:
                log(f"{f}: batched extractor and one chunk at a time, alternated")
                section_rows = embeddings.measure(f, dec, context, cfg.batch_size, cfg.repeat)
                rows += section_rows
                result["batch_size"][section_rows[0]["section"]] = section_rows[0]["batch_size"]
            elif f in ("pitch", "fbank"):
                log(f"{f}: batched extractor and the per-chunk reference, alternated")
                section_rows = frame_features.measure(f, dec, context, cfg.batch_size, cfg.repeat)
                rows += section_rows
                result["batch_size"][f] = section_rows[0]["batch_size"]
            else:
                log(f"wav2vec2: model {cfg.model}: bare forward and build(), alternated, then "
                    "one chunk at a time")
                pipeline = builds.in_process(tmp / "wav2vec2-corpus", "wav2vec2", cfg, device,
                                             tmp)
                with torch_threads(cpu_threads(device)):  # the bare forward gets build()'s
                    w2v_rows, load = wav2vec2.measure(dec, context, cfg.model, cfg.batch_size,
                                                      cfg.repeat, pipeline)
                rows += w2v_rows
                result["batch_size"]["wav2vec2"] = w2v_rows[0]["batch_size"]
                result["wav2vec2_load_seconds"] = load

    result["rows"] = rows
    result["speedups"] = _speedups(result, {r["id"]: r for r in rows})
    result["torch_threads"] = torch.get_num_threads()
    result["peak_host_mb"] = {
        "self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / RSS_UNIT,
        "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / RSS_UNIT,
        **peaks,
    }
    result["peak_gpu_mb"] = (torch.cuda.max_memory_allocated(device) / 2**20
                             if device.startswith("cuda") else None)
    result["versions"] = provenance.versions(("librosa", "tabulate"))
    return result


def _speedups(result: dict, rows: dict[str, dict]) -> dict[str, float]:
    out = {}
    if "mfcc_build" in rows:
        out.update(mfcc_in_process=ratio(rows, "mfcc_build", "mfcc_classic"),
                   mfcc_extractor_only=ratio(rows, "mfcc_batched", "mfcc_classic"),
                   mfcc_end_to_end=ratio(rows, "mfcc_build_e2e", "mfcc_classic_e2e"))
    for f in ("pitch", "fbank"):
        if f"{f}_batched" in rows:
            out[f"{f}_batched_vs_reference"] = ratio(rows, f"{f}_batched", f"{f}_reference")
    if "build_default_e2e" in rows:
        mfcc_s, default_s = rows["build_mfcc_e2e"]["seconds"], rows["build_default_e2e"]["seconds"]
        out["default_build_wall_vs_mfcc_build"] = default_s / mfcc_s if mfcc_s else None
        out["mfcc_build_vs_classic_whole_file"] = ratio(rows, "build_mfcc_e2e",
                                                        "mfcc_classic_file_e2e")
    if "wav2vec2_build" in rows:
        out["wav2vec2_pipeline_vs_bare"] = ratio(rows, "wav2vec2_build", "wav2vec2_bare")
        steady = rows["wav2vec2_build"]["seconds"] - result["wav2vec2_load_seconds"]
        if steady > 0:
            out["wav2vec2_pipeline_vs_bare_excl_load"] = rows["wav2vec2_bare"]["seconds"] / steady
        out["wav2vec2_batched_vs_unbatched"] = ratio(rows, "wav2vec2_bare", "wav2vec2_unbatched")
    for row_id in rows:  # dvector and NAME=MODEL sections
        if row_id.endswith("_one_at_a_time"):
            name = row_id.removesuffix("_one_at_a_time")
            out[f"{name}_batched_vs_one_at_a_time"] = ratio(rows, f"{name}_batched", row_id)
    return {k: v for k, v in out.items() if v is not None}
