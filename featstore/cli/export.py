"""featstore export: a store as a Hugging Face dataset (Arrow), Parquet files or a lhotse
CutSet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from featstore.cli.types import name_list, require_dir


def row_selection(text: str) -> list[int] | slice:
    """'START:STOP' (either may be left out) or a comma list of rows and ranges '0,5,10-19'."""
    try:
        if ":" in text:
            start, stop = text.split(":", 1)
            return slice(int(start) if start else None, int(stop) if stop else None)
        rows = []
        for part in name_list(text):
            lo, _, hi = part.partition("-") if "-" in part[1:] else (part, "", part)
            rows.extend(range(int(lo), int(hi) + 1))
        return rows
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP or rows like 0,5,10-19, got "
                                         f"'{text}'") from None


def condition(text: str) -> tuple[str, list[str]]:
    column, sep, values = text.partition("=")
    if not sep or not column or not values:
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE[,VALUE...], got '{text}'")
    return column, name_list(values)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store folder")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--format", choices=["hf", "parquet", "lhotse"], default="hf",
                   help="hf: a datasets.Dataset saved with save_to_disk (load_from_disk reads "
                   "it); parquet: part-NNNNN.parquet files; lhotse: cuts.jsonl.gz, one cut per "
                   "chunk with its features as arrays in features.h5 (cut.load_custom(NAME); "
                   'needs pip install "featstore[lhotse]") (default hf)')
    p.add_argument("--features", type=name_list, help="comma list (default all)")
    p.add_argument("--rows", type=row_selection,
                   help="store rows: START:STOP or a list like 0,5,10-19 (default all)")
    p.add_argument("--where", type=condition, action="append", default=[],
                   metavar="COLUMN=VALUE[,VALUE]", help="keep rows whose meta column has one "
                   "of the values, e.g. subset=test-other or gender=F (repeatable: all must hold)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from featstore.store.export import export
    from featstore.store.reader import Store

    require_dir(args.store)
    where: dict[str, list[str]] = {}
    for column, values in args.where:
        where.setdefault(column, []).extend(values)
    with Store(args.store) as store:
        rows = args.rows
        if isinstance(rows, slice):
            rows = np.arange(len(store))[rows]
        if args.format == "lhotse":  # imports lhotse: only for this format
            from featstore.store.export_lhotse import export_lhotse

            n = export_lhotse(store, args.out, args.features, rows, where, args.overwrite)
        else:
            n = export(store, args.out, args.format, args.features, rows, where, args.overwrite)
    print(f"wrote {n} rows to {args.out} ({args.format})", file=sys.stderr)
    return 0
