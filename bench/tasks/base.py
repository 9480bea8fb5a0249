"""The task contract: what every benchmark task owns, and helpers its splitters share.

A task is one object (registered in ``bench.tasks.TASKS``) that owns its label, its split
rule together with the one-line text that describes it (``bench list``, the leaderboard
heading), its independent unit (what intervals, cluster bootstraps and paired tests count),
its default training weights and its kind, which decides the cell runner and the leaderboard
section (``classification``: accuracy tables; ``verification``: EER / minDCF tables).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

PARTS = ("train", "validation", "test")
GENDERS = ("F", "M")
KINDS = ("classification", "verification")

Assignment = tuple[dict[str, set], list[str]]  # split groups per part, notes


class Task:
    name: ClassVar[str]
    kind: ClassVar[str] = "classification"
    label_column: ClassVar[str] = "speaker_id"
    weighting: ClassVar[str] = "class"  # default of tasks.<name>.weighting (bench/weights.py)
    rule: ClassVar[str]  # the split rule, one line: `bench list` and the leaderboard heading
    unit: ClassVar[str]  # the independent unit, singular ("speaker", "session")
    speaker_disjoint: ClassVar[bool] = True  # no speaker on two sides of a split
    cross_corpus: ClassVar[bool] = True  # may name a test_store (bench/crosscorpus.py)

    def labels(self, meta: pd.DataFrame) -> np.ndarray:
        """The label of every store row."""
        return meta[self.label_column].to_numpy()

    def groups(self, meta: pd.DataFrame) -> np.ndarray:
        """Per row, the group that may not cross sides (of the split and of inner CV folds).
        It is also the independent unit: intervals, bootstraps and paired tests count it."""
        return meta["speaker_id"].to_numpy()

    def assign(self, meta: pd.DataFrame, groups: np.ndarray, rng: np.random.Generator,
               validation_fraction: float, test_fraction: float) -> Assignment:
        """The groups of each part (and notes) for the eligible rows ``meta``."""
        raise NotImplementedError

    def eligible_test(self, meta: pd.DataFrame) -> np.ndarray:
        """The rows of a cross-corpus test store this task can score (default: all)."""
        return np.ones(len(meta), dtype=bool)

    def check(self, split, meta: pd.DataFrame, where: str) -> str | None:
        """A task-specific reason the split cannot be evaluated, or None."""
        return None


def listing(names: list, limit: int = 12) -> str:
    """Names for a note: all of a short list, the first ``limit`` of a long one."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(map(str, names[:limit])) + more


def count(x: float, low: int, high: int) -> int:
    """round(x) (halves up, unlike Python's round) clamped to [low, high]."""
    return int(min(max(np.floor(x + 0.5), low), high))


def stratified_order(ids: list, strata: list, rng: np.random.Generator) -> list:
    """``ids`` in a random order in which every prefix holds each stratum in proportion
    (systematic sampling: member r of a shuffled stratum of m sits at (r + u) / m)."""
    position = {}
    for stratum in sorted(set(strata)):
        members = [i for i, s in zip(ids, strata, strict=True) if s == stratum]
        members = [members[k] for k in rng.permutation(len(members))]
        u = rng.random()
        position.update({m: (r + u) / len(members) for r, m in enumerate(members)})
    tiebreak = dict(zip(ids, rng.random(len(ids)), strict=True))
    return sorted(ids, key=lambda i: (position[i], tiebreak[i]))
