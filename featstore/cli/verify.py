"""featstore verify: exit 0 when the store is sound, 1 naming what is wrong."""

from __future__ import annotations

import argparse
import sys

from featstore.cli.types import require_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store folder")


def run(args: argparse.Namespace) -> int:
    from featstore.store.verify import verify

    require_dir(args.store)
    errors = verify(args.store)
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    if not errors:
        print(f"OK {args.store}")
    return 1 if errors else 0
