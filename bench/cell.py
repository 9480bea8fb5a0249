"""One cell: model selection inside the training data, one fit, one prediction of the test
part, and its scores (bench/selection.py, bench/metrics.py). ``execute_cell`` runs one cell
into its results record, the same in the local loop and in a Ray task (bench/distributed.py).
"""

from __future__ import annotations

import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import models
from bench import metrics, selection, weights
from bench import results as rfiles
from bench.config import Config
from bench.crosscorpus import replicates
from bench.plan import Cell
from bench.splits import Split, labels, split_groups
from bench.tasks import TASKS
from bench.verification import cell as verification_cell
from bench.views import View, parse_view
from featstore import provenance
from featstore.store.reader import Store
from models.base import jsonable


@dataclass
class TaskData:
    """One view loaded for all rows a task uses (the same rows for every seed)."""

    rows: np.ndarray
    X: np.ndarray
    test_rows: np.ndarray | None = None  # cross-corpus: the test store's rows and view
    test_X: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.X[np.searchsorted(self.rows, rows)]

    def take_test(self, rows: np.ndarray) -> np.ndarray:
        """The view of test rows: of the test store for a cross-corpus task."""
        if self.test_X is None:
            return self.take(rows)
        return self.test_X[np.searchsorted(self.test_rows, rows)]


@dataclass
class RunContext:
    config: Config
    store: Store
    device: str
    run_dir: Path
    splits: dict[str, dict[int, Split]] = field(default_factory=dict)
    quiet: bool = False
    test_stores: dict[str, Store] = field(default_factory=dict)  # task -> cross-corpus store

    def test_store(self, task: str) -> Store:
        """The store a task's test rows index: its test store, else the main one."""
        return self.test_stores.get(task, self.store)


