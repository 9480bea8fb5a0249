"""One cell in a worker process: the part ``bench run --ray`` (bench/distributed.py) and
``bench run --jobs N`` (bench/pool.py) share.

A worker needs only the store, read from the path the driver opened. It first checks that it
sees that store and runs the code the driver planned with (cell keys hash the code), then runs
the cell with ``execute_cell`` into a temporary run folder and sends back the record and the
files it wrote (predictions, plot). The driver writes those files and appends the record:
results.jsonl keeps one writer.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.cell import RunContext, ViewCache, execute_cell
from bench.config import Config
from bench.plan import Cell, code_version, store_hash
from bench.splits import Split
from featstore.cluster import node_name


@dataclass(frozen=True)
class Job:
    """What every cell of a run shares (sent to each worker once)."""

    run: str  # unique per run: a worker's cached view is reused within one run only
    store: str
    store_hash: str
    code: str
    config: Config
    device: str
    splits: dict[str, dict[int, Split]]

    @classmethod
    def of(cls, ctx: RunContext) -> Job:
        """The job of the driver's run ``ctx`` (a new run id: fresh worker caches)."""
        return cls(uuid.uuid4().hex, str(ctx.store.path.absolute()), store_hash(ctx.store),
                   code_version(), ctx.config, ctx.device, ctx.splits)


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


def run_cell(job: Job, cell: Cell, plot: str | None, device: str) -> dict:
    """One cell on ``device``: {"record", "files"}, or {"unseen": why} when this worker
    cannot take part (no store at the path, another store there, other code)."""
    problem = None if Path(job.store).is_dir() else (
        f"worker on {node_name()} cannot see the store {job.store}")
    if problem is None:
        store = _open_store(job)
        if store is None:
            problem = (f"worker on {node_name()} sees another store at {job.store} than the "
                       "driver (index.json differs): the workers need the driver's store")
        elif code_version() != job.code:
            problem = (f"worker on {node_name()} runs other bench/model code than the driver "
                       "(code version differs): install the same version on every node")
    if problem is not None:
        return {"unseen": problem}
    if job.run not in _VIEWS:
        _VIEWS.clear()
        _VIEWS[job.run] = ViewCache()
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        ctx = RunContext(job.config, store, device, Path(tmp), job.splits, quiet=True,
                         test_stores=_test_stores(job))
        record = execute_cell(ctx, cell, _VIEWS[job.run], plot)
        files = {p.relative_to(tmp).as_posix(): p.read_bytes()
                 for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
    return {"record": record, "files": files}


def receive(run_dir: Path, out: dict) -> dict:
    """In the driver: write the files a worker sent back; its record. A worker that could
    not take part stops the run (UserError, one line)."""
    from featstore.errors import UserError

    if "unseen" in out:
        raise UserError(out["unseen"])
    for rel, data in out["files"].items():
        path = run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return out["record"]
