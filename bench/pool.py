"""``bench run --jobs N``: the cells on N worker processes of this machine.

Most cells use one core (small torch networks, xgboost, scikit-learn fits run one thread: on
small data a second thread costs more than it gives), so one cell at a time leaves the other
cores idle. Workers are spawned, never forked (h5py files and torch threads do not survive a
fork), each with ``cores // N`` threads for torch and the BLAS libraries, and run
``bench.worker.run_cell``; this process still writes every file and appends every record.
A worker that dies (killed, out of memory) breaks the pool: the cells it leaves unfinished are
recorded as failed, and ``--resume`` runs them again.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from bench.cell import RunContext, cell_record, failed
from bench.plan import Cell
from bench.worker import Job, receive, run_cell
from featstore.machine import cores


def _init_worker(threads: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # numpy / scikit-learn BLAS and OpenMP pools


def run_cells(ctx: RunContext, cells: list[Cell], plots: dict[str, str],
              finished: Callable[[Cell, dict], None], jobs: int) -> None:
    """Run ``cells`` on ``jobs`` local workers; ``finished(cell, record)`` here as each ends."""
    job = Job.of(ctx)
    threads = max(1, cores() // jobs)
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))
    try:
        futures: dict[Future, Cell] = {
            pool.submit(run_cell, job, c, plots.get(c.key), ctx.device): c for c in cells}
        for future in as_completed(futures):
            cell = futures[future]
            try:
                out = future.result()
            except Exception as exc:  # the worker died (BrokenProcessPool) or sent junk
                record = failed(cell_record(cell, ctx.device), exc, traceback.format_exc(-8))
            else:
                record = receive(ctx.run_dir, out)
            finished(cell, record)
    finally:  # an error or Ctrl-C: start nothing more, stop the workers
        pool.shutdown(wait=True, cancel_futures=True)
