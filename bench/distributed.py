"""``bench run --ray``: each cell is one Ray task; Ray schedules, and retries a task whose worker
died. Imported only when --ray is given.

Each task runs ``bench.worker.run_cell`` (the store from the driver's path, which must be on
shared storage; the same code); the driver writes the files it sends back and appends the
record. A cell that raises is recorded as failed by ``execute_cell``; one whose worker died
more than ``MAX_RETRIES`` times is recorded as failed here.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import models
from bench.cell import RunContext, cell_record, failed, model_kind
from bench.plan import Cell
from bench.worker import Job, receive, run_cell
from featstore.cluster import node_name, ray_module, unseen
from featstore.device import is_cuda

MAX_RETRIES = 3  # per cell, for worker crashes only (a cell that raises is recorded, not retried)


def resources(cell: Cell, device: str) -> dict:
    """A GPU for a cell whose model uses one on a CUDA run; one CPU otherwise."""
    gpu = is_cuda(device) and model_kind(cell) != "backend" and models.MODELS[cell.model].uses_gpu
    return {"num_cpus": 1, "num_gpus": 1 if gpu else 0}


def run_cells(ctx: RunContext, cells: list[Cell], plots: dict[str, str],
              finished: Callable[[Cell, dict], None]) -> None:
    """Run ``cells`` on the cluster; ``finished(cell, record)`` in this process as each ends."""
    ray = ray_module()
    job = ray.put(Job.of(ctx))
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
                record = receive(ctx.run_dir, out)
            finished(cell, record)
    finally:
        for ref in pending:  # an error or Ctrl-C: leave nothing running on the cluster
            ray.cancel(ref)


def remote_cell(job: Job, cell: Cell, plot: str | None) -> dict:
    """One cell as a Ray task; its record names the node it ran on."""
    problem = unseen("the store", job.store)  # says what --ray needs of the storage
    if problem is not None:
        return {"unseen": problem}
    # a CPU-only model's task holds no GPU, so it must not ask torch for one
    device = job.device if resources(cell, job.device)["num_gpus"] else "cpu"
    out = run_cell(job, cell, plot, device)
    if "record" in out:
        out["record"]["ray_node"] = node_name()
    return out
