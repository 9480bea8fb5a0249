"""The actor pool of ``build --ray`` and ``add --ray`` (featstore/build_ray.py, add_ray.py):
actors started with Ray's restart policy, each checked before any shard is handed out, one
``build(shard)`` call per pending shard, and a shard that still fails as one line. Imported only
when --ray is given.

A worker class has ``check()`` (its batch size, or a str saying why it cannot work) and
``build(shard)`` (a report dict); a restarted actor has re-run ``__init__`` only, so its
``build`` calls :func:`check_again` before working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

from featstore import cluster as ray_cluster
from featstore.errors import UserError

RETRIES = 3  # restarts of a dead actor, and retries of its shard


def run_pool(worker: type, args: tuple, res: dict, n: int, pending: list[int], *, desc: str,
             quiet: bool, failure: Callable[[Exception], str]) -> tuple[list, list[dict]]:
    """``n`` actors ``worker(*args)`` with the resources ``res`` build the ``pending`` shards;
    returns every actor's ``check()`` and every shard's report. A failed check is a UserError
    (the first reason); a shard that fails after the retries a UserError of ``failure(exc)``.
    The actors are killed at the end either way."""
    ray = ray_cluster.ray_module()
    from ray.util import ActorPool

    actor = ray.remote(worker).options(**res, max_restarts=RETRIES, max_task_retries=RETRIES)
    actors = [actor.remote(*args) for _ in range(n)]
    try:
        checks = ray.get([a.check.remote() for a in actors])
        problems = [c for c in checks if isinstance(c, str)]
        if problems:
            raise UserError(problems[0])
        bar = tqdm(total=len(pending), unit="shard", desc=desc, disable=quiet or None,
                   file=sys.stderr)
        reports = []
        try:
            for report in ActorPool(actors).map_unordered(lambda a, i: a.build.remote(i), pending):
                reports.append(report)
                bar.update(1)
        except ray.exceptions.RayError as exc:
            raise UserError(failure(exc)) from None
        finally:
            bar.close()
    finally:
        for a in actors:
            ray.kill(a)
    return checks, reports


def batch_sizes(checks: list[int]) -> int | list[int]:
    """The batch size the workers used, or the sorted sizes when they differ."""
    sizes = sorted(set(checks))
    return sizes[0] if len(sizes) == 1 else sizes


def error_text(exc: Exception) -> str:
    """A Ray error's cause on one line."""
    return " ".join(str(getattr(exc, "cause", None) or exc).split())


def check_again(worker) -> None:
    """In a restarted actor: ``worker.check()`` again, its reason raised."""
    problem = worker.check()
    if isinstance(problem, str):
        raise RuntimeError(problem)
