"""Planning a run: the cells of the grid with their keys, the checks made before any model
runs, and the splits.

A cell is (task, feature view, model with its final params, search grid and selection method,
seed). Its key hashes those with the store's content (``store_key``), the code version and
the settings that change results (split fractions, folds, subsets, weighting, bootstrap count,
device type), so ``--resume`` reruns exactly the cells whose inputs changed or that did not
finish ok.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import models
from bench import selection
from bench.code_version import code_version
from bench.config import Config, ConfigError, ModelPlan, device_kind
from bench.crosscorpus import cross_split
from bench.splits import Split, check_split, in_subsets, make_split
from bench.tasks import TASKS
from bench.views import ViewError, expand, parse_view
from featstore.store.reader import Store

CHECKPOINT_FROM_STORE = ("hf-finetune",)  # fine-tune the model the store's features came from


def backend_plan(seeds: tuple[int, ...]) -> ModelPlan:
    """How a verification backend runs: no parameters, search or selection; every seed."""
    return ModelPlan({}, {}, {}, "none", seeds)


@dataclass(frozen=True)
class Cell:
    task: str
    features: str
    model: str
    seed: int
    params: dict
    overrides: dict  # device-specific settings applied (e.g. reduced CPU epochs)
    search: dict  # the grid model selection tries
    selection: str  # "cv" | "validation"
    key: str

    @property
    def label(self) -> str:
        return f"{self.task} {self.features} {self.model} seed={self.seed}"


# ---- versions and keys --------------------------------------------------------------------


def store_hash(store: Store) -> str:
    """Hash of the whole index, shown in env.json; changes with every rebuild."""
    return hashlib.sha256(json.dumps(store.index, sort_keys=True).encode()).hexdigest()[:16]


def store_key(store: Store, features: tuple[str, ...] | None = None) -> str:
    """Hash of what a store contributes to results: its rows (the shard files' checksums),
    the ``features`` a cell reads (None: all) with their parameters and the checksums of their
    files, and its build parameters; not when, where or by which command line it was built,
    nor the features the cell does not read: a rebuild with identical shards, or
    ``featstore add`` of another feature, keeps every cell key."""
    index = store.index
    names = sorted(index["features"]) if features is None else sorted(features)
    groups = index.get("groups", {})
    used = sorted({g for n in names if (g := index["features"].get(n, {}).get("group"))})
    content = {
        "format_version": index.get("format_version"),
        "shards": [(s["file"], s["rows"], s["sha256"]) for s in index["shards"]],
        "features": {n: index["features"].get(n) for n in names},
        "groups": {g: [f["sha256"] for f in groups[g]["files"]] for g in used if g in groups},
        "params": index.get("provenance", {}).get("params"),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _view_features(view: str) -> tuple[str, ...] | None:
    try:
        return parse_view(view).uses()
    except ViewError:  # reported by the preflight checks; key it on the whole store
        return None


def cell_key(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def open_test_stores(config: Config) -> dict[str, Store]:
    """Task name -> its cross-corpus test store (tasks.<name>.test_store), opened."""
    import featstore

    out = {}
    for task in config.tasks.values():
        if task.test_store is None:
            continue
        if not Path(task.test_store).exists():
            raise ConfigError(f"tasks.{task.name}.test_store: store {task.test_store} not found")
        out[task.name] = featstore.open(task.test_store)
    return out


def plan(config: Config, store: Store, device: str,
         test_stores: dict[str, Store] | None = None) -> list[Cell]:
    test_stores = open_test_stores(config) if test_stores is None else test_stores
    context = {"code": code_version(), "device": device_kind(device),
               "validation_fraction": config.validation_fraction, "folds": config.folds,
               "test_fraction": config.test_fraction, "bootstrap": config.bootstrap}
    cells = []
    for task in config.tasks.values():
        verification = TASKS[task.name].kind == "verification"
        # NAME:each -> one view per stored layer of NAME (bench.views.expand)
        pairs = [(name, view, model) for name, model in task.combinations()
                 for view in expand(name, store)]
        for name, view, model in pairs:
            context["store"] = store_key(store, _view_features(view))
            # a verification backend has no parameters, search or selection, and every seed
            mp = backend_plan(config.seeds) if verification else config.model_plan(model, device)
            params = dict(mp.params)
            if model in CHECKPOINT_FROM_STORE and params.get("checkpoint") is None:
                params["checkpoint"] = default_checkpoint(store)  # None: see missing_inputs
            search = task.search_for(name, model)
            search = mp.search if search is None else search
            for seed in mp.seeds:
                payload = {**context, "task": task.name, "subsets": task.subsets,
                           "weighting": task.weights, "features": view, "model": model,
                           "nontarget_trials": task.nontarget_trials if verification else None,
                           "test_store": (store_key(test_stores[task.name],
                                                    _view_features(view))
                                          if task.name in test_stores else None),
                           "params": params, "search": search, "selection": mp.selection,
                           "seed": seed}
                cells.append(Cell(task.name, view, model, seed, params, mp.overrides,
                                  search, mp.selection, cell_key(payload)))
    # group by (task, view) so each view is loaded once; config order otherwise
    first = {(c.task, c.features): i for i, c in reversed(list(enumerate(cells)))}
    return sorted(cells, key=lambda c: first[c.task, c.features])


def missing_inputs(cells: list[Cell], store: Store) -> dict[str, str]:
    """Cell key -> why the store cannot serve it: a view it lacks (the ViewError line, naming the
    build flag), or no wav2vec2 checkpoint to fine-tune."""
    views = {}
    for name in dict.fromkeys(c.features for c in cells):
        try:
            parse_view(name).check(store)
        except ViewError as exc:
            views[name] = str(exc)
    out = {}
    for c in cells:
        if c.features in views:
            out[c.key] = views[c.features]
        elif c.model in CHECKPOINT_FROM_STORE and c.params.get("checkpoint") is None:
            out[c.key] = (f"models.{c.model}.checkpoint: not given, and store {store.path} has no "
                      "wav2vec2 features to take it from")
    return out


def skip_missing(cells: list[Cell], store: Store) -> tuple[list[Cell], list[dict]]:
    """``cells`` without those the store cannot serve, and what was skipped, per (task, view,
    reason): {task, features, models, reason}."""
    missing = missing_inputs(cells, store)
    skipped: dict[tuple, dict] = {}
    for c in cells:
        if c.key not in missing:
            continue
        reason = missing[c.key]
        entry = skipped.setdefault((c.task, c.features, reason), {
            "task": c.task, "features": c.features, "models": [], "reason": reason})
        if c.model not in entry["models"]:
            entry["models"].append(c.model)
    kept = [c for c in cells if c.key not in missing]
    if not kept:
        raise ConfigError(f"store {store.path} cannot serve any cell of the config: "
                          f"{next(iter(missing.values()))}")
    return kept, list(skipped.values())


def preflight(cells: list[Cell], store: Store, device: str) -> None:
    missing = missing_inputs(cells, store)
    if missing:
        raise ConfigError(next(iter(missing.values())))
    seen = set()
    for c in cells:
        if TASKS[c.task].kind == "verification":
            continue  # backends have no parameters to check
        sig = (c.model, json.dumps(c.params, sort_keys=True, default=str))
        if sig in seen:
            continue
        seen.add(sig)
        for cand in selection.candidates(c.search):  # every grid point must build
            try:
                models.make_model(c.model, {**c.params, **cand}, seed=c.seed, device=device)
            except models.ModelConfigError as exc:
                where = "search" if cand else ""
                raise ConfigError(f"models.{c.model}{'.' if where else ''}{where}: {exc}") from None
            except Exception:  # noqa: BLE001 - not a config mistake: the cell records it
                pass


def make_splits(config: Config, store: Store,
                test_stores: dict[str, Store] | None = None) -> dict[str, dict[int, Split]]:
    """Every (task, seed) split, each checked for leakage before any model runs; a task with
    a test store trains on its main-store split whole and tests on that store."""
    test_stores = test_stores or {}
    out: dict[str, dict[int, Split]] = {}
    for task in config.tasks.values():
        out[task.name] = {}
        for seed in config.seeds:
            if task.name in test_stores and TASKS[task.name].kind == "verification":
                # the backend trains on every main-store speaker: nothing to draw
                rows = np.flatnonzero(in_subsets(store.meta, task.name, task.subsets))
                split = Split(task.name, seed, rows, rows[:0], rows[:0])
            else:
                split = make_split(store.meta, task.name, seed,
                                   validation_fraction=config.validation_fraction,
                                   test_fraction=config.test_fraction, subsets=task.subsets)
            if task.name in test_stores:
                test = test_stores[task.name]
                split = cross_split(split, test.meta, str(test.path),
                                    TASKS[task.name].eligible_test(test.meta))
            check_split(split, store.meta)
            out[task.name][seed] = split
    return out
