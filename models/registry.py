"""The model registry: one :class:`ModelSpec` per method, and ``make_model``, the only way in.

``make_model`` checks the name, the parameter keys and their types against the spec
(validation at the edge, like scikit-learn), resolves the device once and calls the factory
with the complete parameter dict. ``clone`` rebuilds an unfitted copy from ``get_params``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featstore.device import resolve_device
from featstore.errors import UserError

from .inputs import INPUT_KINDS
from .params import ModelConfigError, check_type

KINDS = ("classifier", "clusterer")


@dataclass(frozen=True)
class ModelSpec:
    """One registered method.

    ``factory(params, seed=..., device=...)`` receives the full, validated parameter dict
    (defaults merged with the user's values). Parameter types are inferred from the defaults;
    ``types`` overrides that for parameters whose default is ``None`` or that accept several
    types; ``required`` lists parameters that must be given (their default is ``None``).

    ``search`` is the default hyper-parameter grid tried by bench's model selection
    (parameter -> candidate values; a config's ``search:`` replaces it). ``iterations`` names
    the parameter that fixes the number of trees / epochs when a model is refit without
    early stopping; such a model reports ``best_iteration`` in ``info()`` when it was
    early-stopped on validation data. ``uses_gpu`` is False for a model that runs on the CPU
    whatever the device (scikit-learn): ``bench run --ray`` gives its cells no GPU.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    defaults: dict[str, Any]
    factory: Callable[..., Any]
    description: str
    types: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    search: dict[str, tuple] = field(default_factory=dict)
    iterations: str | None = None
    uses_gpu: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        bad = [i for i in self.inputs if i not in INPUT_KINDS]
        if not self.inputs or bad:
            raise ValueError(
                f"model {self.name!r}: inputs must be a non-empty subset of {INPUT_KINDS}"
            )
        unknown = (set(self.types) | set(self.required) | set(self.search)) - set(self.defaults)
        if self.iterations is not None:
            unknown |= {self.iterations} - set(self.defaults)
        if unknown:
            raise ValueError(f"model {self.name!r}: spec names unknown params {sorted(unknown)}")


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (called once at import time by each model module)."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    return sorted(MODELS)


def spec_of(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ModelConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return MODELS[name]


def make_model(name: str, params: dict | None = None, *, seed: int, device: str) -> Any:
    """Build the model ``name`` with ``params`` (missing keys take the spec's defaults)."""
    spec = spec_of(name)
    if params is not None and not isinstance(params, dict):
        raise ModelConfigError(
            f"model {name!r}: params must be a dict, got {type(params).__name__}"
        )
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        valid = ", ".join(sorted(spec.defaults)) or "(none)"
        raise ModelConfigError(
            f"model {name!r}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}"
        )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ModelConfigError(f"seed must be an int, got {type(seed).__name__}")
    merged = dict(spec.defaults)
    for key, value in params.items():
        if value is None and spec.defaults[key] is None:
            continue  # an explicit None for an optional / required parameter: the default
        merged[key] = check_type(name, key, value, spec.defaults[key], spec.types.get(key))
    missing = [k for k in spec.required if merged[k] is None]
    if missing:
        raise ModelConfigError(f"model {name!r}: parameter(s) {', '.join(missing)} required")
    try:
        device = resolve_device(device)
    except UserError as exc:
        raise ModelConfigError(str(exc)) from None
    model = spec.factory(merged, seed=int(seed), device=device)
    model.name = name
    return model


def clone(model: Any, **changes: Any) -> Any:
    """An unfitted copy of ``model`` (same name, seed and device), with ``changes`` applied to
    its parameters."""
    return make_model(model.name, {**model.get_params(), **changes}, seed=model.seed,
                      device=model.device)
