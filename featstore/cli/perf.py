"""featstore perf: extraction throughput (real-time factors) on a source, as a markdown table
or (--json) one JSON object; the keys are documented in featstore.perf."""

from __future__ import annotations

import argparse
import json

from featstore.cli.types import (
    add_source_arguments,
    name_list,
    nonneg_int,
    positive_float,
    positive_int,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, "synthetic", "synthetic")
    feat = p.add_argument_group("what to measure")
    feat.add_argument("--features", type=name_list, default=["mfcc"],
                      help="sections to run, comma list from mfcc, wav2vec2, pitch, fbank, "
                      "build, dvector, and NAME=MODEL upstreams or xvector=MODEL (default mfcc); "
                      "decoding is always measured")
    feat.add_argument("--model", default="facebook/wav2vec2-base",
                      help="wav2vec2 hub id or local path")
    feat.add_argument("--max-seconds", type=positive_float,
                      help="use only the first files totalling N seconds of audio (default: "
                      "all; wav2vec2 on CPU: 120)")
    feat.add_argument("--scale", type=positive_int, default=1,
                      help="tile the selected files N times under new speaker ids (the real "
                      "sample x8 is dev-clean's size; default 1)")
    feat.add_argument("--repeat", type=positive_int, default=3,
                      help="time each measurement N times, alternating the pairs compared, "
                      "and report the median (default 3)")
    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    run.add_argument("--batch-size", type=positive_int, help="chunks per batch (default: as "
                     "build chooses)")
    run.add_argument("--workers", type=nonneg_int, help="decoding threads for build "
                     "(default: as build chooses)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    from featstore.errors import UserError
    from featstore.perf import PerfConfig, render_markdown, run_perf

    kind = (args.source or "").partition(":")[0]
    if (args.source or "").startswith(("hf:", "lhotse:")):  # perf times whole files on disk
        raise UserError(f"perf measures audio files; an {kind}: source has records or segments, "
                        "not files (build from it, or measure the same audio as a folder)")
    result = run_perf(PerfConfig(
        source=args.source, subsets=args.subsets, speakers=args.speakers, seed=args.seed,
        cache_dir=args.cache_dir, features=args.features, model=args.model, device=args.device,
        batch_size=args.batch_size, workers=args.workers, max_seconds=args.max_seconds,
        scale=args.scale, repeat=args.repeat, quiet=args.quiet,
    ))
    print(json.dumps(result) if args.json else render_markdown(result))
    return 0
