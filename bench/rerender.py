"""``bench report RUN_DIR``: render a finished run's leaderboard and pictures again from its
``results.jsonl`` and ``env.json`` alone (after a change to the report code, say), without
opening the store or running a cell. The report holds the cells of the run's last plan, as
``bench run`` wrote it."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report
from bench import results as rfiles
from featstore.errors import UserError


def rerender(run_dir: Path) -> Path:
    """Rewrite ``run_dir``'s leaderboard.md and pictures; returns the leaderboard's path."""
    env_path = Path(run_dir) / rfiles.ENV
    if not (Path(run_dir) / rfiles.RESULTS).is_file() or not env_path.is_file():
        raise UserError(f"{run_dir} is not a bench run folder (it needs {rfiles.RESULTS} and "
                        f"{rfiles.ENV}); give the --out folder of a `bench run`")
    try:
        env = json.loads(env_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {env_path}: {exc}") from None
    if "cells" not in env:
        raise UserError(f"{run_dir} was not finished by this version of `bench run` (its "
                        f"{rfiles.ENV} lists no planned cells): rerun it with --resume")
    with rfiles.RunLock(run_dir):
        rfiles.repair(run_dir)
        records, env["ignored_records"] = rfiles.of_plan(rfiles.read_all(run_dir), env["cells"])
        report.write(Path(run_dir), records, env, env.get("notes", {}))
    return Path(run_dir) / rfiles.LEADERBOARD
