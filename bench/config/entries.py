"""benchmarks.yaml's grid entries (views x models, with an optional search per model) and
model sections (``models.<name>``: parameters, search, selection, seeds, device sections)."""

from __future__ import annotations

from typing import Any

from bench import config_values as v
from bench.config.types import DEVICE_SECTIONS, MODEL_KEYS, GridEntry
from bench.config_values import ConfigError
from bench.selection import METHODS as SELECTION_METHODS
from bench.verification.backends import backend_entry
from bench.views import ViewError, parse_view
from models import MODELS, ModelSpec, list_models

GRID_KEYS = ("features", "models")  # required in a grid entry; "search" is optional


def grid_entry(body: Any, where: str, kind: str = "classification") -> GridEntry:
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
        spec = model_spec(name, f"{where}.models")
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
        check_model_keys(section, MODELS[model], f"{where}.search.{model}")
        search[model] = section["search"]
    return GridEntry(tuple(features), tuple(names), search)


def model_spec(name: Any, where: str) -> ModelSpec:
    if name not in MODELS:
        raise ConfigError(f"{where}: unknown model {name!r}; valid models: "
                          f"{', '.join(list_models())}")
    return MODELS[name]


def model_sections(raw: Any) -> dict[str, dict]:
    """Parameter names are checked here; their types and values by the model itself when
    the run starts (``runner.preflight``), before any cell runs."""
    raw = v.mapping(raw, "models")
    out = {}
    for name, params in raw.items():
        spec = model_spec(name, "models")
        params = v.mapping(params or {}, f"models.{name}")
        v.keys(params, (*sorted(spec.defaults), *MODEL_KEYS, *DEVICE_SECTIONS), f"models.{name}")
        check_model_keys(params, spec, f"models.{name}")
        for dev in DEVICE_SECTIONS:
            if dev in params:
                section = v.mapping(params[dev] or {}, f"models.{name}.{dev}")
                v.keys(section, (*sorted(spec.defaults), *MODEL_KEYS), f"models.{name}.{dev}")
                check_model_keys(section, spec, f"models.{name}.{dev}")
                params[dev] = section
        out[name] = params
    return out


def check_model_keys(section: dict, spec: ModelSpec, where: str) -> None:
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
