"""Running the grid: plan cells, check everything that can be checked before any model runs,
then run each cell in isolation, appending its record to results.jsonl as it finishes.

A cell is (task, feature view, model with its final params, seed). Its key hashes those with
the store's index, the code version and the settings that change results (split fractions,
subsets, bootstrap count, device type), so ``--resume`` reruns exactly the cells whose
inputs changed or that did not finish with status ok.

Order of work, so that a mistake costs nothing:
 1. plan: cells and keys; hf-finetune's checkpoint is taken from the store's wav2vec2 model
    when the config gives none;
 2. preflight: every view exists in the store; every (model, params) builds (the models
    check their own parameter types and values); a failure is one line, exit 2;
 3. splits for every (task, seed), each checked by ``check_split``; an overlap stops the run;
 4. cells, grouped by (task, view) so each view is loaded once, for the task's rows only.
One cell raising does not stop the others: it is recorded with status "failed".
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

import models
from bench import metrics, report
from bench import results as rfiles
from bench.config import Config, ConfigError, device_kind
from bench.splits import GROUP_COLUMN, Split, check_split, describe, labels, make_split
from bench.views import View, parse_view
from featstore import provenance
from featstore.store.reader import Store
from models.base import jsonable

CHECKPOINT_FROM_STORE = ("hf-finetune",)  # fine-tune the model the store's features came from
CODE_FILES = ("bench/views.py", "bench/splits.py", "bench/metrics.py", "bench/runner.py")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Cell:
    task: str
    features: str
    model: str
    seed: int
    params: dict
    overrides: dict  # device-specific settings applied (e.g. reduced CPU epochs)
    key: str

    @property
    def label(self) -> str:
        return f"{self.task} {self.features} {self.model} seed={self.seed}"


@dataclass
class TaskData:
    """One view loaded for all rows a task uses (the same rows for every seed)."""

    rows: np.ndarray
    X: np.ndarray

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.X[np.searchsorted(self.rows, rows)]


@dataclass
class RunContext:
    config: Config
    store: Store
    device: str
    run_dir: Path
    splits: dict[str, dict[int, Split]] = field(default_factory=dict)
    quiet: bool = False


# ---- versions and keys --------------------------------------------------------------------


def code_version() -> str:
    """Hash of the code that decides a cell's numbers: the models and the bench modules that
    split, load and score (not the report). git commits miss uncommitted edits."""
    h = hashlib.sha256()
    files = sorted((ROOT / "models").glob("*.py")) + [ROOT / f for f in CODE_FILES]
    for path in files:
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def store_hash(store: Store) -> str:
    return hashlib.sha256(json.dumps(store.index, sort_keys=True).encode()).hexdigest()[:16]


def cell_key(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_device(device: str) -> str:
    from models.device import resolve_device as resolve

    try:
        return resolve(device)
    except models.ModelConfigError as exc:
        raise ConfigError(f"device: {exc}") from None


def default_checkpoint(store: Store) -> str | None:
    """The wav2vec2 model the store was built with: its local folder if it still exists,
    else its hub id."""
    info = store.features.get("wav2vec2/mean")
    if info is None:
        return None
    extractors = store.provenance.get("params", {}).get("extractors", {})
    local = extractors.get("wav2vec2", {}).get("local_path")
    if local and Path(local).expanduser().is_dir():
        return str(local)
    return info.params.get("model")


# ---- planning and checks ------------------------------------------------------------------


def plan(config: Config, store: Store, device: str) -> list[Cell]:
    context = {"store": store_hash(store), "code": code_version(), "device": device_kind(device),
               "validation_fraction": config.validation_fraction,
               "test_fraction": config.test_fraction, "bootstrap": config.bootstrap}
    cells = []
    for task in config.tasks.values():
        for view, model in task.combinations():
            params, overrides = config.model_params(model, device)
            if model in CHECKPOINT_FROM_STORE and params.get("checkpoint") is None:
                params["checkpoint"] = default_checkpoint(store)
                if params["checkpoint"] is None:
                    raise ConfigError(f"models.{model}.checkpoint: not given, and store "
                                      f"{store.path} has no wav2vec2 features to take it from")
            for seed in config.seeds:
                payload = {**context, "task": task.name, "subsets": task.subsets,
                           "features": view, "model": model, "params": params, "seed": seed}
                cells.append(Cell(task.name, view, model, seed, params, overrides,
                                  cell_key(payload)))
    # group by (task, view) so each view is loaded once; config order otherwise
    first = {(c.task, c.features): i for i, c in reversed(list(enumerate(cells)))}
    return sorted(cells, key=lambda c: first[c.task, c.features])


def preflight(cells: list[Cell], store: Store, device: str) -> None:
    for name in dict.fromkeys(c.features for c in cells):
        parse_view(name).check(store)
    seen = set()
    for c in cells:
        sig = (c.model, json.dumps(c.params, sort_keys=True, default=str))
        if sig in seen:
            continue
        seen.add(sig)
        try:
            models.make_model(c.model, c.params, seed=c.seed, device=device)
        except models.ModelConfigError as exc:
            raise ConfigError(f"models.{c.model}: {exc}") from None
        except Exception:  # noqa: BLE001 - not a config mistake: the cell records it
            pass


def make_splits(config: Config, store: Store) -> dict[str, dict[int, Split]]:
    """Every (task, seed) split, each checked for leakage before any model runs."""
    out: dict[str, dict[int, Split]] = {}
    for task in config.tasks.values():
        out[task.name] = {}
        for seed in config.seeds:
            split = make_split(store.meta, task.name, seed,
                               validation_fraction=config.validation_fraction,
                               test_fraction=config.test_fraction, subsets=task.subsets)
            check_split(split, store.meta)
            out[task.name][seed] = split
    return out


# ---- one cell -----------------------------------------------------------------------------


def peak_host_mb() -> float:
    """The process's peak resident memory so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _cuda_reset(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def _cuda_peak_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20


