"""Running the grid: plan cells, check everything that can be checked before any model runs,
then run each cell in isolation, appending its record to results.jsonl as it finishes.

Order of work, so that a mistake costs nothing:
 1. plan (bench/plan.py): cells and keys; hf-finetune's checkpoint is taken from the store's
    wav2vec2 model when the config gives none;
 2. preflight: every view exists in the store; every (model, params, grid point) builds (the
    models check their own parameter types and values); a failure is one line, exit 2;
 3. splits for every (task, seed), each checked by ``check_split``; an overlap stops the run;
 4. cells (bench/cell.py), grouped by (task, view) so each view is loaded once, for the task's
    rows only.
One cell raising does not stop the others: it is recorded with status "failed".

With ``--ray`` step 4 runs as Ray tasks (bench/distributed.py), with ``--jobs N`` on N local
worker processes (bench/pool.py); this process still plans, checks and alone appends to
results.jsonl and writes the reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from bench import report
from bench import results as rfiles
from bench.cell import RunContext, ViewCache, execute_cell, model_kind
from bench.code_version import ROOT, code_version
from bench.config import Config, ConfigError
from bench.crosscorpus import check_stores
from bench.plan import (
    Cell,
    make_splits,
    open_test_stores,
    plan,
    preflight,
    skip_missing,
    store_hash,
)
from bench.splits import describe
from featstore import device as featstore_device
from featstore import provenance
from featstore.errors import UserError
from featstore.store.reader import Store


def resolve_device(device: str) -> str:
    try:
        return featstore_device.resolve_device(device)
    except UserError as exc:
        raise ConfigError(f"device: {exc}") from None




# ---- the run ------------------------------------------------------------------------------


def check_resume(run_dir: Path) -> None:
    if not (run_dir / rfiles.RESULTS).is_file():
        raise ConfigError(f"--resume: {run_dir} holds no earlier run (no {rfiles.RESULTS}); "
                          "point --out at a run folder")


def prepare_run_dir(run_dir: Path, resume: bool) -> set[str]:
    """Create ``run_dir`` (or check it for --resume); the keys of cells already done."""
    if resume:
        check_resume(run_dir)
        rfiles.repair(run_dir)  # a killed run may have left a torn last line
        done = set()
        for r in rfiles.read_all(run_dir):
            if r.get("status") == "ok" and rfiles.predictions_path(run_dir, r["key"]).is_file():
                done.add(r["key"])
        return done
    if run_dir.exists() and any(p.name != rfiles.LOCK for p in run_dir.iterdir()):
        raise ConfigError(f"--out {run_dir} is not empty: pass --resume to continue that run, "
                          "or choose another folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    return set()


def environment(config: Config, store: Store, device: str, command: str,
                cluster: dict | None = None) -> dict:
    """env.json; ``cluster``: the Ray cluster of a --ray run, recorded with it."""
    import importlib.metadata as md

    versions = provenance.versions()
    for name in ("scipy", "tabulate", "matplotlib", "tqdm", "PyYAML"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    prov = store.provenance
    env = {
        "command": command,
        "started": provenance.now(),
        "config_path": config.path,
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "store": {"path": str(store.path), "index_hash": store_hash(store),
                  "source": prov.get("source_name"), "git_commit": prov.get("git_commit"),
                  "created": prov.get("created"), "chunks": len(store)},
        "code_version": code_version(),
        "git_commit": provenance.git_commit(ROOT),
        "versions": versions,
        "device": device,
        "device_name": provenance.device_name(device) if cluster is None
        else cluster_device_name(device, cluster),
        "memory_note": "peak_host_mb is the process's peak RSS so far (ru_maxrss); "
                       "host_mb_increase is how much a cell raised it",
    }
    if cluster is not None:
        env["cluster"] = cluster
    return env


def cluster_device_name(device: str, cluster: dict) -> str:
    from featstore.cluster import gpu_name

    return gpu_name(cluster) if device.startswith("cuda") else provenance.device_name("cpu")


def run(config: Config, run_dir: Path, *, resume: bool = False, quiet: bool = False,
        command: str = "", skip_missing_views: bool = False, ray: str | None = None,
        jobs: int = 1) -> int:
    """Run the grid into ``run_dir``; 0 if every cell is ok, 1 if any failed.

    A view the store lacks is an error, or with ``skip_missing_views`` its cells are skipped
    and listed, with the reason, in env.json and leaderboard.md. ``ray``: run the cells on the
    Ray cluster at that address ("auto": see featstore/cluster.py); ``jobs``: on that many
    worker processes of this machine (bench/pool.py; 1: in this process)."""
    import featstore

    if not Path(config.store).exists():
        raise ConfigError(f"store {config.store} not found: build it with `featstore build "
                          f"--out {config.store}` or pass --store")
    store = featstore.open(config.store)
    cluster = None
    if ray is None:
        device = resolve_device(config.device)
        check_device = device
    else:
        from featstore import cluster as ray_cluster

        cluster = ray_cluster.connect(ray)
        try:
            device = ray_cluster.cluster_device(config.device, cluster)
        except UserError as exc:
            raise ConfigError(f"device: {exc}") from None
        check_device = ray_cluster.driver_device(device)
    test_stores = open_test_stores(config)
    cells = plan(config, store, device, test_stores)
    skipped: list[dict] = []
    if skip_missing_views:
        cells, skipped = skip_missing(cells, store)
    preflight(cells, store, check_device)
    for task, test in test_stores.items():  # same views, same parameters, other speakers
        check_stores(task, list(dict.fromkeys(c.features for c in cells if c.task == task)),
                     store, test)
    ctx = RunContext(config, store, device, run_dir, make_splits(config, store, test_stores),
                     quiet, test_stores)
    if resume:
        check_resume(run_dir)  # before the lock, which would create the folder
    with rfiles.RunLock(run_dir):
        return _run_locked(ctx, cells, resume, command, cluster, skipped, jobs)


def _run_locked(ctx: RunContext, cells: list[Cell], resume: bool, command: str,
                cluster: dict | None, skipped: list[dict], jobs: int) -> int:
    """``run`` once the run folder is locked: cells, then the report of exactly these cells."""
    config, store, device, run_dir, quiet = (ctx.config, ctx.store, ctx.device, ctx.run_dir,
                                             ctx.quiet)
    done = prepare_run_dir(run_dir, resume)
    env = environment(config, store, device, command, cluster)
    env["skipped"] = skipped
    env["jobs"] = jobs if cluster is None else None
    (run_dir / rfiles.ENV).write_text(json.dumps(env, indent=1))
    splits_json = {task: {str(seed): describe(s, store.meta, ctx.test_store(task).meta)
                          for seed, s in by_seed.items()}
                   for task, by_seed in ctx.splits.items()}
    (run_dir / rfiles.SPLITS).write_text(json.dumps(splits_json, indent=1))

    todo = [c for c in cells if c.key not in done]
    bar = tqdm(total=len(todo), unit="cell", desc="bench", disable=quiet or None,
               file=sys.stderr)

    def finished(cell: Cell, record: dict) -> None:
        rfiles.append(run_dir, record)  # this process is the only writer
        bar.update(1)
        if record["status"] != "ok" and not quiet:
            tqdm.write(f"bench: {cell.label} failed: {record['error']}", file=sys.stderr)

    plots = plot_paths(todo)
    try:
        if cluster is None and jobs > 1 and len(todo) > 1:
            from bench.pool import run_cells

            run_cells(ctx, todo, plots, finished, jobs)
        elif cluster is None:
            cache = ViewCache()
            for cell in todo:
                bar.set_postfix_str(cell.label)
                finished(cell, execute_cell(ctx, cell, cache, plots.get(cell.key)))
        else:
            from bench.distributed import run_cells

            run_cells(ctx, todo, plots, finished)
    finally:
        bar.close()

    # the report holds exactly this plan's cells, in plan order; records of other plans (other
    # seeds, parameters, grid, store or code) stay in results.jsonl and are counted
    records, env["ignored_records"] = rfiles.of_plan(rfiles.read_all(run_dir),
                                                     [c.key for c in cells])
    notes = {task: sorted({n for s in by_seed.values() for n in s.notes})
             for task, by_seed in ctx.splits.items()}
    # what `bench report` needs to render this plan again without the store or the config
    env.update(finished=provenance.now(), cells=[c.key for c in cells], notes=notes)
    (run_dir / rfiles.ENV).write_text(json.dumps(env, indent=1))
    report.write(run_dir, records, env, notes)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        print(f"bench: {len(failed)} of {len(cells)} cell(s) failed (see {run_dir / rfiles.RESULTS}"
              f" and {run_dir / rfiles.LEADERBOARD})", file=sys.stderr)
        return 1
    if not quiet:
        print(f"bench: {len(cells)} cell(s) ok ({len(cells) - len(todo)} reused); results in "
              f"{run_dir}", file=sys.stderr)
    return 0


def plot_paths(cells: list[Cell]) -> dict[str, str]:
    """Cell key -> its plot, relative to the run folder: one per clusterer, task and view,
    drawn by its first seed."""
    out: dict[str, str] = {}
    seen: set[tuple] = set()
    for cell in cells:
        ident = (cell.task, cell.features, cell.model)
        if model_kind(cell) == "clusterer" and ident not in seen:
            seen.add(ident)
            out[cell.key] = f"plots/{cell.model}_{cell.task}_{_safe(cell.features)}.png"
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
