"""Tasks, their train / validation / test splits, and the leakage check run before any model.

gender   F vs M. Split by SPEAKER: a speaker's chunks are all on one side. Test and validation
         take the same number of F and M speakers, so chance is 50% on speakers, and within
         each gender the speakers are drawn stratified by subset (recording condition: clean /
         other), so no part is, say, all test-other men. Speakers whose gender is not F or M
         are left out, with a note.
speaker  Closed-set speaker identification; every speaker is on both train and test. Split by
         SESSION where a speaker has two or more chapters (a LibriSpeech chapter is one
         recording session: a chapter's chunks are all on one side), else by UTTERANCE, and
         then train and test share a recording session (said in a note: accuracy then partly
         measures session matching). Per speaker, test takes ``test_fraction`` of the units and
         validation ``validation_fraction`` of the rest. A speaker with 2 units goes to train +
         test only; a speaker with 1 utterance cannot be on both sides and is left out. Both
         with a note.

Validation is for early stopping / model choice only; the test part is never shown to a model
before prediction. Splits are deterministic functions of the metadata and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from featstore.errors import UserError

PARTS = ("train", "validation", "test")
GENDERS = ("F", "M")
LABEL_COLUMN = {"gender": "gender", "speaker": "speaker_id"}
# the independent unit of a task's test set: intervals and paired tests count these
UNIT_COLUMN = {"gender": "speaker_id", "speaker": "utterance_id"}


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

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def rows(self) -> np.ndarray:
        return np.sort(np.concatenate([self.train, self.validation, self.test]))


def labels(meta: pd.DataFrame, task: str) -> np.ndarray:
    """The label of every store row for ``task``."""
    return meta[LABEL_COLUMN[task]].to_numpy()


def split_groups(meta: pd.DataFrame, task: str) -> np.ndarray:
    """Per row, the group that may not cross sides (of the split, and of inner CV folds):
    the speaker (gender); the chapter for speakers with two or more chapters, else the
    utterance (speaker)."""
    if task == "gender":
        return meta["speaker_id"].to_numpy()
    chapters = meta.groupby("speaker_id")["chapter_id"].transform("nunique").to_numpy()
    session = (meta["speaker_id"].astype(str) + "-" + meta["chapter_id"].astype(str)).to_numpy()
    return np.where(chapters >= 2, session, meta["utterance_id"].to_numpy())


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
    if task not in LABEL_COLUMN:
        raise UserError(f"unknown task {task!r}; valid tasks: {', '.join(LABEL_COLUMN)}")
    eligible = np.ones(len(meta), dtype=bool)
    if subsets:
        have = sorted(meta["subset"].unique())
        absent = [s for s in subsets if s not in have]
        if absent:
            raise UserError(f"task {task}: subsets {', '.join(absent)} not in the store; it has: "
                            f"{', '.join(have)}")
        eligible &= meta["subset"].isin(list(subsets)).to_numpy()
    rng = np.random.default_rng(seed)
    split = _gender if task == "gender" else _speaker
    column = split_groups(meta, task)
    groups, notes = split(meta[eligible], column[eligible], rng, validation_fraction,
                          test_fraction)
    parts = {p: np.flatnonzero(eligible & np.isin(column, list(groups[p]))) for p in PARTS}
    return Split(task, seed, notes=tuple(notes), **parts)


def _listing(names: list, limit: int = 12) -> str:
    """Names for a note: all of a short list, the first ``limit`` of a long one."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(map(str, names[:limit])) + more


def _count(x: float, low: int, high: int) -> int:
    """round(x) (halves up, unlike Python's round) clamped to [low, high]."""
    return int(min(max(np.floor(x + 0.5), low), high))


def _stratified_order(ids: list, strata: list, rng) -> list:
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


def _gender(meta: pd.DataFrame, column: np.ndarray, rng, vf: float,
            tf: float) -> tuple[dict[str, set], list[str]]:
    genders = meta.groupby("speaker_id")["gender"].first()
    subsets = meta.groupby("speaker_id")["subset"].first()
    notes = []
    unknown = sorted(genders.index[~genders.isin(GENDERS)])
    if unknown:
        notes.append(f"left out {len(unknown)} speaker(s) whose gender is not F or M: "
                     f"{_listing(unknown)}")
    by_gender = {g: sorted(genders.index[genders == g]) for g in GENDERS}
    smallest = min(len(v) for v in by_gender.values())
    if smallest < 2:
        raise UserError("task gender needs at least 2 F and 2 M speakers to split by speaker; "
                        f"the store has F={len(by_gender['F'])}, M={len(by_gender['M'])}")
    total = sum(len(v) for v in by_gender.values())
    # the same k per gender: balanced test / validation; keep >= 1 training speaker per
    # gender, and room for one validation speaker when there are 3 or more
    n_test = _count(tf * total / 2, 1, smallest - (2 if smallest >= 3 else 1))
    left = smallest - n_test
    n_val = _count(vf * (total - 2 * n_test) / 2, 1, left - 1) if left >= 2 else 0
    if not n_val:
        notes.append("no validation speakers: too few speakers of one gender")
    groups: dict[str, set] = {p: set() for p in PARTS}
    for g in GENDERS:
        order = _stratified_order(by_gender[g], [subsets[s] for s in by_gender[g]], rng)
        groups["test"].update(order[:n_test])
        groups["validation"].update(order[n_test : n_test + n_val])
        groups["train"].update(order[n_test + n_val :])
    return groups, notes


