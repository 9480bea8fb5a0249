"""Parameter checks shared by the registry and the model factories.

Types are checked by ``make_model`` against a spec's defaults; value checks (``check_*``) run
in each model's ``__init__``. Every failure is a one-line :class:`ModelConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featstore.errors import UserError


class ModelConfigError(UserError, ValueError):
    """A bad model name, parameter or checkpoint: a one-line message meant for the user."""


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def check_type(model: str, key: str, value: Any, default: Any, declared: Any) -> Any:
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
