"""benchmarks.yaml: loading, validation and command-line overrides.

Every mistake is a :class:`ConfigError` of one line that names the key (``tasks.gender.models``)
and, where there is a closed set, the valid choices. Schema::

    store: stores/default        # store folder (--store overrides)
    out: results                 # parent of the timestamped run folder (--out DIR: the folder)
    device: auto                 # cpu | cuda | cuda:N | auto
    seeds: 5                     # N (0..N-1) or a list of ints (--seeds N overrides)
    selection: cv                # cv: grouped K-fold inside the training data, then refit;
                                 # validation: the split's one validation part (bench/selection.py)
    folds: 5                     # K of the inner cross-validation
    validation_fraction: 0.2     # of the training speakers (gender) / sessions (speaker)
    test_fraction: 0.25          # of the speakers (gender) / each speaker's sessions (speaker)
    bootstrap: 1000              # resamples for the per-seed 95% CIs (0: none)
    tasks:
      gender:                    # gender | speaker | verification
        subsets: [dev-clean]     # optional: only store rows of these subsets
        weighting: speaker       # speaker | class | none (default: speaker for gender,
                                 # class for speaker; bench/weights.py)
        features: [mfcc]         # a grid entry: every view x every model...
        models: [majority, logreg]
        grid:                    # ...or several entries, when views of different kinds
          - {features: [mfcc-frames], models: [cnn]}    # need different models
          - features: [wav2vec2:all]
            models: [xgboost]
            search: {xgboost: {max_depth: [3]}}   # this entry's grid for a model (optional)
    models:                      # optional parameters per model (checked against its defaults)
      mlp: {hidden_sizes: [256], max_epochs: 50}
      xgboost:
        search: {max_depth: [2, 4, 6]}   # the grid model selection tries (replaces the model's
                                         # default grid; {} tries only the parameters above)
      hf-finetune:
        selection: validation            # per-model selection method
        epochs: 3
        cpu: {epochs: 1, max_train_chunks: 256, seeds: 2}   # used instead on the CPU; seeds: N
                                         # runs this model on the first N seeds only

A model that cannot take a view's kind (cnn on the ``mfcc`` vector) is an error naming both:
a grid entry must be valid as a whole, nothing is skipped silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import config_values as v
from bench.config_values import ConfigError
from bench.selection import METHODS as SELECTION_METHODS
from bench.tasks import TASKS
from bench.verification.backends import backend_entry
from bench.verification.trials import NONTARGET_TRIALS
from bench.views import ViewError, parse_view
from bench.weights import SCHEMES as WEIGHT_SCHEMES
from models import MODELS, ModelSpec, list_models

DEVICE_SECTIONS = ("cpu", "cuda")  # per-device parameter overrides under models.<name>
TOP_KEYS = ("store", "out", "device", "seeds", "selection", "folds", "validation_fraction",
            "test_fraction", "bootstrap", "tasks", "models")
TASK_KEYS = ("subsets", "weighting", "features", "models", "grid", "nontarget_trials",
             "test_store")
MODEL_KEYS = ("search", "selection", "seeds")  # besides the model's parameters
GRID_KEYS = ("features", "models")  # required in a grid entry; "search" is optional


@dataclass(frozen=True)
class GridEntry:
    features: tuple[str, ...]
    models: tuple[str, ...]
    search: dict[str, dict] = field(default_factory=dict)  # model -> grid, for these views


@dataclass(frozen=True)
class TaskConfig:
    name: str
    grid: tuple[GridEntry, ...]
    subsets: tuple[str, ...] | None = None
    weighting: str = ""  # "" -> the task's default (bench.tasks: Task.weighting)
    nontarget_trials: int = NONTARGET_TRIALS  # verification: different-speaker pairs per seed
    test_store: str | None = None  # cross-corpus: train on the main store, test on this one

    @property
    def weights(self) -> str:
        return self.weighting or TASKS[self.name].weighting

    @property
    def features(self) -> list[str]:
        return list(dict.fromkeys(f for g in self.grid for f in g.features))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(m for g in self.grid for m in g.models))

    def search_for(self, view: str, model: str) -> dict | None:
        """The search grid the first grid entry with (view, model) sets, if any."""
        for g in self.grid:
            if view in g.features and model in g.search:
                return g.search[model]
        return None

    def combinations(self) -> list[tuple[str, str]]:
        """(view, model) pairs in config order, without repeats."""
        return list(dict.fromkeys((f, m) for g in self.grid for f in g.features for m in g.models))


@dataclass(frozen=True)
class Config:
    tasks: dict[str, TaskConfig]
    store: str = "stores/default"
    out: str = "results"
    device: str = "auto"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    selection: str = "cv"
    folds: int = 5
    validation_fraction: float = 0.2
    test_fraction: float = 0.25
    bootstrap: int = 1000
    models: dict[str, dict] = field(default_factory=dict)
    path: str | None = None

    def model_plan(self, model: str, device: str) -> ModelPlan:
        """How ``model`` runs on ``device``: the model's section with its device section applied
        on top (kept separately too, so the leaderboard can say reduced settings were used)."""
        section = self.models.get(model, {})
        overrides = dict(section.get(device_kind(device), {}))
        merged = {**{k: v for k, v in section.items() if k not in DEVICE_SECTIONS}, **overrides}
        params = {k: v for k, v in merged.items() if k not in MODEL_KEYS}
        search = merged.get("search")
        if search is None:
            search = {k: list(v) for k, v in MODELS[model].search.items()}
        seeds = self.seeds[: merged["seeds"]] if "seeds" in merged else self.seeds
        return ModelPlan(params, overrides, search, merged.get("selection", self.selection),
                         seeds)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        return json.loads(json.dumps(d))  # tuples -> lists: the same shape as the YAML

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ModelPlan:
    params: dict
    overrides: dict  # the device section applied (reduced settings)
    search: dict  # parameter -> candidate values
    selection: str  # "cv" | "validation"
    seeds: tuple[int, ...]


def device_kind(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


# ---- loading ------------------------------------------------------------------------------


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
    model_params = _model_params(raw.get("models") or {})
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
        grid = tuple(_grid_entry(item, f"{where}.grid[{i}]", kind)
                     for i, item in enumerate(items))
    else:
        grid = (_grid_entry({k: body[k] for k in (*GRID_KEYS, "search") if k in body}, where,
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


def _grid_entry(body: Any, where: str, kind: str = "classification") -> GridEntry:
    body = v.mapping(body, where)
    v.keys(body, (*GRID_KEYS, "search"), where)
    for key in GRID_KEYS:
        if key not in body:
            raise ConfigError(f"{where}: missing key '{key}'")
    features = v.names(body["features"], f"{where}.features")
    names = v.names(body["models"], f"{where}.models")
    views = {}
    for name in features:
        try:
            views[name] = parse_view(name)
        except ViewError as exc:
            raise ConfigError(f"{where}.features: {exc}") from None
    if kind == "verification":
        return GridEntry(tuple(features), tuple(names),
                         backend_entry(features, names, views, body, where))
    for name in names:
        spec = _spec(name, f"{where}.models")
        for view in views.values():
            if view.kind not in spec.inputs:
                raise ConfigError(
                    f"{where}: model '{name}' takes {' or '.join(spec.inputs)} input but view "
                    f"'{view.name}' is {view.kind}; put them in separate grid entries")
    search = v.mapping(body.get("search") or {}, f"{where}.search")
    for model, grid in search.items():
        if model not in names:
            raise ConfigError(f"{where}.search: model {model!r} is not in this entry's models "
                              f"({', '.join(names)})")
        section = {"search": grid}
        _model_keys(section, MODELS[model], f"{where}.search.{model}")
        search[model] = section["search"]
    return GridEntry(tuple(features), tuple(names), search)


def _spec(name: Any, where: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"{where}: unknown model {name!r}; valid models: "
                          f"{', '.join(list_models())}")
    return MODELS[name]


def _model_params(raw: Any) -> dict[str, dict]:
    """Parameter names are checked here; their types and values by the model itself when
    the run starts (``runner.preflight``), before any cell runs."""
    raw = v.mapping(raw, "models")
    out = {}
    for name, params in raw.items():
        spec = _spec(name, "models")
        params = v.mapping(params or {}, f"models.{name}")
        v.keys(params, (*sorted(spec.defaults), *MODEL_KEYS, *DEVICE_SECTIONS), f"models.{name}")
        _model_keys(params, spec, f"models.{name}")
        for dev in DEVICE_SECTIONS:
            if dev in params:
                section = v.mapping(params[dev] or {}, f"models.{name}.{dev}")
                v.keys(section, (*sorted(spec.defaults), *MODEL_KEYS), f"models.{name}.{dev}")
                _model_keys(section, spec, f"models.{name}.{dev}")
                params[dev] = section
        out[name] = params
    return out


def _model_keys(section: dict, spec: ModelSpec, where: str) -> None:
    """Check (and normalise in place) the non-parameter keys of a model section."""
    if "selection" in section:
        v.choice(section["selection"], SELECTION_METHODS, f"{where}.selection")
    if "seeds" in section:
        section["seeds"] = v.integer(section["seeds"], f"{where}.seeds", low=1)
    if "search" in section:
        grid = v.mapping(section["search"] or {}, f"{where}.search")
        v.keys(grid, sorted(spec.defaults), f"{where}.search")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}.search.{key} must be a non-empty list of candidate "
                                  f"values, got {v.type_name(values)}")
        section["search"] = grid


# ---- command-line overrides ---------------------------------------------------------------


def with_overrides(
    config: Config,
    *,
    store: str | None = None,
    device: str | None = None,
    seeds: int | None = None,
    tasks: list[str] | None = None,
    models: list[str] | None = None,
    features: list[str] | None = None,
) -> Config:
    """``config`` with command-line values applied; a filter naming something the config does
    not have is an error, as is a filter that leaves no cells."""
    changes: dict[str, Any] = {}
    if store is not None:
        changes["store"] = store
    if device is not None:
        changes["device"] = v.check_device(device, "--device")
    if seeds is not None:
        changes["seeds"] = v.seeds(seeds, "--seeds")
    selected = dict(config.tasks)
    if tasks is not None:
        _known(tasks, list(selected), "--tasks")
        selected = {t: selected[t] for t in tasks}
    all_models = list(dict.fromkeys(m for t in selected.values() for m in t.models))
    all_views = list(dict.fromkeys(f for t in selected.values() for f in t.features))
    if models is not None:
        _known(models, all_models, "--models")
    if features is not None:
        _known(features, all_views, "--features")
    if models is not None or features is not None:
        filtered = {}
        for name, task in selected.items():
            grid = tuple(
                GridEntry(tuple(f for f in g.features if features is None or f in features),
                          tuple(m for m in g.models if models is None or m in models),
                          {m: v for m, v in g.search.items() if models is None or m in models})
                for g in task.grid
            )
            grid = tuple(g for g in grid if g.features and g.models)
            if grid:
                filtered[name] = dataclasses.replace(task, grid=grid)
        selected = filtered
    if not selected:
        raise ConfigError("the filters select no cells (no task has both a selected model "
                          "and a selected feature view)")
    changes["tasks"] = selected
    return dataclasses.replace(config, **changes)


def _known(names: list[str], valid: list[str], flag: str) -> None:
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ConfigError(f"{flag}: {', '.join(unknown)} not in the config; it has: "
                          f"{', '.join(valid)}")
