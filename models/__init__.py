"""Speech-feature models: one module per method, one registry, one contract.

Layout: ``registry.py`` (ModelSpec, make_model, clone), ``params.py`` (parameter checks),
``inputs.py`` (input kinds), ``base.py`` (the classifier / clusterer contracts), ``device.py``
(seeding), ``torch_train.py`` (the one torch training loop), then one file per method; the
standardiser is ``featstore.standardize``. Every method module is imported here so that it
registers itself: adding a method means adding one file that calls ``register(ModelSpec(...))``.
"""

from __future__ import annotations

import importlib
import pkgutil

from .params import ModelConfigError
from .registry import MODELS, ModelSpec, clone, list_models, make_model, spec_of

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODELS", "ModelConfigError", "ModelSpec", "clone", "list_models", "make_model",
           "spec_of"]
