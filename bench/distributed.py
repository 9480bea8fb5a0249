"""``bench run --ray``: each cell is one Ray task; Ray schedules, and retries a task whose worker
died. Imported only when --ray is given.

A task needs only the store, read from the path the driver opened (shared storage). It first
checks that it sees that store (one-line error otherwise) and runs the code the driver planned
with (cell keys hash the code), then runs the cell with ``execute_cell`` into a temporary run
folder and sends back the record and the files it wrote (predictions, plot). The driver writes
those files and appends the record: results.jsonl keeps one writer. A cell that raises is
recorded as failed by ``execute_cell``; one whose worker died more than ``MAX_RETRIES`` times is
recorded as failed here.
"""

from __future__ import annotations

import tempfile
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import models
from bench.cell import RunContext, ViewCache, cell_record, execute_cell, failed, model_kind
from bench.config import Config
from bench.plan import Cell, code_version, store_hash
from bench.splits import Split
from featstore.cluster import node_name, ray_module, unseen
from featstore.device import is_cuda
from featstore.errors import UserError

MAX_RETRIES = 3  # per cell, for worker crashes only (a cell that raises is recorded, not retried)


@dataclass(frozen=True)
class Job:
    """What every task of a run shares (put in Ray's object store once)."""

    run: str  # unique per run: a worker's cached view is reused within one run only
    store: str
    store_hash: str
    code: str
    config: Config
    device: str
    splits: dict[str, dict[int, Split]]


def resources(cell: Cell, device: str) -> dict:
    """A GPU for a cell whose model uses one on a CUDA run; one CPU otherwise."""
    gpu = is_cuda(device) and model_kind(cell) != "backend" and models.MODELS[cell.model].uses_gpu
    return {"num_cpus": 1, "num_gpus": 1 if gpu else 0}


def run_cells(ctx: RunContext, cells: list[Cell], plots: dict[str, str],
              finished: Callable[[Cell, dict], None]) -> None:
    """Run ``cells`` on the cluster; ``finished(cell, record)`` in this process as each ends."""
    ray = ray_module()
    job = ray.put(Job(uuid.uuid4().hex, str(ctx.store.path.absolute()), store_hash(ctx.store),
                      code_version(), ctx.config, ctx.device, ctx.splits))
    task = ray.remote(max_retries=MAX_RETRIES)(remote_cell)
    refs = {task.options(**resources(c, ctx.device)).remote(job, c, plots.get(c.key)): c
            for c in cells}
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            cell = refs[ready[0]]
            try:
                out = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # its worker died MAX_RETRIES + 1 times
                record = failed(cell_record(cell, ctx.device), exc, traceback.format_exc(-8))
            else:
                if "unseen" in out:
                    raise UserError(out["unseen"])
                record = out["record"]
                for rel, data in out["files"].items():
                    path = ctx.run_dir / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
            finished(cell, record)
    finally:
        for ref in pending:  # an error or Ctrl-C: leave nothing running on the cluster
            ray.cancel(ref)


# ---- on the worker ------------------------------------------------------------------------

_STORE: dict = {}  # (path, hash) -> Store: opened once per worker process
_TEST_STORES: dict[str, dict] = {}  # run -> its cross-corpus test stores
_VIEWS: dict[str, ViewCache] = {}  # run -> its view cache (only the latest run is kept)


def _open_store(job: Job):
    import featstore

    key = (job.store, job.store_hash)
    if key not in _STORE:
        store = featstore.open(job.store)
        if store_hash(store) != job.store_hash:
            return None
        _STORE.clear()
        _STORE[key] = store
    return _STORE[key]


def _test_stores(job: Job) -> dict:
    """The run's cross-corpus test stores, opened once per worker process."""
    from bench.plan import open_test_stores

    if job.run not in _TEST_STORES:
        _TEST_STORES.clear()
        _TEST_STORES[job.run] = open_test_stores(job.config)
    return _TEST_STORES[job.run]


def remote_cell(job: Job, cell: Cell, plot: str | None) -> dict:
    """One cell on a worker: {"record", "files"}, or {"unseen": why} when this worker cannot
    take part (no store at the path, another store there, other code)."""
    problem = unseen("the store", job.store)
    if problem is None:
        store = _open_store(job)
        if store is None:
            problem = (f"Ray worker on {node_name()} sees another store at {job.store} than the "
                       "driver (index.json differs): --ray needs one shared store")
        elif code_version() != job.code:
            problem = (f"Ray worker on {node_name()} runs other bench/model code than the driver "
                       "(code version differs): install the same version on every node")
    if problem is not None:
        return {"unseen": problem}
    if job.run not in _VIEWS:
        _VIEWS.clear()
        _VIEWS[job.run] = ViewCache()
    # a CPU-only model's task holds no GPU, so it must not ask torch for one
    device = job.device if resources(cell, job.device)["num_gpus"] else "cpu"
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        ctx = RunContext(job.config, store, device, Path(tmp), job.splits, quiet=True,
                         test_stores=_test_stores(job))
        record = execute_cell(ctx, cell, _VIEWS[job.run], plot)
        files = {p.relative_to(tmp).as_posix(): p.read_bytes()
                 for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
    record["ray_node"] = node_name()
    return {"record": record, "files": files}