def _speaker(meta: pd.DataFrame, column: np.ndarray, rng, vf: float,
             tf: float) -> tuple[dict[str, set], list[str]]:
    utts = meta.assign(unit=column).groupby("speaker_id")["unit"].unique()
    n_chapters = meta.groupby("speaker_id")["chapter_id"].nunique()
    groups: dict[str, set] = {p: set() for p in PARTS}
    single, pairs = [], []
    for speaker in sorted(utts.index):
        ids = sorted(utts[speaker])
        order = [ids[i] for i in rng.permutation(len(ids))]
        n = len(order)
        if n < 2:
            single.append(speaker)
            continue
        if n == 2:
            pairs.append(speaker)
        n_test = _count(tf * n, 1, max(1, n - 2))
        n_val = _count(vf * (n - n_test), 1, n - n_test - 1) if n >= 3 else 0
        groups["test"].update(order[:n_test])
        groups["validation"].update(order[n_test : n_test + n_val])
        groups["train"].update(order[n_test + n_val :])
    kept = [s for s in utts.index if s not in single]
    one_session = [s for s in kept if n_chapters[s] < 2]
    notes = []
    if one_session:
        notes.append(f"{len(one_session)} of {len(kept)} speaker(s) have one chapter (one "
                     "recording session): split by utterance, so train and test share a session "
                     f"for them: {_listing(one_session)}")
    if len(kept) > len(one_session):
        notes.append(f"{len(kept) - len(one_session)} speaker(s) split by chapter "
                     "(session-disjoint)")
    if single:
        notes.append(f"left out {len(single)} speaker(s) with a single utterance (cannot be on "
                     f"both train and test): {_listing(single)}")
    if pairs:
        notes.append(f"{len(pairs)} speaker(s) with 2 utterances or chapters are in train and "
                     f"test only, not validation: {_listing(pairs)}")
    if len(utts) - len(single) < 2:
        raise UserError("task speaker needs at least 2 speakers with 2 or more utterances")
    return groups, notes


def check_split(split: Split, meta: pd.DataFrame) -> None:
    """Raise LeakageError if a row, or a speaker (gender) / utterance (speaker), is on two
    sides, or if the split cannot be evaluated (empty train / test, a test speaker unseen in
    training for closed-set speaker ID, a gender label other than F / M)."""
    where = f"task {split.task}, seed {split.seed}"
    parts = split.parts()
    group = split_groups(meta, split.task)
    unit = meta[UNIT_COLUMN[split.task]].to_numpy()
    for p in ("train", "test"):
        if len(parts[p]) == 0:
            raise LeakageError(f"{where}: the {p} part is empty")
    for i, a in enumerate(PARTS):
        for b in PARTS[i + 1 :]:
            rows = np.intersect1d(parts[a], parts[b])
            if rows.size:
                raise LeakageError(f"{where}: {rows.size} row(s) in both {a} and {b} "
                                   f"(e.g. row {rows[0]})")
            for name, ids in (("group", group), (UNIT_COLUMN[split.task], unit)):
                shared = np.intersect1d(ids[parts[a]], ids[parts[b]])
                if shared.size:
                    raise LeakageError(f"{where}: {name} {shared[0]} is in both {a} and {b} "
                                       f"({shared.size} shared)")
    y = labels(meta, split.task)
    if split.task == "gender":
        bad = set(y[split.rows()]) - set(GENDERS)
        if bad:
            raise LeakageError(f"{where}: gender labels other than F/M in the split: {sorted(bad)}")
    else:
        unseen = set(y[split.test]) - set(y[split.train])
        if unseen:
            raise LeakageError(f"{where}: test speakers absent from training: {sorted(unseen)}")


def describe(split: Split, meta: pd.DataFrame) -> dict:
    """The split as LibriSpeech utterance ids per part, with its notes (for splits.json)."""
    utt = meta["utterance_id"].to_numpy()
    out: dict = {p: sorted(set(utt[rows])) for p, rows in split.parts().items()}
    out["notes"] = list(split.notes)
    return out
