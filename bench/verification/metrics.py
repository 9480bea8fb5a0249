"""Verification error rates from trial scores: EER, minDCF, DET points.

Conventions (NIST SRE / VoxCeleb / SUPERB ASV): a trial is accepted when its score is at least
the threshold; P_miss(t) is the share of target trials scored below t, P_fa(t) the share of
non-target trials scored at or above it. The EER is where the two rates cross, interpolated
linearly between the neighbouring operating points. minDCF is the normalised detection cost
minimised over thresholds:

    DCF(t) = C_miss P_target P_miss(t) + C_fa (1 - P_target) P_fa(t),
    minDCF = min_t DCF(t) / min(C_miss P_target, C_fa (1 - P_target)),

so 1.0 is the cost of always accepting or always rejecting. Trials may carry weights (the
speaker bootstrap counts a resampled speaker's trials once per draw); ``rates_of_weights``
scores many weightings of one sorted trial list at once.
"""

from __future__ import annotations

import numpy as np

P_TARGETS = (0.01, 0.05)


class SortedTrials:
    """Trials sorted by descending score, with the cut points between distinct scores."""

    def __init__(self, scores: np.ndarray, target: np.ndarray):
        scores = np.asarray(scores, dtype=float)
        self.order = np.argsort(-scores, kind="mergesort")
        s = scores[self.order]
        self.target = np.asarray(target, dtype=bool)[self.order]
        self.last = np.r_[s[1:] != s[:-1], True]  # cut after the last of tied scores only
        self.cuts = np.r_[np.inf, s[self.last]]  # cut k accepts scores >= cuts[k]

    def rates(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(P_miss, P_fa), each [B, cuts] for weights [B, n] (or [1, cuts] unweighted), from
        accept-none to accept-all."""
        n = len(self.order)
        w = np.ones((1, n)) if weights is None else np.atleast_2d(weights)[:, self.order]
        tw = np.cumsum(w * self.target, axis=1)[:, self.last]
        nw = np.cumsum(w * ~self.target, axis=1)[:, self.last]
        if (tw[:, -1] <= 0).any() or (nw[:, -1] <= 0).any():
            raise ValueError("need target and non-target trials")
        zero = np.zeros((len(w), 1))
        p_miss = 1.0 - np.hstack([zero, tw]) / tw[:, -1:]
        p_fa = np.hstack([zero, nw]) / nw[:, -1:]
        return p_miss, p_fa


def eer_of_rates(p_miss: np.ndarray, p_fa: np.ndarray) -> np.ndarray:
    """Per row, the EER: linear interpolation on the segment where P_miss - P_fa turns <= 0."""
    diff = p_miss - p_fa  # falls from 1 (accept no trial) to -1 (accept every trial)
    i = np.argmax(diff <= 0, axis=1)
    rows = np.arange(len(diff))
    j = np.maximum(i - 1, 0)
    d0, d1 = diff[rows, j], diff[rows, i]
    a = np.where(d0 > d1, d0 / np.where(d0 > d1, d0 - d1, 1.0), 1.0)
    at = p_fa[rows, j] + a * (p_fa[rows, i] - p_fa[rows, j])
    return np.where((i == 0) | (d1 == 0), (p_miss[rows, i] + p_fa[rows, i]) / 2, at)


def dcf_of_rates(p_miss: np.ndarray, p_fa: np.ndarray, p_target: float, c_miss: float = 1.0,
                 c_fa: float = 1.0) -> np.ndarray:
    cost = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    return cost.min(axis=1) / min(c_miss * p_target, c_fa * (1 - p_target))


def eer(scores: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Equal error rate, linearly interpolated where P_miss and P_fa cross."""
    return float(eer_of_rates(*SortedTrials(scores, target).rates(weights))[0])


def min_dcf(scores: np.ndarray, target: np.ndarray, p_target: float, c_miss: float = 1.0,
            c_fa: float = 1.0, weights: np.ndarray | None = None) -> float:
    """Normalised minimum detection cost at ``p_target``."""
    rates = SortedTrials(scores, target).rates(weights)
    return float(dcf_of_rates(*rates, p_target, c_miss, c_fa)[0])


def dcf_key(p_target: float) -> str:
    return f"min_dcf_{p_target:g}"


def scores_of(scores: np.ndarray, target: np.ndarray) -> dict:
    """EER and minDCF at each of P_TARGETS (C_miss = C_fa = 1)."""
    rates = SortedTrials(scores, target).rates()
    out = {"eer": float(eer_of_rates(*rates)[0])}
    out.update({dcf_key(p): float(dcf_of_rates(*rates, p)[0]) for p in P_TARGETS})
    return out


def eer_threshold(scores: np.ndarray, target: np.ndarray) -> float:
    """The threshold of the first operating point where P_fa reaches P_miss."""
    trials = SortedTrials(scores, target)
    p_miss, p_fa = trials.rates()
    return float(trials.cuts[int(np.argmax(p_miss[0] - p_fa[0] <= 0))])
