"""featstore add: new features for a store's existing chunks."""

from __future__ import annotations

import argparse
from pathlib import Path

from featstore.cli.extract_args import add_extractor_arguments, extractor_configs
from featstore.cli.types import add_ray_argument, name_list, nonneg_int, positive_int, require_dir
from featstore.extractors import NAMES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store folder")
    p.add_argument("--features", type=name_list, required=True,
                   help=f"comma list from {', '.join(NAMES)}")
    p.add_argument("--source", help="decode the audio from here (the corpus moved; it must be "
                   "the same audio: utterance ids and lengths are checked). Default: the store's "
                   "own audio feature if it has one, else the source it was built from")
    p.add_argument("--cache-dir", help="download cache of a librispeech:/hf: source")
    p.add_argument("--resume", action="store_true", help="finish an interrupted add")
    add_extractor_arguments(p.add_argument_group("extractor parameters (as for build)"))
    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    run.add_argument("--batch-size", type=positive_int, help="chunks per batch (default as build)")
    run.add_argument("--workers", type=nonneg_int, help="decoding threads (as build)")
    add_ray_argument(run, "build the new feature files in parallel")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from featstore.add import AddConfig, add

    require_dir(args.store)
    add(AddConfig(store=Path(args.store), features=args.features, source=args.source,
                  cache_dir=args.cache_dir, batch_size=args.batch_size, workers=args.workers,
                  resume=args.resume, quiet=args.quiet, device=args.device,
                  configs=extractor_configs(args, args.features), ray=args.ray))
    return 0