class ViewCache:
    """The view loaded last, for all rows of its task. Cells come grouped by (task, view), so
    each view is loaded once per run (per worker process on Ray); the previous one is freed
    before the next is read."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.data: TaskData | None = None

    def get(self, ctx: RunContext, cell: Cell, view: View) -> TaskData:
        key = (cell.task, cell.features)
        if self.key != key:
            self.key, self.data = None, None
            split = ctx.splits[cell.task][cell.seed]
            rows = split.rows()
            self.data = TaskData(rows, view.load(ctx.store, rows))
            if split.test_store is not None:  # the same test rows for every seed
                test = ctx.test_store(cell.task)
                self.data.test_rows = split.test
                self.data.test_X = view.load(test, split.test)
            self.key = key
        return self.data


# ---- one cell -----------------------------------------------------------------------------


def model_kind(cell: Cell) -> str:
    """classifier | clusterer (models/), or backend (a verification task's scorer)."""
    if TASKS[cell.task].kind == "verification":
        return "backend"
    return models.MODELS[cell.model].kind


def cell_record(cell: Cell, device: str) -> dict:
    """The fields of a cell's record known before it runs."""
    return {"key": cell.key, "task": cell.task, "features": cell.features,
            "view_kind": parse_view(cell.features).kind, "model": cell.model,
            "model_kind": model_kind(cell), "seed": cell.seed,
            "params": jsonable(cell.params), "device_overrides": jsonable(cell.overrides),
            "device": device, "started": provenance.now()}


def failed(record: dict, exc: BaseException, trace: str) -> dict:
    """``record`` marked failed by ``exc``."""
    record["status"] = "failed"
    record["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    record["traceback"] = trace
    return record


def execute_cell(ctx: RunContext, cell: Cell, cache: ViewCache, plot: str | None) -> dict:
    """One cell's complete results record; an exception is recorded (status "failed"), never
    raised, so one cell cannot stop the others. ``plot``: where a clusterer draws its plot,
    relative to the run folder."""
    view = parse_view(cell.features)
    record = cell_record(cell, ctx.device)
    try:
        data = cache.get(ctx, cell, view)
        path = None
        if plot is not None:
            path = ctx.run_dir / plot
            path.parent.mkdir(exist_ok=True)
        record.update(run_cell(ctx, cell, view, data, path))
        record["status"] = "ok"
    except Exception as exc:  # isolate the failure: record it, run the other cells
        failed(record, exc, traceback.format_exc(limit=-8))
    record["finished"] = provenance.now()
    return record


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
    if TASKS[cell.task].kind == "verification":
        return _run_verification(ctx, cell, data)
    spec = models.MODELS[cell.model]
    split = ctx.splits[cell.task][cell.seed]
    meta = ctx.store.meta
    y_all = labels(meta, cell.task)
    # the task's independent unit: what intervals, the CI and paired tests count
    unit_all = split_groups(meta, cell.task)
    test = split.test
    tmeta = ctx.test_store(cell.task).meta  # the main store's meta unless cross-corpus
    y_test, utt_test = labels(tmeta, cell.task)[test], tmeta["utterance_id"].to_numpy()[test]
    unit_test = split_groups(tmeta, cell.task)[test]
    X_test = data.take_test(test)
    rec: dict = {"n_train": len(split.train), "n_val": len(split.validation),
                 "n_test": len(test), "n_classes": len(np.unique(y_all[split.rows()])),
                 "unit": TASKS[cell.task].unit, "n_test_units": len(np.unique(unit_test))}
    _cuda_reset(ctx.device)
    before = peak_host_mb()
    if spec.kind == "clusterer":
        # unsupervised: clusters the test part (k = its number of classes); never sees labels
        model = models.make_model(cell.model, cell.params, seed=cell.seed, device=ctx.device)
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
        start = time.perf_counter()
        model, chosen, train_rows = _fit_selected(ctx, cell, data, y_all)
        rec["fit_seconds"] = time.perf_counter() - start
        rec.update(n_train=len(train_rows), n_train_units=len(np.unique(unit_all[train_rows])),
                   selection=chosen.to_dict(), final_params=jsonable(model.get_params()))
        if chosen.method == "cv":
            rec["n_val"] = 0  # merged into the training data
        start = time.perf_counter()
        proba = model.predict_proba(X_test)
        rec["predict_seconds"] = time.perf_counter() - start
        rec["samples_per_second"] = len(test) / max(rec["predict_seconds"], 1e-9)
        y_pred = model.classes_[np.argmax(proba, axis=1)]
        class_labels = sorted(set(y_all[split.train].tolist()) | set(y_test.tolist()))
        rec.update(metrics.classification(y_test, y_pred, class_labels))
        rec["utterance_accuracy"] = metrics.utterance_accuracy(
            y_test, y_pred, utt_test, proba, model.classes_)
        correct = y_pred == y_test
        rec["speaker_accuracy"] = metrics.group_accuracy(
            correct, tmeta["speaker_id"].to_numpy()[test])
        ci = metrics.bootstrap_ci(correct, unit_test, ctx.config.bootstrap, seed=cell.seed)
        rec["accuracy_ci"] = list(ci) if ci else None
        if split.test_store is not None:
            rec["test_store"] = split.test_store
            rec["boot_replicates"] = replicates(correct, unit_test, ctx.config.bootstrap)
        rec["ci_resamples"] = f"test {TASKS[cell.task].unit}s"
        _, counts = np.unique(y_test, return_counts=True)
        rec["chance_accuracy"] = float(counts.max() / counts.sum())  # always the test majority
    rec["peak_host_mb"] = peak_host_mb()
    rec["host_mb_increase"] = rec["peak_host_mb"] - before  # > 0 only if it raised the peak
    rec["peak_gpu_mb"] = _cuda_peak_mb(ctx.device)
    rec["info"] = model.info()
    rec["predictions"] = rfiles.save_predictions(
        ctx.run_dir, cell.key, test, y_test, y_pred, utt_test,
        tmeta["start_sample"].to_numpy()[test], unit_test)
    return rec


def _run_verification(ctx: RunContext, cell: Cell, data: TaskData) -> dict:
    before = peak_host_mb()
    rec, arrays = verification_cell.run(ctx, cell, data.take, data.take_test,
                                        ctx.config.tasks[cell.task].nontarget_trials)
    rec["peak_host_mb"] = peak_host_mb()
    rec["host_mb_increase"] = rec["peak_host_mb"] - before
    rec["peak_gpu_mb"] = None
    rec["predictions"] = rfiles.save_trial_scores(ctx.run_dir, cell.key, arrays)
    return rec


def _fit_selected(ctx: RunContext, cell: Cell, data: TaskData,
                  y_all: np.ndarray) -> tuple[object, selection.Selection, np.ndarray]:
    """The model chosen and fitted inside the training data (bench/selection.py), the
    selection record, and the rows it was finally fitted on."""
    split = ctx.splits[cell.task][cell.seed]
    meta = ctx.store.meta
    scheme = ctx.config.tasks[cell.task].weights
    speakers = meta["speaker_id"].to_numpy()
    groups = split_groups(meta, cell.task)

    def part(rows: np.ndarray) -> selection.TrainingData:
        return selection.TrainingData(
            data.take(rows), y_all[rows],
            weights.row_weights(scheme, y_all[rows], speakers[rows]), groups[rows])

    if cell.selection == "cv":
        rows = np.sort(np.concatenate([split.train, split.validation]))
        model, chosen = selection.fit_cv(cell.model, cell.params, cell.search, part(rows),
                                         folds=ctx.config.folds, seed=cell.seed,
                                         device=ctx.device)
        return model, chosen, rows
    val = part(split.validation) if len(split.validation) else None
    model, chosen = selection.fit_validation(cell.model, cell.params, cell.search,
                                             part(split.train), val, seed=cell.seed,
                                             device=ctx.device)
    return model, chosen, split.train
