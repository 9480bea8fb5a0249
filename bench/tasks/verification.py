"""verification: speaker verification on speakers never seen in training (SUPERB ASV,
VoxCeleb's EER protocol)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.tasks.base import PARTS, Assignment, Task, count, listing, stratified_order
from featstore.errors import UserError


class Verification(Task):
    """Split by SPEAKER. Test speakers are drawn, stratified by gender and subset, from the
    speakers with two or more utterances (a target trial needs two different utterances);
    every other speaker, single-utterance readers included, trains the scoring backend. There
    is no validation part: the backends (bench/verification/backends.py) have nothing to tune.
    Trials (bench/verification/trials.py) pair test utterances only."""

    name = "verification"
    kind = "verification"
    weighting = "none"
    unit = "speaker"
    rule = ("speaker verification on speakers unseen in training; split by speaker, test "
            "speakers have 2+ utterances; backend trained on the training speakers only")

    def assign(self, meta: pd.DataFrame, groups: np.ndarray, rng: np.random.Generator,
               validation_fraction: float, test_fraction: float) -> Assignment:
        per = meta.groupby("speaker_id").agg(utts=("utterance_id", "nunique"),
                                             gender=("gender", "first"),
                                             subset=("subset", "first"))
        multi = sorted(per.index[per["utts"] >= 2])
        if len(multi) < 3 or len(per) < 4:
            raise UserError("task verification needs at least 3 speakers with 2 or more "
                            f"utterances and 4 speakers in all; the store has {len(multi)} and "
                            f"{len(per)}")
        n_test = count(test_fraction * len(per), 2, len(multi) - 1)
        strata = [f"{per.at[s, 'gender']}/{per.at[s, 'subset']}" for s in multi]
        order = stratified_order(multi, strata, rng)
        test = set(order[:n_test])
        parts: dict[str, set] = {p: set() for p in PARTS}
        parts["test"] = test
        parts["train"] = set(per.index) - test
        notes = [f"{len(test)} test speaker(s) drawn from the {len(multi)} with 2+ utterances; "
                 f"{len(per) - len(test)} train the backend"]
        single = sorted(per.index[per["utts"] < 2])
        if single:
            notes.append(f"{len(single)} single-utterance speaker(s) are backend training data "
                         f"only: {listing(single)}")
        return parts, notes
