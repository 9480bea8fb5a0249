"""Trial lists: which test utterances are compared with which.

Every same-speaker pair of two different test utterances is a target trial (never two chunks
of one utterance: embeddings are per utterance); non-target trials are a seeded sample of the
different-speaker pairs (all of them when there are fewer than asked). Each unordered pair
appears once, as in the VoxCeleb1 lists. Only test speakers appear, so no trial touches a
speaker the backend was trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NONTARGET_TRIALS = 20000  # default sample of different-speaker pairs per seed


def make_trials(speakers: np.ndarray, seed: int,
                n_nontarget: int = NONTARGET_TRIALS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, target) index arrays into the test utterances, whose speakers are ``speakers``;
    a < b for every pair."""
    speakers = np.asarray(speakers)
    n = len(speakers)
    a, b = np.triu_indices(n, k=1)
    same = speakers[a] == speakers[b]
    ta, tb = a[same], b[same]
    na, nb = a[~same], b[~same]
    if len(na) > n_nontarget:
        pick = np.sort(np.random.default_rng(seed).choice(len(na), n_nontarget, replace=False))
        na, nb = na[pick], nb[pick]
    target = np.r_[np.ones(len(ta), bool), np.zeros(len(na), bool)]
    return np.r_[ta, na], np.r_[tb, nb], target


def write_trials(path: Path, utterances: np.ndarray, a: np.ndarray, b: np.ndarray,
                 target: np.ndarray) -> None:
    """The VoxCeleb text format: ``1|0 utterance_a utterance_b`` per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{int(t)} {utterances[i]} {utterances[j]}" for i, j, t in
             zip(a, b, target, strict=True)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
