"""The model contract and registry.

Every method is one module that registers a :class:`ModelSpec`. ``make_model`` is the only
way in: it checks the name, the parameter keys and their types against the spec (validation
at the edge, like scikit-learn), resolves the device and then calls the factory with the
complete parameter dict.

Classifiers implement ``fit(X, y, X_val, y_val) -> self``, ``predict(X) -> labels``,
``predict_proba(X) -> [n, n_classes]`` (columns follow ``classes_``) and ``info() -> dict``.
Clusterers implement ``fit_predict(X, n_clusters)``, ``transform(X)`` (2-D),
``plot(X, y_true, path)`` and ``info()``.

Input kinds: "vector" = [n, d] float, "frames" = [n, T, d] per-chunk frame sequences,
"audio" = [n, samples] int16 or float waveforms at 16 kHz.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("classifier", "clusterer")
INPUT_KINDS = ("vector", "frames", "audio")


class ModelConfigError(ValueError):
    """A bad model name, parameter or checkpoint: a one-line message meant for the user."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered method.

    ``factory(params, seed=..., device=...)`` receives the full, validated parameter dict
    (defaults merged with the user's values). Parameter types are inferred from the defaults;
    ``types`` overrides that for parameters whose default is ``None`` or that accept several
    types; ``required`` lists parameters that must be given (their default is ``None``).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    defaults: dict[str, Any]
    factory: Callable[..., Any]
    description: str
    types: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"model {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        bad = [i for i in self.inputs if i not in INPUT_KINDS]
        if not self.inputs or bad:
            raise ValueError(
                f"model {self.name!r}: inputs must be a non-empty subset of {INPUT_KINDS}"
            )
        unknown = (set(self.types) | set(self.required)) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"model {self.name!r}: types/required name unknown params {sorted(unknown)}"
            )


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (called once at import time by each model module)."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    return sorted(MODELS)


def make_model(name: str, params: dict | None = None, *, seed: int, device: str) -> Any:
    """Build the model ``name`` with ``params`` (missing keys take the spec's defaults)."""
    from .device import resolve_device  # local import: device.py imports this module

    if name not in MODELS:
        raise ModelConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    spec = MODELS[name]
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
        merged[key] = _check_type(name, key, value, spec.defaults[key], spec.types.get(key))
    missing = [k for k in spec.required if merged[k] is None]
    if missing:
        raise ModelConfigError(f"model {name!r}: parameter(s) {', '.join(missing)} required")
    return spec.factory(merged, seed=int(seed), device=resolve_device(device))


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def _check_type(model: str, key: str, value: Any, default: Any, declared: Any) -> Any:
    """Check ``value`` against the declared type (or the default's) and normalise it."""
    if declared is not None:
        allowed = declared if isinstance(declared, tuple) else (declared,)
    elif default is None:
        allowed = (object,)
    elif isinstance(default, bool):
        allowed = (bool,)
    elif isinstance(default, float):
        allowed = (float, int)  # an int where a float is expected is harmless
    elif isinstance(default, (tuple, list)):
        allowed = (tuple, list)
    else:
        allowed = (type(default),)
    ok = isinstance(value, allowed)
    if isinstance(value, np.generic):  # numpy scalars from configs / grids
        value = value.item()
        ok = isinstance(value, allowed)
    if isinstance(value, bool) and bool not in allowed:
        ok = False  # bool is an int subclass; True as a learning rate is a mistake
    if not ok:
        raise ModelConfigError(
            f"model {model!r}: parameter {key} must be {_type_names(allowed)}, "
            f"got {type(value).__name__} ({value!r})"
        )
    if isinstance(value, list) and tuple in allowed:
        value = tuple(value)  # JSON gives lists; tuples keep params hashable
    if declared is None and isinstance(default, float) and isinstance(value, int):
        value = float(value)
    return value


# ---- value checks shared by the factories (raise ModelConfigError) --------------------


def check_positive(model: str, params: dict, *keys: str, allow_zero: bool = False) -> None:
    for key in keys:
        value = params[key]
        if value is None:
            continue
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ModelConfigError(
                f"model {model!r}: parameter {key} must be {bound}, got {value!r}"
            )


def check_choice(model: str, params: dict, key: str, choices: Sequence[Any]) -> None:
    if params[key] not in choices:
        raise ModelConfigError(
            f"model {model!r}: parameter {key} must be one of {', '.join(map(repr, choices))}, "
            f"got {params[key]!r}"
        )


