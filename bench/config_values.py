"""Value checks for benchmarks.yaml and its command-line overrides: each failure is one
:class:`ConfigError` line naming the key (``where``) and what was found."""

from __future__ import annotations

import math
from typing import Any

from featstore.device import VALID as VALID_DEVICES
from featstore.device import is_valid
from featstore.errors import UserError


class ConfigError(UserError):
    """A bad benchmarks.yaml or command-line override; one line, exit code 2."""


def check_device(value: str, where: str) -> str:
    if is_valid(value):
        return value
    raise ConfigError(f"{where}: invalid device {value!r}; valid: {VALID_DEVICES}")


def mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping (key: value), got {type_name(value)}")
    return dict(value)


def keys(mapping: dict, valid: tuple[str, ...] | list[str], where: str) -> None:
    for key in mapping:
        if key not in valid:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(valid)}")


def string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {type_name(value)}")
    return value


def names(value: Any, where: str) -> list[str]:
    """A non-empty list of distinct strings (a single string is a list of one)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{where} must be a non-empty list of names, got {type_name(value)}")
    if len(set(items)) != len(items):
        raise ConfigError(f"{where} lists a name twice: {items}")
    return items


def integer(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where} must be an integer >= {low}, got {type_name(value)}")
    return value


def seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(range(integer(value, where, low=1)))
    if isinstance(value, list) and value:
        seeds = tuple(integer(v, f"{where}[{i}]", low=0) for i, v in enumerate(value))
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where} lists a seed twice: {list(seeds)}")
        return seeds
    raise ConfigError(f"{where} must be a positive integer N (seeds 0..N-1) or a non-empty "
                      f"list of integers, got {type_name(value)}")


def choice(value: Any, valid: tuple[str, ...], where: str) -> str:
    if value not in valid:
        raise ConfigError(f"{where}: invalid value {type_name(value)}; valid: {', '.join(valid)}")
    return value


def fraction(value: Any, where: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 < value < 1:
        raise ConfigError(f"{where} must be a number in (0, 1), got {type_name(value)}")
    return float(value)


def type_name(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"
