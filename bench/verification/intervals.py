"""Intervals and per-speaker numbers for verification, with test speakers as the unit.

Trials are not independent: one speaker's utterances enter many trials. The per-seed interval
is therefore a two-way cluster bootstrap over test speakers: draw the test speakers with
replacement (multiplicity m_s); a target trial of speaker s weighs m_s, a non-target trial of
speakers s, r weighs m_s m_r; EER / minDCF are recomputed on the weighted trials. Across seeds
the leaderboard uses the corrected resampled t interval (bench/stats.py) with the test and
training speaker counts.

For paired comparisons each test speaker gets a half total error rate at the system's own EER
threshold: (share of the speaker's target trials rejected + share of the non-target trials
they take part in accepted) / 2; ``bench compare`` sign-flip tests the per-speaker differences.
"""

from __future__ import annotations

import numpy as np

from bench.verification.metrics import (
    P_TARGETS,
    SortedTrials,
    dcf_key,
    dcf_of_rates,
    eer_of_rates,
    eer_threshold,
)

BLOCK = 1 << 22  # weights matrix cells per batch of resamples


def speaker_bootstrap(scores: np.ndarray, target: np.ndarray, spk_a: np.ndarray,
                      spk_b: np.ndarray, n_boot: int, seed: int, level: float = 0.95,
                      keep: bool = False) -> dict[str, list[float] | None]:
    """Percentile intervals of the EER and each minDCF over speaker resamples:
    {"eer_ci": [lo, hi], "min_dcf_0.01_ci": ..., ...} (None when ``n_boot`` is 0); ``keep``:
    also "eer_replicates", the EER of every resample (cross-corpus seeds combine them)."""
    keys = ["eer", *(dcf_key(p) for p in P_TARGETS)]
    if n_boot <= 0:
        return {f"{k}_ci": None for k in keys} | ({"eer_replicates": []} if keep else {})
    target = np.asarray(target, bool)
    ids, inverse = np.unique(np.r_[spk_a, spk_b], return_inverse=True)
    ia, ib = inverse[: len(spk_a)], inverse[len(spk_a) :]
    trials = SortedTrials(scores, target)
    rng = np.random.default_rng(seed)
    values: dict[str, list] = {k: [] for k in keys}
    per_block = max(1, BLOCK // max(len(scores), 1))
    for start in range(0, n_boot, per_block):
        b = min(per_block, n_boot - start)
        draws = rng.integers(0, len(ids), (b, len(ids)))
        m = np.stack([np.bincount(d, minlength=len(ids)) for d in draws]).astype(float)
        w = np.where(target, m[:, ia], m[:, ia] * m[:, ib])
        ok = ((w * target).sum(axis=1) > 0) & ((w * ~target).sum(axis=1) > 0)
        if not ok.any():
            continue  # draws without targets or non-targets have no error rate
        rates = trials.rates(w[ok])
        values["eer"] += eer_of_rates(*rates).tolist()
        for p in P_TARGETS:
            values[dcf_key(p)] += dcf_of_rates(*rates, p).tolist()
    alpha = (1 - level) / 2
    out = {f"{k}_ci": [float(x) for x in np.quantile(v, [alpha, 1 - alpha])] if v else None
           for k, v in values.items()}
    if keep:
        out["eer_replicates"] = [float(x) for x in values["eer"]]
    return out


def speaker_hter(scores: np.ndarray, target: np.ndarray, spk_a: np.ndarray,
                 spk_b: np.ndarray) -> dict[str, float]:
    """Test speaker -> half total error rate at the EER threshold of all trials."""
    target = np.asarray(target, bool)
    accept = scores >= eer_threshold(scores, target)
    out = {}
    for s in np.unique(np.r_[spk_a, spk_b]):
        involved = (spk_a == s) | (spk_b == s)
        tgt, non = involved & target, involved & ~target
        rates = [float(np.mean(~accept[tgt]))] if tgt.any() else []
        rates += [float(np.mean(accept[non]))] if non.any() else []
        out[str(s)] = float(np.mean(rates))
    return out
