"""Command-line values (--store, --device, --seeds) and filters (--tasks, --models,
--features) applied to a loaded config."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench import config_values as v
from bench.config.types import Config, GridEntry
from bench.config_values import ConfigError


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
