"""benchmarks.yaml: reading the file, and checking its top-level keys and task sections (the
schema: bench/config/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench import config_values as v
from bench.config.entries import GRID_KEYS, grid_entry, model_sections
from bench.config.types import Config, TaskConfig
from bench.config_values import ConfigError
from bench.selection import METHODS as SELECTION_METHODS
from bench.tasks import TASKS
from bench.weights import SCHEMES as WEIGHT_SCHEMES

TOP_KEYS = ("store", "out", "device", "seeds", "selection", "folds", "validation_fraction",
            "test_fraction", "bootstrap", "tasks", "models")
TASK_KEYS = ("subsets", "weighting", "features", "models", "grid", "nontarget_trials",
             "test_store")


def load(path: str | Path) -> Config:
    """Read and validate ``path``; ConfigError (one line) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return parse(raw, path=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(raw: Any, path: str | None = None) -> Config:
    """Validate an already-parsed config mapping."""
    raw = v.mapping(raw, "the config")
    v.keys(raw, TOP_KEYS, "the config")
    if "tasks" not in raw:
        raise ConfigError(f"missing key 'tasks' (one or more of: {', '.join(TASKS)})")
    kwargs: dict[str, Any] = {}
    for key in ("store", "out"):
        if key in raw:
            kwargs[key] = v.string(raw[key], key)
    if "device" in raw:
        kwargs["device"] = v.check_device(v.string(raw["device"], "device"), "device")
    if "seeds" in raw:
        kwargs["seeds"] = v.seeds(raw["seeds"], "seeds")
    if "selection" in raw:
        kwargs["selection"] = v.choice(raw["selection"], SELECTION_METHODS, "selection")
    if "folds" in raw:
        kwargs["folds"] = v.integer(raw["folds"], "folds", low=2)
    for key in ("validation_fraction", "test_fraction"):
        if key in raw:
            kwargs[key] = v.fraction(raw[key], key)
    if "bootstrap" in raw:
        kwargs["bootstrap"] = v.integer(raw["bootstrap"], "bootstrap", low=0)
    model_params = model_sections(raw.get("models") or {})
    tasks_raw = v.mapping(raw["tasks"], "tasks")
    if not tasks_raw:
        raise ConfigError(f"tasks: name at least one task ({', '.join(TASKS)})")
    tasks = {name: _task(name, body) for name, body in tasks_raw.items()}
    return Config(tasks=tasks, models=model_params, path=path, **kwargs)


def _task(name: Any, body: Any) -> TaskConfig:
    where = f"tasks.{name}"
    if name not in TASKS:
        raise ConfigError(f"tasks: unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    body = v.mapping(body, where)
    v.keys(body, TASK_KEYS, where)
    subsets = tuple(v.names(body["subsets"], f"{where}.subsets")) if "subsets" in body else None
    weighting = (v.choice(body["weighting"], WEIGHT_SCHEMES, f"{where}.weighting")
                 if "weighting" in body else "")
    flat = [k for k in GRID_KEYS if k in body]
    if "grid" in body and flat:
        raise ConfigError(f"{where}: give either features + models (+ search) or grid, not both")
    kind = TASKS[name].kind
    if "grid" in body:
        items = body["grid"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{where}.grid must be a non-empty list of "
                              "{features: [...], models: [...]} entries")
        grid = tuple(grid_entry(item, f"{where}.grid[{i}]", kind)
                     for i, item in enumerate(items))
    else:
        grid = (grid_entry({k: body[k] for k in (*GRID_KEYS, "search") if k in body}, where,
                           kind),)
    extra: dict[str, Any] = {}
    if "nontarget_trials" in body:
        if kind != "verification":
            raise ConfigError(f"{where}.nontarget_trials: only a verification task has trials")
        extra["nontarget_trials"] = v.integer(body["nontarget_trials"],
                                              f"{where}.nontarget_trials", low=1)
    if "test_store" in body:
        if not TASKS[name].cross_corpus:
            raise ConfigError(f"{where}.test_store: task {name} cannot test on another store "
                              "(closed-set speaker ID needs its test speakers in training)")
        extra["test_store"] = v.string(body["test_store"], f"{where}.test_store")
    return TaskConfig(name=name, grid=grid, subsets=subsets, weighting=weighting, **extra)
