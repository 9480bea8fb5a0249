"""Seed-level intervals and paired tests that respect the independent units of a task.

Chunks of one speaker (or one utterance) are correlated: they share a voice, a microphone and
a text, so a model that gets one wrong tends to get its neighbours wrong too. Treating chunks
as independent makes intervals too narrow and p-values too small. Everything here therefore
works on independent units (bench/tasks/): test speakers for gender, test sessions (the
chapter of a multi-chapter speaker, else the utterance) for speaker ID.

``seed_interval`` turns J per-seed scores (one per random train/test split of the same dataset)
into a confidence interval for the model's expected accuracy. Each seed's score varies with
the split (which units train, which test, the training run itself) and with the sampling of
the test units within that split, so the spread of the J scores carries both. The scores are
not independent, though: any two splits share most of their training units, which makes the
naive s^2 / J too small. Nadeau & Bengio (2003) correct it to (1/J + n_test/n_train) * s^2.

``sign_flip_test`` compares two runs on the same test units: under "no difference" each unit's
difference B - A is as likely to have either sign, so flipping signs gives its null
distribution without assuming normality or independent chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

_MAX_EXACT = 16  # 2^16 sign vectors x 16 units: small enough to enumerate outright
_CHUNK_CELLS = 1 << 20  # Monte Carlo sign matrix is drawn in blocks of about this many cells


def seed_interval(values: Sequence[float] | np.ndarray, n_train: float, n_test: float,
                  level: float = 0.95) -> tuple[float, float] | None:
    """Corrected resampled t interval (Nadeau & Bengio, 2003) for the mean of J per-seed scores.

    ``values``: one score per seed, each from its own random train/test split of one dataset.
    ``n_train`` / ``n_test``: the (mean) numbers of independent units (speakers or utterances)
    in train and test. The interval is mean +- t_{J-1} * sqrt((1/J + n_test/n_train) * s^2),
    s^2 the sample variance of the scores. It is clipped to [0, 1] because accuracy is bounded.
    None when J < 2 (no spread to estimate).
    """
    x = np.asarray(values, dtype=float).ravel()
    j = x.size
    if j < 2:
        return None
    if n_train <= 0 or n_test < 0:
        raise ValueError(f"need n_train > 0 and n_test >= 0, got {n_train}, {n_test}")
    mean = float(x.mean())
    # n_test/n_train: the training sets of two seeds overlap, so their scores are positively
    # correlated and the J scores hold less information than J independent ones would
    var = (1.0 / j + n_test / n_train) * float(x.var(ddof=1))
    half = float(sps.t.ppf(1 - (1 - level) / 2, j - 1)) * math.sqrt(var)
    return max(0.0, mean - half), min(1.0, mean + half)


def sign_flip_test(diffs: Sequence[float] | np.ndarray, n_resamples: int = 10000,
                   seed: int = 0) -> float:
    """Two-sided paired sign-flip permutation p-value for "the mean of ``diffs`` is 0".

    ``diffs``: one value per independent unit (e.g. a speaker's accuracy in run B minus run A).
    With at most 16 units all 2^n sign vectors are enumerated (exact p); otherwise ``n_resamples``
    random sign vectors give p = (1 + #{|T*| >= |T|}) / (1 + n_resamples), which never is 0.
    All-zero or empty ``diffs`` give 1.0.
    """
    d = np.asarray(diffs, dtype=float).ravel()
    n = d.size
    if n == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean())
    # tolerance: a flipped vector with the same |mean| must count as "as extreme" even when
    # floating-point summation order makes it differ in the last bits (scaled for big diffs)
    threshold = observed - 1e-12 * max(1.0, float(np.abs(d).max()))
    if n <= _MAX_EXACT:
        bits = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
        signs = 1.0 - 2.0 * bits  # row k: the signs given by the binary digits of k
        extreme = np.abs(signs @ d) / n >= threshold
        return float(extreme.mean())  # the identity vector is one of the rows: p >= 2^-n
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK_CELLS // n)
    hits = 0
    for start in range(0, n_resamples, block):
        m = min(block, n_resamples - start)
        signs = np.where(rng.random((m, n)) < 0.5, -1.0, 1.0)
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= threshold))
    return (1 + hits) / (1 + n_resamples)