def check_fraction(
    model: str, params: dict, *keys: str, low_open: bool = False, high_open: bool = True
) -> None:
    """Each value in [0, 1) by default; ``low_open`` / ``high_open`` choose the interval ends."""
    for key in keys:
        v = params[key]
        if (v < 0 or (low_open and v == 0)) or (v > 1 or (high_open and v == 1)):
            interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
            raise ModelConfigError(
                f"model {model!r}: parameter {key} must be in {interval}, got {v!r}"
            )


# ---- input checks ---------------------------------------------------------------------


def as_vectors(X: Any, dtype: Any = np.float32) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected vector input [n, d], got shape {X.shape}")
    return X.astype(dtype, copy=False)


def as_frames(X: Any) -> np.ndarray:
    """Frames stay in their stored dtype (often float16); models convert per batch."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"expected frame input [n, T, d], got shape {X.shape}")
    return X


def as_audio(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected audio input [n, samples], got shape {X.shape}")
    if X.dtype != np.int16 and not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"expected int16 or float audio, got dtype {X.dtype}")
    return X


def audio_to_float(X: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1); float input is taken as already scaled."""
    if X.dtype == np.int16:
        return X.astype(np.float32) / 32768.0
    return X.astype(np.float32, copy=False)


def frame_statistics(X: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std over all frames of ``X`` [n, T, d], in float64 chunks so
    a large float16 array is never copied whole."""
    total = np.zeros(X.shape[2])
    sq = np.zeros(X.shape[2])
    for i in range(0, len(X), chunk):
        part = X[i : i + chunk].astype(np.float64).reshape(-1, X.shape[2])
        total += part.sum(0)
        sq += (part**2).sum(0)
    count = max(1, X.shape[0] * X.shape[1])
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    std[std < 1e-8] = 1.0  # constant coefficient: centre it, don't blow it up
    return mean, std


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise, numerically stable."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def jsonable(obj: Any) -> Any:
    """numpy scalars / arrays and tuples -> plain JSON types, for the results file."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ---- base classes ---------------------------------------------------------------------


class Classifier(abc.ABC):
    """Label encoding, validation-set checks and ``info()`` shared by every classifier.

    Subclasses implement ``_fit(X, y, X_val, y_val)`` on integer codes ``0..k-1``
    (``y_val``/``X_val`` may be ``None``) and ``predict_proba``.
    """

    min_classes = 2

    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        self.params = dict(params)
        self.seed = seed
        self.device = device
        self.classes_: np.ndarray | None = None
        self._info: dict[str, Any] = {}

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> Classifier:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}"
            )
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < self.min_classes:
            raise ValueError(
                f"need at least {self.min_classes} classes in y, got {list(self.classes_)}"
            )
        val_codes = None
        if y_val is not None:
            y_val = np.asarray(y_val)
            if y_val.ndim != 1 or len(y_val) != len(X_val):
                raise ValueError("y_val must be 1-D with one label per row of X_val")
            val_codes = self._encode(y_val)
        self._info = {}
        self._fit(X, codes.astype(np.int64), X_val, val_codes)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @abc.abstractmethod
    def predict_proba(self, X: Any) -> np.ndarray: ...

    @abc.abstractmethod
    def _fit(self, X: Any, y: np.ndarray, X_val: Any, y_val: np.ndarray | None) -> None: ...

    def info(self) -> dict:
        return jsonable(
            {"device": self.device, "seed": self.seed, "params": self.params, **self._info}
        )

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels -> codes of ``classes_``; a label unseen in training is an error."""
        self._check_fitted()
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        unseen = self.classes_[idx] != y
        if np.any(unseen):
            raise ValueError(
                f"labels not seen in training: {sorted(set(np.asarray(y)[unseen].tolist()))}"
            )
        return idx.astype(np.int64)

    def _check_fitted(self) -> None:
        if self.classes_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _record_val_accuracy(self, X_val: Any, y_val: np.ndarray | None) -> None:
        """Validation accuracy for models that do not use the validation set while training."""
        if X_val is not None:
            pred = np.argmax(self.predict_proba(X_val), axis=1)
            self._info["val_accuracy"] = float(np.mean(pred == y_val))


class Clusterer(abc.ABC):
    """Unsupervised: ``fit_predict(X, n_clusters)``, ``transform(X)`` to 2-D, ``plot``, ``info``."""

    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        self.params = dict(params)
        self.seed = seed
        self.device = device
        self._info: dict[str, Any] = {}

    @abc.abstractmethod
    def fit_predict(self, X: Any, n_clusters: int) -> np.ndarray: ...

    @abc.abstractmethod
    def transform(self, X: Any) -> np.ndarray: ...

    @abc.abstractmethod
    def plot(self, X: Any, y_true: Any, path: str) -> None: ...

    def info(self) -> dict:
        return jsonable(
            {"device": self.device, "seed": self.seed, "params": self.params, **self._info}
        )
