"""Per-chunk statistics of a stored pitch track (``pitch/f0``: Hz per frame, 0 = unvoiced), for
the bench ``pitch`` view and the EDA: numpy only.

Over the voiced frames whose centre lies in real audio: median, lower and upper quartile and
population std of log-F0 (natural log of Hz), and the voiced fraction of the real frames. A
chunk with no voiced frame gets log-F0 statistics of a fixed, data-independent value (the log
of the geometric centre of the F0 search range, std 0) and a flag column set to 1; no NaN.
"""

from __future__ import annotations

import math

import numpy as np

from featstore.pooling import frame_shift, masked_mean_std, valid_frames

COLUMNS = ("logf0_median", "logf0_q25", "logf0_q75", "logf0_std", "voiced_fraction",
           "no_voiced_frame")


def no_voice_value(params: dict) -> float:
    """log-F0 given to chunks without a voiced frame: log sqrt(f0_min * f0_max)."""
    return 0.5 * (math.log(params.get("f0_min", 50.0)) + math.log(params.get("f0_max", 500.0)))


def _sorted_quantiles(s: np.ndarray, k: np.ndarray, q: float) -> np.ndarray:
    """Quantile q of each row's first k values of ascending rows ``s`` (linear interpolation,
    numpy's default); k >= 1."""
    pos = q * (k - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, k - 1)
    low = np.take_along_axis(s, lo[:, None], 1)[:, 0]
    high = np.take_along_axis(s, hi[:, None], 1)[:, 0]
    return low + (pos - lo) * (high - low)


def pitch_stats(f0: np.ndarray, n_samples: np.ndarray, params: dict) -> np.ndarray:
    """[chunks, 6] float32 (``COLUMNS``) from f0 [chunks, frames] and real-sample counts."""
    f0 = np.asarray(f0, dtype=np.float64)
    n_real = valid_frames(n_samples, frame_shift(params), f0.shape[1])
    real = np.arange(f0.shape[1]) < n_real[:, None]
    voiced = real & (f0 > 0)
    k = voiced.sum(axis=1)
    # voiced log-F0s first, in order; the rest (inf while sorting, then 0) never counted
    s = np.sort(np.where(voiced, np.log(np.where(voiced, f0, 1.0)), np.inf), axis=1)
    s[~np.isfinite(s)] = 0.0
    k1 = np.maximum(k, 1)
    _, std = masked_mean_std(s, k1, axis=1)
    stats = [_sorted_quantiles(s, k1, q) for q in (0.5, 0.25, 0.75)] + [std]
    none = k == 0
    fill = no_voice_value(params)
    out = np.column_stack([np.where(none, fill if i < 3 else 0.0, x) for i, x in enumerate(stats)]
                          + [k / n_real, none])
    return out.astype(np.float32)
