"""featstore info: what a store holds."""

from __future__ import annotations

import argparse
import json

from featstore.cli.types import require_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from featstore.store.reader import Store
    from featstore.store.summary import render, summarize

    require_dir(args.store)
    with Store(args.store) as store:
        summary = summarize(store)
    print(json.dumps(summary) if args.json else render(summary))
    return 0