def run_cell(ctx: RunContext, cell: Cell, view: View, data: TaskData, plot: Path | None) -> dict:
    """Fit, predict and score one cell; returns its results record (fields of a failure are
    filled by the caller)."""
    spec = models.MODELS[cell.model]
    split = ctx.splits[cell.task][cell.seed]
    meta = ctx.store.meta
    y_all = labels(meta, cell.task)
    utt_all = meta["utterance_id"].to_numpy()
    cluster_all = meta[GROUP_COLUMN[cell.task]].to_numpy()  # what the CI resamples
    test = split.test
    X_test, y_test = data.take(test), y_all[test]
    rec: dict = {"n_train": len(split.train), "n_val": len(split.validation),
                 "n_test": len(test), "n_classes": len(np.unique(y_all[split.rows()]))}
    model = models.make_model(cell.model, cell.params, seed=cell.seed, device=ctx.device)
    _cuda_reset(ctx.device)
    before = peak_host_mb()
    if spec.kind == "clusterer":
        # unsupervised: clusters the test part (k = its number of classes); never sees labels
        rec.update(n_train=0, n_val=0)
        start = time.perf_counter()
        y_pred = model.fit_predict(X_test, int(len(np.unique(y_test))))
        rec["fit_seconds"] = time.perf_counter() - start
        rec["predict_seconds"] = None
        rec["samples_per_second"] = len(test) / max(rec["fit_seconds"], 1e-9)
        rec.update(metrics.clustering(y_test, y_pred, X_test, seed=cell.seed))
        if plot is not None:
            model.plot(X_test, y_test, plot)
            rec["plot"] = str(plot.relative_to(ctx.run_dir))
    else:
        val = split.validation
        X_val, y_val = (data.take(val), y_all[val]) if len(val) else (None, None)
        start = time.perf_counter()
        model.fit(data.take(split.train), y_all[split.train], X_val, y_val)
        rec["fit_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        proba = model.predict_proba(X_test)
        rec["predict_seconds"] = time.perf_counter() - start
        rec["samples_per_second"] = len(test) / max(rec["predict_seconds"], 1e-9)
        y_pred = model.classes_[np.argmax(proba, axis=1)]
        class_labels = sorted(set(y_all[split.train].tolist()) | set(y_test.tolist()))
        rec.update(metrics.classification(y_test, y_pred, class_labels))
        rec["utterance_accuracy"] = metrics.utterance_accuracy(
            y_test, y_pred, utt_all[test], proba, model.classes_)
        correct = y_pred == y_test
        ci = metrics.bootstrap_ci(correct, cluster_all[test], ctx.config.bootstrap,
                                  seed=cell.seed)
        rec["accuracy_ci"] = list(ci) if ci else None
        rec["ci_resamples"] = f"test {'speakers' if cell.task == 'gender' else 'utterances'}"
        _, counts = np.unique(y_test, return_counts=True)
        rec["chance_accuracy"] = float(counts.max() / counts.sum())  # always the test majority
    rec["peak_host_mb"] = peak_host_mb()
    rec["host_mb_increase"] = rec["peak_host_mb"] - before  # > 0 only if it raised the peak
    rec["peak_gpu_mb"] = _cuda_peak_mb(ctx.device)
    rec["info"] = model.info()
    rec["predictions"] = rfiles.save_predictions(ctx.run_dir, cell.key, test, y_test, y_pred,
                                                 utt_all[test])
    return rec


# ---- the run ------------------------------------------------------------------------------


def prepare_run_dir(run_dir: Path, resume: bool) -> set[str]:
    """Create ``run_dir`` (or check it for --resume); the keys of cells already done."""
    if resume:
        if not (run_dir / rfiles.RESULTS).is_file():
            raise ConfigError(f"--resume: {run_dir} holds no earlier run (no {rfiles.RESULTS}); "
                              "point --out at a run folder")
        done = set()
        for r in rfiles.read_all(run_dir):
            if r.get("status") == "ok" and rfiles.predictions_path(run_dir, r["key"]).is_file():
                done.add(r["key"])
        return done
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"--out {run_dir} is not empty: pass --resume to continue that run, "
                          "or choose another folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    return set()


def environment(config: Config, store: Store, device: str, command: str) -> dict:
    import importlib.metadata as md

    versions = provenance.versions()
    for name in ("scipy", "tabulate", "matplotlib", "tqdm", "PyYAML"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    prov = store.provenance
    return {
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
        "device_name": provenance.device_name(device),
        "memory_note": "peak_host_mb is the process's peak RSS so far (ru_maxrss); "
                       "host_mb_increase is how much a cell raised it",
    }


def run(config: Config, run_dir: Path, *, resume: bool = False, quiet: bool = False,
        command: str = "") -> int:
    """Run the grid into ``run_dir``; 0 if every cell is ok, 1 if any failed."""
    import featstore

    if not Path(config.store).exists():
        raise ConfigError(f"store {config.store} not found: build it with `featstore build "
                          f"--out {config.store}` or pass --store")
    store = featstore.open(config.store)
    device = resolve_device(config.device)
    cells = plan(config, store, device)
    preflight(cells, store, device)
    ctx = RunContext(config, store, device, run_dir, make_splits(config, store), quiet)
    done = prepare_run_dir(run_dir, resume)
    env = environment(config, store, device, command)
    (run_dir / rfiles.ENV).write_text(json.dumps(env, indent=1))
    splits_json = {task: {str(seed): describe(s, store.meta) for seed, s in by_seed.items()}
                   for task, by_seed in ctx.splits.items()}
    (run_dir / rfiles.SPLITS).write_text(json.dumps(splits_json, indent=1))

    todo = [c for c in cells if c.key not in done]
    loaded: tuple[tuple[str, str], TaskData] | None = None
    plotted: set[tuple] = set()
    bar = tqdm(todo, unit="cell", desc="bench", disable=quiet or None, file=sys.stderr)
    for cell in bar:
        bar.set_postfix_str(cell.label)
        view = parse_view(cell.features)
        spec = models.MODELS[cell.model]
        record = {"key": cell.key, "task": cell.task, "features": cell.features,
                  "view_kind": view.kind, "model": cell.model, "model_kind": spec.kind,
                  "seed": cell.seed, "params": jsonable(cell.params),
                  "device_overrides": jsonable(cell.overrides), "device": device,
                  "started": provenance.now()}
        try:
            if loaded is None or loaded[0] != (cell.task, cell.features):
                loaded = None  # free the previous view first
                rows = ctx.splits[cell.task][cell.seed].rows()
                loaded = ((cell.task, cell.features), TaskData(rows, view.load(store, rows)))
            plot = None
            ident = (cell.task, cell.features, cell.model)
            if spec.kind == "clusterer" and ident not in plotted:  # one plot per first seed
                plotted.add(ident)
                plot = run_dir / "plots" / f"{cell.model}_{cell.task}_{_safe(cell.features)}.png"
                plot.parent.mkdir(exist_ok=True)
            record.update(run_cell(ctx, cell, view, loaded[1], plot))
            record["status"] = "ok"
        except Exception as exc:  # isolate the failure: record it, run the other cells
            record["status"] = "failed"
            record["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
            record["traceback"] = traceback.format_exc(limit=-8)
            if not quiet:
                tqdm.write(f"bench: {cell.label} failed: {record['error']}", file=sys.stderr)
        record["finished"] = provenance.now()
        rfiles.append(run_dir, record)
    bar.close()

    env["finished"] = provenance.now()
    (run_dir / rfiles.ENV).write_text(json.dumps(env, indent=1))
    records = rfiles.latest(rfiles.read_all(run_dir))
    notes = {task: sorted({n for s in by_seed.values() for n in s.notes})
             for task, by_seed in ctx.splits.items()}
    report.write(run_dir, records, env, notes)
    keys = {c.key for c in cells}
    failed = [r for r in records if r["key"] in keys and r["status"] != "ok"]
    if failed:
        print(f"bench: {len(failed)} of {len(cells)} cell(s) failed (see {run_dir / rfiles.RESULTS}"
              f" and {run_dir / rfiles.LEADERBOARD})", file=sys.stderr)
        return 1
    if not quiet:
        print(f"bench: {len(cells)} cell(s) ok ({len(cells) - len(todo)} reused); results in "
              f"{run_dir}", file=sys.stderr)
    return 0


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
