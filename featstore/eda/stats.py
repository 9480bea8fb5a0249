"""EDA statistics: plain functions on numpy arrays and DataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from featstore.pooling import masked_mean_std, valid_frames
from featstore.standardize import Standardizer

if TYPE_CHECKING:
    import pandas as pd

    from featstore.store.reader import Store

GENDERS = ("F", "M", "U")

__all__ = ["valid_frames"]


def subsample_rows(n: int, max_chunks: int, seed: int) -> np.ndarray:
    """Sorted row indices: all ``n`` rows, or ``max_chunks`` of them drawn without replacement."""
    if n <= max_chunks:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_chunks, replace=False))


def chunk_mean_std(mfcc: np.ndarray, n_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk mean and population std over time of [chunks, frames, coefs] in float64,
    ignoring zero-padded frames (``featstore.pooling.masked_mean_std``)."""
    return masked_mean_std(np.asarray(mfcc, dtype=np.float64), n_valid, axis=1)


def cohens_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Standardised difference (mean(a) - mean(b)) / pooled sd, per column; NaN if undefined."""
    a, b = np.atleast_2d(np.asarray(a, float).T).T, np.atleast_2d(np.asarray(b, float).T).T
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return np.full(a.shape[1], np.nan)
    pooled = ((na - 1) * a.var(axis=0, ddof=1) + (nb - 1) * b.var(axis=0, ddof=1)) / (na + nb - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(pooled)


def gender_table(means: np.ndarray, genders: np.ndarray, speakers: np.ndarray) -> pd.DataFrame:
    """Per coefficient: mean/std per gender, Cohen's d (F - M) over chunks and over speakers.

    Chunks of one speaker are not independent, so d over per-speaker averages is given too."""
    import pandas as pd

    table = pd.DataFrame({"coef": [f"c{i}" for i in range(means.shape[1])]})
    for g in GENDERS:
        sel = genders == g
        if sel.any():
            table[f"{g} mean"] = means[sel].mean(axis=0)
            table[f"{g} std"] = means[sel].std(axis=0, ddof=1) if sel.sum() > 1 else np.nan
    f, m = genders == "F", genders == "M"
    table["d (F-M, chunks)"] = cohens_d(means[f], means[m])
    per_spk = pd.DataFrame(means).groupby([genders, speakers]).mean()
    spk_g = per_spk.index.get_level_values(0)
    table["d (F-M, speakers)"] = cohens_d(per_spk.to_numpy()[spk_g == "F"],
                                          per_spk.to_numpy()[spk_g == "M"])
    return table


def count_outliers(x: np.ndarray, z_thresh: float = 3.0, iqr_k: float = 1.5) -> pd.DataFrame:
    """Per column of [n, coefs]: rows with |z| > z_thresh (population sd) and rows outside
    [Q1 - k IQR, Q3 + k IQR] (linearly interpolated quartiles)."""
    import pandas as pd
    x = np.asarray(x, dtype=np.float64)
    z = Standardizer.fit(x).transform(x)  # a constant column: all z = 0
    q1, q3 = np.percentile(x, [25, 75], axis=0)
    iqr = q3 - q1
    iqr_out = (x < q1 - iqr_k * iqr) | (x > q3 + iqr_k * iqr)
    return pd.DataFrame({
        "coef": [f"c{i}" for i in range(x.shape[1])],
        "z-score outliers": (np.abs(z) > z_thresh).sum(axis=0),
        "IQR outliers": iqr_out.sum(axis=0),
    })


def pca_embed(vectors: np.ndarray, n_components: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Standardise columns, fit PCA; returns (first two component scores, explained ratios)."""
    from sklearn.decomposition import PCA
    k = max(1, min(n_components, *vectors.shape))
    pca = PCA(n_components=k, random_state=0)
    scores = pca.fit_transform(Standardizer.fit(vectors).transform(vectors))
    if k < 2:  # one chunk or one column: pad so the scatter still has a y axis
        scores = np.column_stack([scores, np.zeros(len(scores))])
    return scores[:, :2], pca.explained_variance_ratio_


def pick_utterance(meta: pd.DataFrame, gender: str, seed: int) -> str | None:
    """One utterance of ``gender``, chosen reproducibly from ``seed`` (None if there is none)."""
    ids = np.sort(meta.loc[meta["gender"] == gender, "utterance_id"].unique())
    if not len(ids):
        return None
    return str(ids[np.random.default_rng(seed).integers(len(ids))])


def utterance_mfcc(store: Store, utterance_id: str, hop_length: int) -> tuple[np.ndarray, int]:
    """All chunks of an utterance concatenated in time: ([coefs, frames] with padding dropped,
    number of real samples covered)."""
    meta = store.meta
    rows = meta.index[meta["utterance_id"] == utterance_id].to_numpy()
    rows = rows[np.argsort(meta.loc[rows, "start_sample"].to_numpy(), kind="stable")]
    mfcc = store.load("mfcc", rows)
    n_valid = valid_frames(meta.loc[rows, "n_samples"].to_numpy(), hop_length, mfcc.shape[1])
    mat = np.concatenate([m[:v] for m, v in zip(mfcc, n_valid, strict=True)]).T
    return mat, int(meta.loc[rows, "n_samples"].sum())
