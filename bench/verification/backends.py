"""Scoring backends: fitted on the training speakers' utterance embeddings only, then cosine
scoring of trial pairs. Chosen by name in a verification grid entry's ``models:``.

    cosine       standardise (mean / std of the training embeddings), length-normalise, cosine
    lda-cosine   standardise, LDA on the training speakers to min(200, speakers - 1, dim)
                 dimensions (shrinkage covariance, so 1,536-d wav2vec2 vectors with a few dozen
                 speakers stay well posed), length-normalise, cosine

Cosine after standardisation is SUPERB's ASV scoring; LDA + cosine is the classic i-vector /
x-vector backend short of PLDA (VoxCeleb baselines use LDA 200 before PLDA).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.config_values import ConfigError
from featstore.standardize import Standardizer

LDA_DIM = 200


def _unit(X: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norm, 1e-12)


class Cosine:
    def fit(self, X: np.ndarray, speakers: np.ndarray) -> Cosine:
        self.scaler_ = Standardizer.fit(X)
        return self

    def embed(self, X: np.ndarray) -> np.ndarray:
        return _unit(self.scaler_.transform(X).astype(np.float64))

    def info(self) -> dict:
        return {"dim": int(len(self.scaler_.mean))}


class LdaCosine(Cosine):
    def fit(self, X: np.ndarray, speakers: np.ndarray) -> LdaCosine:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        super().fit(X, speakers)
        ids, counts = np.unique(speakers, return_counts=True)
        if (counts < 2).all():
            raise ValueError("lda-cosine needs training speakers with 2 or more utterances (LDA "
                             "learns the within-speaker variation); every training speaker "
                             "here has one: use cosine")
        n_speakers = len(ids)
        self.dim_ = int(min(LDA_DIM, n_speakers - 1, X.shape[1]))
        self.lda_ = LinearDiscriminantAnalysis(n_components=self.dim_, solver="eigen",
                                               shrinkage="auto")
        with warnings.catch_warnings():  # "only one sample": single-utterance speakers
            warnings.simplefilter("ignore", UserWarning)
            self.lda_.fit(self.scaler_.transform(X), speakers)
        return self

    def embed(self, X: np.ndarray) -> np.ndarray:
        return _unit(self.lda_.transform(self.scaler_.transform(X)).astype(np.float64))

    def info(self) -> dict:
        return {"dim": self.dim_, "input_dim": int(len(self.scaler_.mean))}


@dataclass(frozen=True)
class Backend:
    name: str
    factory: Callable[[], Cosine]
    description: str


BACKENDS = {b.name: b for b in (
    Backend("cosine", Cosine, "standardise + length norm + cosine (SUPERB ASV scoring)"),
    Backend("lda-cosine", LdaCosine, f"standardise + LDA (<= {LDA_DIM} dims, trained on the "
            "training speakers) + length norm + cosine"),
)}


def cosine_scores(E: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of the unit-length rows ``E[a]`` and ``E[b]``, pair by pair."""
    return np.einsum("ij,ij->i", E[a], E[b])


def backend_entry(features: list, names: list, views: dict, body: dict, where: str) -> dict:
    """Check a verification grid entry (config key ``where``): backends by name on vector
    views (one embedding per utterance: the mean of its chunk vectors); its search grids."""
    for name in names:
        if name not in BACKENDS:
            raise ConfigError(f"{where}.models: unknown verification backend {name!r}; valid "
                              f"backends: {', '.join(BACKENDS)}")
    for view in views.values():
        if view.kind != "vector":
            raise ConfigError(f"{where}: verification embeds each utterance as the mean of "
                              f"its chunk vectors; view '{view.name}' is {view.kind}, not vector")
    if body.get("search"):
        raise ConfigError(f"{where}.search: verification backends have no search grid")
    return {}  # the entry's search grids: none
