"""``python -m bench run CONFIG | list | compare RUN_A RUN_B``.

Exit codes: 0 ok; 1 a cell failed (the others still ran) or a split leaked; 2 a usage or
config mistake, printed as one line ``bench: error: ...``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from featstore.cli import OneLineParser
from featstore.cli.types import add_ray_argument, name_list, positive_int
from featstore.errors import UserError


def add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="benchmarks YAML file")
    p.add_argument("--store", help="store folder (overrides the config's store)")
    p.add_argument("--out", type=Path, help="run folder (default: a new timestamped folder "
                   "under the config's out)")
    p.add_argument("--tasks", type=name_list, help="only these tasks of the config, e.g. gender")
    p.add_argument("--models", type=name_list, help="only these models of the config")
    p.add_argument("--features", help="only these feature views of the config, e.g. "
                   "mfcc,wav2vec2:0,6,12")
    p.add_argument("--seeds", type=positive_int, help="use seeds 0..N-1")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (overrides the config)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out: skip "
                   "cells already finished ok with the same key")
    p.add_argument("--skip-missing-views", action="store_true", help="skip the grid entries "
                   "whose feature view the store lacks (listed in leaderboard.md with the "
                   "reason) instead of stopping")
    add_ray_argument(p, "run the cells as parallel tasks")
    p.add_argument("--jobs", type=jobs_value, default=1, metavar="N|auto",
                   help="run N cells at a time in worker processes of this machine (auto: one "
                   "per core; default 1: one at a time, in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")


def cmd_run(args: argparse.Namespace) -> int:
    from bench import config as cfg
    from bench import runner
    from bench.views import split_names

    config = cfg.load(args.config)
    config = cfg.with_overrides(
        config, store=args.store, device=args.device, seeds=args.seeds, tasks=args.tasks,
        models=args.models, features=split_names(args.features) if args.features else None)
    if args.ray is not None and args.jobs != 1:
        raise UserError("--jobs runs cells on this machine, --ray on a cluster: choose one")
    if args.resume and args.out is None:
        raise UserError("--resume needs --out pointing at the run folder to continue")
    run_dir = args.out or new_run_dir(Path(config.out))
    return runner.run(config, run_dir, resume=args.resume, quiet=args.quiet,
                      command=" ".join(["python -m bench", *args.argv]),
                      skip_missing_views=args.skip_missing_views, ray=args.ray,
                      jobs=args.jobs)


def jobs_value(text: str) -> int:
    """``--jobs``: a positive number, or auto (one per core)."""
    if text == "auto":
        from featstore.machine import cores

        return cores()
    return positive_int(text)


def new_run_dir(parent: Path) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    path, n = parent / stamp, 1
    while path.exists():  # two runs in the same second
        path, n = parent / f"{stamp}-{n}", n + 1
    return path


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    import models
    from bench.tasks import TASKS
    from bench.views import CATALOGUE, store_views

    print("Tasks\n")
    print(tabulate([(t.name, t.kind, t.unit, t.rule) for t in TASKS.values()],
                   ["task", "kind", "unit", "split rule"], tablefmt="github"))
    print("\nFeature views\n")
    print(tabulate([(n, k, d) for n, (k, d) in CATALOGUE.items()],
                   ["view", "kind", "description"], tablefmt="github"))
    if args.store:
        import featstore

        print(f"\nViews in {args.store}: {', '.join(store_views(featstore.open(args.store)))}")
    print("\nModels\n")
    rows = [(s.name, s.kind, ", ".join(s.inputs), _grid(s), s.description)
            for s in models.MODELS.values()]
    print(tabulate(sorted(rows), ["model", "kind", "inputs", "default search grid",
                                  "description"], tablefmt="github"))
    from bench.verification.backends import BACKENDS

    print("\nVerification backends (the models of a verification task; vector views)\n")
    print(tabulate([(b.name, b.description) for b in BACKENDS.values()],
                   ["backend", "description"], tablefmt="github"))
    return 0


def _grid(spec) -> str:
    grid = [f"{k} {list(v)}" for k, v in spec.search.items()]
    if spec.iterations:
        grid.append(f"{spec.iterations} by early stopping")
    return "; ".join(grid) or "–"


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.compare import compare

    print(compare(args.run_a, args.run_b), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.rerender import rerender

    path = rerender(args.run_dir)
    print(f"bench: wrote {path}", file=sys.stderr)
    return 0


COMMANDS = {
    "run": ("run a benchmark config", add_run, cmd_run),
    "list": ("list tasks, feature views and models",
             lambda p: p.add_argument("--store", help="also list the views this store has"),
             cmd_list),
    "compare": ("compare two runs cell by cell, with paired significance tests",
                lambda p: (p.add_argument("run_a", type=Path), p.add_argument("run_b", type=Path)),
                cmd_compare),
    "report": ("render a finished run's leaderboard again from its results.jsonl",
               lambda p: p.add_argument("run_dir", type=Path), cmd_report),
}


def main(argv: list[str] | None = None) -> int:
    from bench.splits import LeakageError

    parser = OneLineParser(prog="bench", description="Benchmarks of speech models on a "
                           "featstore store.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded in env.json and the leaderboard
    try:
        return COMMANDS[args.command][2](args)
    except UserError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except LeakageError as exc:
        print(f"bench: error: split leakage, nothing was run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted (finished cells are in results.jsonl; continue with "
              "--resume)", file=sys.stderr)
        return 130
