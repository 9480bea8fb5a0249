"""speaker: closed-set speaker identification, split by session where a speaker has several."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.tasks.base import PARTS, Assignment, Task, count, listing
from featstore.errors import UserError


class Speaker(Task):
    """Every speaker is on both train and test. Split by SESSION where a speaker has two or
    more chapters (a LibriSpeech chapter is one recording session: a chapter's chunks are all
    on one side), else by UTTERANCE, and then train and test share a recording session (said
    in a note: accuracy then partly measures session matching). Per speaker, test takes
    ``test_fraction`` of the units and validation ``validation_fraction`` of the rest. A
    speaker with 2 units goes to train + test only; a speaker with 1 utterance cannot be on
    both sides and is left out. Both with a note.

    The split group is also the independent unit: a session (all chunks of one chapter of a
    multi-chapter speaker) or, for a one-chapter speaker, an utterance."""

    name = "speaker"
    weighting = "class"
    unit = "session"
    speaker_disjoint = False
    cross_corpus = False  # closed-set: test speakers must be in training
    rule = ("closed-set speaker identification; split by chapter (recording session) where a "
            "speaker has several, else by utterance; every speaker on train and test; unit: "
            "that session / utterance")

    def groups(self, meta: pd.DataFrame) -> np.ndarray:
        chapters = meta.groupby("speaker_id")["chapter_id"].transform("nunique").to_numpy()
        session = (meta["speaker_id"].astype(str) + "-"
                   + meta["chapter_id"].astype(str)).to_numpy()
        return np.where(chapters >= 2, session, meta["utterance_id"].to_numpy())

    def assign(self, meta: pd.DataFrame, groups: np.ndarray, rng: np.random.Generator,
               validation_fraction: float, test_fraction: float) -> Assignment:
        utts = meta.assign(unit=groups).groupby("speaker_id")["unit"].unique()
        n_chapters = meta.groupby("speaker_id")["chapter_id"].nunique()
        parts: dict[str, set] = {p: set() for p in PARTS}
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
            n_test = count(test_fraction * n, 1, max(1, n - 2))
            n_val = count(validation_fraction * (n - n_test), 1, n - n_test - 1) if n >= 3 else 0
            parts["test"].update(order[:n_test])
            parts["validation"].update(order[n_test : n_test + n_val])
            parts["train"].update(order[n_test + n_val :])
        kept = [s for s in utts.index if s not in single]
        one_session = [s for s in kept if n_chapters[s] < 2]
        notes = []
        if one_session:
            notes.append(f"{len(one_session)} of {len(kept)} speaker(s) have one chapter (one "
                         "recording session): split by utterance, so train and test share a "
                         f"session for them: {listing(one_session)}")
        if len(kept) > len(one_session):
            notes.append(f"{len(kept) - len(one_session)} speaker(s) split by chapter "
                         "(session-disjoint)")
        if single:
            notes.append(f"left out {len(single)} speaker(s) with a single utterance (cannot be "
                         f"on both train and test): {listing(single)}")
        if pairs:
            notes.append(f"{len(pairs)} speaker(s) with 2 utterances or chapters are in train "
                         f"and test only, not validation: {listing(pairs)}")
        if len(utts) - len(single) < 2:
            raise UserError("task speaker needs at least 2 speakers with 2 or more utterances")
        return parts, notes

    def check(self, split, meta: pd.DataFrame, where: str) -> str | None:
        y = self.labels(meta)
        unseen = set(y[split.test]) - set(y[split.train])
        if unseen:
            return f"{where}: test speakers absent from training: {sorted(unseen)}"
        return None
