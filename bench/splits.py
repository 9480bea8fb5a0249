"""Train / validation / test splits of a task, and the leakage check run before any model.

Each task (bench/tasks/) owns its split rule, its groups (what may not cross sides, and the
independent unit) and its rule text; this module applies it the same way for all: subset
filter, one seeded generator, groups to rows, and ``check_split``.

Validation is for early stopping / model choice only; the test part is never shown to a model
before prediction. Splits are deterministic functions of the metadata and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.tasks import PARTS, TASKS, Task
from featstore.errors import UserError


class LeakageError(RuntimeError):
    """A split puts one speaker / utterance / row on two sides. A bug, never a user mistake."""


@dataclass(frozen=True)
class Split:
    task: str
    seed: int
    train: np.ndarray  # store row indices, sorted
    validation: np.ndarray
    test: np.ndarray
    notes: tuple[str, ...] = ()
    test_store: str | None = None  # cross-corpus: ``test`` indexes this store's rows

    def train_rows(self) -> np.ndarray:
        """Rows of the main store a model may learn from (train and validation)."""
        return np.sort(np.concatenate([self.train, self.validation]))

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def rows(self) -> np.ndarray:
        """Every main-store row of the split (the test part too unless it is another store)."""
        if self.test_store is not None:
            return self.train_rows()
        return np.sort(np.concatenate([self.train, self.validation, self.test]))


def task_of(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def labels(meta: pd.DataFrame, task: str) -> np.ndarray:
    """The label of every store row for ``task``."""
    return task_of(task).labels(meta)


def split_groups(meta: pd.DataFrame, task: str) -> np.ndarray:
    """Per row, the group that may not cross sides (of the split, and of inner CV folds), which
    is also the task's independent unit: the speaker (gender, verification); the chapter for
    speakers with two or more chapters, else the utterance (speaker)."""
    return task_of(task).groups(meta)


def in_subsets(meta: pd.DataFrame, task: str, subsets: tuple[str, ...] | list[str] | None
               ) -> np.ndarray:
    """Rows of the task's ``subsets`` (all rows when None); an absent subset is an error."""
    eligible = np.ones(len(meta), dtype=bool)
    if subsets:
        have = sorted(meta["subset"].unique())
        absent = [s for s in subsets if s not in have]
        if absent:
            raise UserError(f"task {task}: subsets {', '.join(absent)} not in the store; it has: "
                            f"{', '.join(have)}")
        eligible &= meta["subset"].isin(list(subsets)).to_numpy()
    return eligible


def make_split(
    meta: pd.DataFrame,
    task: str,
    seed: int,
    *,
    validation_fraction: float,
    test_fraction: float,
    subsets: tuple[str, ...] | list[str] | None = None,
) -> Split:
    """The ``task`` split of the store rows in ``meta`` for ``seed``."""
    spec = task_of(task)
    eligible = in_subsets(meta, task, subsets)
    rng = np.random.default_rng(seed)
    column = spec.groups(meta)
    groups, notes = spec.assign(meta[eligible], column[eligible], rng, validation_fraction,
                                test_fraction)
    parts = {p: np.flatnonzero(eligible & np.isin(column, list(groups[p]))) for p in PARTS}
    return Split(task, seed, notes=tuple(notes), **parts)


def check_split(split: Split, meta: pd.DataFrame) -> None:
    """Raise LeakageError if a row, a group (the task's unit), an utterance or (speaker-disjoint
    tasks) a speaker is on two sides, or if the split cannot be evaluated (empty train / test,
    or the task's own check: a test speaker unseen in training for closed-set speaker ID, a
    gender label other than F / M)."""
    spec = task_of(split.task)
    where = f"task {split.task}, seed {split.seed}"
    parts = split.parts()
    if split.test_store is not None:  # the test part is another store (bench/crosscorpus.py)
        parts = {"train": split.train, "validation": split.validation}
    ids = {"group": spec.groups(meta), "utterance_id": meta["utterance_id"].to_numpy()}
    if spec.speaker_disjoint:
        ids["speaker_id"] = meta["speaker_id"].to_numpy()
    for p in ("train", "test"):
        if len(split.parts()[p]) == 0:
            raise LeakageError(f"{where}: the {p} part is empty")
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rows = np.intersect1d(parts[a], parts[b])
            if rows.size:
                raise LeakageError(f"{where}: {rows.size} row(s) in both {a} and {b} "
                                   f"(e.g. row {rows[0]})")
            for name, column in ids.items():
                shared = np.intersect1d(column[parts[a]], column[parts[b]])
                if shared.size:
                    raise LeakageError(f"{where}: {name} {shared[0]} is in both {a} and {b} "
                                       f"({shared.size} shared)")
    problem = None if split.test_store is not None else spec.check(split, meta, where)
    if problem:
        raise LeakageError(problem)


def describe(split: Split, meta: pd.DataFrame, test_meta: pd.DataFrame | None = None) -> dict:
    """The split as LibriSpeech utterance ids per part, with its notes (for splits.json);
    ``test_meta``: the test store's, for a cross-corpus split."""
    utt = meta["utterance_id"].to_numpy()
    out: dict = {p: sorted(set(utt[rows])) for p, rows in split.parts().items()}
    if split.test_store is not None and test_meta is not None:
        out["test"] = sorted(set(test_meta["utterance_id"].to_numpy()[split.test]))
        out["test_store"] = split.test_store
    out["notes"] = list(split.notes)
    return out
