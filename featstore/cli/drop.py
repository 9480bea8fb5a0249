"""featstore drop: remove features from a store and free their disk space."""

from __future__ import annotations

import argparse
from pathlib import Path

from featstore.cli.types import name_list, require_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store folder")
    p.add_argument("--features", type=name_list, required=True,
                   help="comma list of feature groups (extractor names: wav2vec2, pitch, ...)")
    p.add_argument("--quiet", action="store_true", help="no summary line")


def run(args: argparse.Namespace) -> int:
    from featstore.drop import drop

    require_dir(args.store)
    drop(Path(args.store), args.features, quiet=args.quiet)
    return 0
