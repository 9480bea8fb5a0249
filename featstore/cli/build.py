"""featstore build: corpus -> chunks -> features -> store."""

from __future__ import annotations

import argparse
from pathlib import Path

from featstore.cli.extract_args import add_extractor_arguments, extractor_configs
from featstore.cli.types import (
    add_ray_argument,
    add_source_arguments,
    name_list,
    nonneg_int,
    positive_float,
    positive_int,
)
from featstore.extractors import ENTRY_HELP, NAMES
from featstore.sources.hf_corpus import DEFAULT_COLUMNS

DEFAULT_FEATURES = "mfcc,pitch,fbank,wav2vec2,dvector,audio"
# without --features, an unloadable model (or Resemblyzer's weights not installed) is a notice
OPTIONAL_BY_DEFAULT = ("wav2vec2", "dvector")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, None, "librispeech:dev-clean")
    cols = p.add_argument_group("columns of an hf: source (--chapter-column, --gender-map: "
                                "also lhotse:)")
    for role, default in DEFAULT_COLUMNS.items():
        extra = (" (lhotse: the supervision's custom field; default the recording id)"
                 if role == "chapter" else "")
        cols.add_argument(f"--{role}-column", dest=f"col_{role}", metavar="COLUMN",
                          help=f"{role} column (default {default}){extra}")
    cols.add_argument("--gender-map", dest="col_gender_map", metavar="FILE",
                      help="speaker genders from a file (LibriSpeech's SPEAKERS.TXT, or lines "
                      "'speaker,F'), in place of a gender column (lhotse: for speakers whose "
                      "supervisions have no gender)")
    lh = p.add_argument_group("lhotse: source")
    lh.add_argument("--channel", dest="col_channel", type=lambda t: str(nonneg_int(t)),
                    metavar="N", help="read this channel of multi-channel recordings (default: "
                    "all channels, down-mixed)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("stores/default"),
                     help="store folder (default stores/default)")
    out.add_argument("--resume", action="store_true", help="finish an interrupted build")
    out.add_argument("--overwrite", action="store_true", help="replace an existing store")
    out.add_argument("--shard-size", type=positive_int, default=256,
                     help="utterances per shard: the unit of resumption (default 256)")
    feat = p.add_argument_group("features")
    feat.add_argument("--features", type=name_list,
                      help=f"comma list from {', '.join(NAMES)}, and {ENTRY_HELP} "
                      f"(default {DEFAULT_FEATURES}; by default a wav2vec2 model that cannot be "
                      "loaded, or dvector without its weights, is skipped with a notice, when "
                      "named here it is an error)")
    feat.add_argument("--chunk-seconds", type=positive_float, default=2.0)
    add_extractor_arguments(feat)
    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    run.add_argument("--batch-size", type=positive_int, help="chunks per batch (default: the "
                     "smallest an extractor suggests: self-supervised models 16 on CPU and from "
                     "free GPU memory on CUDA; else 256 on CPU, 1024 on CUDA)")
    run.add_argument("--workers", type=nonneg_int, help="decoding threads, running ahead of "
                     "extraction (default: one per core on CPU, on CUDA cores - 2; at most 8); "
                     "0 decodes inline")
    add_ray_argument(run, "build the shards in parallel")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from featstore.build import BuildConfig, build

    features = args.features or name_list(DEFAULT_FEATURES)
    build(BuildConfig(
        out=args.out, source=args.source, subsets=args.subsets, speakers=args.speakers,
        seed=args.seed, features=features,
        optional=() if args.features else OPTIONAL_BY_DEFAULT, chunk_seconds=args.chunk_seconds,
        batch_size=args.batch_size, workers=args.workers, shard_size=args.shard_size,
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
        cache_dir=args.cache_dir, device=args.device,
        configs=extractor_configs(args, features), ray=args.ray,
        source_options={k[4:]: v for k, v in vars(args).items()
                        if k.startswith("col_") and v is not None},
    ))
    return 0
