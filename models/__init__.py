"""Speech-feature models: one module per method, one registry, one contract (see base.py).

Every submodule is imported here so that it registers itself: adding a method means adding
one file that calls ``register(ModelSpec(...))``.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import MODELS, ModelConfigError, ModelSpec, list_models, make_model

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODELS", "ModelConfigError", "ModelSpec", "list_models", "make_model"]
