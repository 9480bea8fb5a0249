"""``python -m featstore COMMAND``. Each command is a module here with ``add_arguments(parser)``
and ``run(args) -> int``; user errors become one line on stderr and exit code 2, faults of the
machine (a full disk) one line and exit code 1."""

from __future__ import annotations

import argparse
import importlib
import sys

from featstore.errors import Fault, UserError

COMMANDS = {
    "build": "build a feature store from a corpus",
    "info": "describe a store (--json for one JSON object)",
    "verify": "check a store's checksums, shapes, values and index",
    "eda": "exploratory report on a store's MFCCs (markdown + PNGs)",
    "perf": "measure extraction throughput (real-time factors) on a source",
    "export": "write a store as a Hugging Face dataset (Arrow), Parquet files or a lhotse CutSet",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (not usage + error) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="featstore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    modules = {}
    for name, help_text in COMMANDS.items():
        modules[name] = importlib.import_module(f"featstore.cli.{name}")
        modules[name].add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return modules[args.command].run(args)
    except UserError as exc:
        print(f"featstore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Fault as exc:  # the machine failed (a full disk): resumable, exit 1
        print(f"featstore {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"featstore {args.command}: interrupted", file=sys.stderr)
        return 130
