"""``bench compare`` for verification cells: the two runs' scores of the same trials, paired
per test speaker (the unit): each speaker's half total error rate at its run's EER threshold
(bench/verification/intervals.py), B minus A, sign-flip tested."""

from __future__ import annotations

import numpy as np

from bench.stats import sign_flip_test
from bench.verification.intervals import speaker_hter

FIELDS = ("utt_a", "utt_b", "spk_a", "spk_b", "score", "target")


def _sorted(pred: dict) -> dict:
    order = np.lexsort((pred["utt_b"], pred["utt_a"]))
    return {k: pred[k][order] for k in FIELDS}


def speaker_diffs(pred_a: dict | None, pred_b: dict | None) -> tuple[np.ndarray, np.ndarray] | str:
    """(test speakers, HTER in B minus in A), or why the runs do not pair."""
    if pred_a is None or pred_b is None:
        return "trial scores missing"
    if any(f not in p for p in (pred_a, pred_b) for f in FIELDS):
        return "not verification trial scores"
    a, b = _sorted(pred_a), _sorted(pred_b)
    if not all(np.array_equal(a[f], b[f]) for f in ("utt_a", "utt_b", "target")):
        return "trial lists differ: no paired test"
    ha = speaker_hter(a["score"], a["target"], a["spk_a"], a["spk_b"])
    hb = speaker_hter(b["score"], b["target"], b["spk_a"], b["spk_b"])
    ids = np.array(sorted(ha))
    return ids, np.array([hb[s] - ha[s] for s in ids])


def cell_p(diffs: np.ndarray, seed: int) -> float:
    return sign_flip_test(diffs, seed=seed)


def pooled(per_seed: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray]:
    """(speakers, each speaker's difference averaged over the seeds that tested it)."""
    ids, inverse = np.unique(np.concatenate([i for i, _ in per_seed]), return_inverse=True)
    diffs = np.concatenate([d for _, d in per_seed])
    return len(ids), np.bincount(inverse, weights=diffs) / np.bincount(inverse)
