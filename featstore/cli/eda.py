"""featstore eda: exploratory report on a store's MFCCs and pitch (markdown + PNGs)."""

from __future__ import annotations

import argparse

from featstore.cli.types import require_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    from featstore.eda import DEFAULT_MAX_CHUNKS

    p.add_argument("store", help="store folder (needs the mfcc feature)")
    p.add_argument("--out", required=True, help="folder for report.md and the PNGs")
    p.add_argument("--max-chunks", type=int, default=DEFAULT_MAX_CHUNKS,
                   help="analyse at most this many chunks, drawn at random (default %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the subsample and the example utterances (default 0)")


def run(args: argparse.Namespace) -> int:
    from featstore.eda import write_report

    require_dir(args.store)
    result = write_report(args.store, args.out, max_chunks=args.max_chunks, seed=args.seed)
    print(f"wrote {result.report} and {len(result.figures)} figures "
          f"({result.n_chunks} chunks analysed)")
    return 0
