"""The benchmark tasks, by name: each one object owning its split rule, unit and kind
(bench/tasks/base.py)."""

from __future__ import annotations

from bench.tasks.base import GENDERS, KINDS, PARTS, Task
from bench.tasks.gender import Gender
from bench.tasks.speaker import Speaker
from bench.tasks.verification import Verification

TASKS: dict[str, Task] = {t.name: t for t in (Gender(), Speaker(), Verification())}

__all__ = ["GENDERS", "KINDS", "PARTS", "TASKS", "Task"]
