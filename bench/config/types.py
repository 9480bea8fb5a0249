"""The validated benchmarks.yaml: what loading returns (Config, its tasks and grid entries) and
how one model runs on one device (ModelPlan)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from bench.tasks import TASKS
from bench.verification.trials import NONTARGET_TRIALS
from models import MODELS

DEVICE_SECTIONS = ("cpu", "cuda")  # per-device parameter overrides under models.<name>
MODEL_KEYS = ("search", "selection", "seeds")  # besides the model's parameters


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
