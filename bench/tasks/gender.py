"""gender: F vs M, split by speaker."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.tasks.base import GENDERS, PARTS, Assignment, Task, count, listing, stratified_order
from featstore.errors import UserError


class Gender(Task):
    """Split by SPEAKER: a speaker's chunks are all on one side. Test and validation take the
    same number of F and M speakers, so chance is 50% on speakers, and within each gender the
    speakers are drawn stratified by subset (recording condition: clean / other), so no part
    is, say, all test-other men. Speakers whose gender is not F or M are left out, with a
    note."""

    name = "gender"
    label_column = "gender"
    weighting = "speaker"
    unit = "speaker"
    rule = ("F vs M; split by speaker, test/validation speakers balanced F/M and stratified by "
            "subset")

    def assign(self, meta: pd.DataFrame, groups: np.ndarray, rng: np.random.Generator,
               validation_fraction: float, test_fraction: float) -> Assignment:
        genders = meta.groupby("speaker_id")["gender"].first()
        subsets = meta.groupby("speaker_id")["subset"].first()
        notes = []
        unknown = sorted(genders.index[~genders.isin(GENDERS)])
        if unknown:
            notes.append(f"left out {len(unknown)} speaker(s) whose gender is not F or M: "
                         f"{listing(unknown)}")
        by_gender = {g: sorted(genders.index[genders == g]) for g in GENDERS}
        smallest = min(len(v) for v in by_gender.values())
        if smallest < 2:
            raise UserError("task gender needs at least 2 F and 2 M speakers to split by "
                            f"speaker; the store has F={len(by_gender['F'])}, "
                            f"M={len(by_gender['M'])}")
        total = sum(len(v) for v in by_gender.values())
        # the same k per gender: balanced test / validation; keep >= 1 training speaker per
        # gender, and room for one validation speaker when there are 3 or more
        n_test = count(test_fraction * total / 2, 1, smallest - (2 if smallest >= 3 else 1))
        left = smallest - n_test
        n_val = (count(validation_fraction * (total - 2 * n_test) / 2, 1, left - 1)
                 if left >= 2 else 0)
        if not n_val:
            notes.append("no validation speakers: too few speakers of one gender")
        parts: dict[str, set] = {p: set() for p in PARTS}
        for g in GENDERS:
            order = stratified_order(by_gender[g], [subsets[s] for s in by_gender[g]], rng)
            parts["test"].update(order[:n_test])
            parts["validation"].update(order[n_test : n_test + n_val])
            parts["train"].update(order[n_test + n_val :])
        return parts, notes

    def eligible_test(self, meta: pd.DataFrame) -> np.ndarray:
        return meta["gender"].isin(GENDERS).to_numpy()

    def check(self, split, meta: pd.DataFrame, where: str) -> str | None:
        bad = set(self.labels(meta)[split.rows()]) - set(GENDERS)
        if bad:
            return f"{where}: gender labels other than F/M in the split: {sorted(bad)}"
        return None
