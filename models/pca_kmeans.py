"""Clustering: standardise, PCA, then k-means; plus a 2-D PCA scatter of the result."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from featstore.standardize import Standardizer

from .base import Clusterer
from .inputs import as_vectors
from .params import check_positive
from .registry import ModelSpec, register


class PCAKMeans(Clusterer):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive("pca-kmeans", params, "pca_components", "n_init", "max_iter")
        super().__init__(params, seed=seed, device=device)  # sklearn: always runs on the CPU

    def fit_predict(self, X: Any, n_clusters: int) -> np.ndarray:
        if (
            isinstance(n_clusters, bool)
            or not isinstance(n_clusters, (int, np.integer))
            or n_clusters < 1
        ):
            raise ValueError(f"n_clusters must be a positive int, got {n_clusters!r}")
        X = as_vectors(X, np.float64)
        if n_clusters > len(X):
            raise ValueError(f"n_clusters={n_clusters} is more than the {len(X)} samples")
        p = self.params
        self.scaler_ = Standardizer.fit(X)
        if not p["standardize"]:  # centre only
            self.scaler_ = Standardizer(self.scaler_.mean, np.ones_like(self.scaler_.scale))
        Xs = self.scaler_.transform(X)
        # at least 2 components so the plot always has two axes (when the data allow it)
        n_comp = min(max(p["pca_components"], 2), X.shape[1], len(X))
        self.pca_ = PCA(n_components=n_comp, random_state=self.seed).fit(Xs)
        Z = self.pca_.transform(Xs)
        self.kmeans_ = KMeans(
            n_clusters=int(n_clusters),
            n_init=p["n_init"],
            max_iter=p["max_iter"],
            random_state=self.seed,
        ).fit(Z)
        evr = self.pca_.explained_variance_ratio_
        self._info = {
            "n_clusters": int(n_clusters),
            "pca_components": n_comp,
            "explained_variance": float(evr.sum()),
            "explained_variance_2d": float(evr[:2].sum()),
            "inertia": float(self.kmeans_.inertia_),
            "kmeans_iterations": int(self.kmeans_.n_iter_),
        }
        return self.kmeans_.labels_.copy()

    def transform(self, X: Any) -> np.ndarray:
        """The first two principal components. PCA components are ordered, so these are the
        same axes a 2-component PCA would give, and the clustering space projects onto them."""
        if not hasattr(self, "pca_"):
            raise RuntimeError("PCAKMeans is not fitted; call fit_predict() first")
        Z = self.pca_.transform(self.scaler_.transform(as_vectors(X, np.float64)))
        return Z[:, :2] if Z.shape[1] >= 2 else np.pad(Z, ((0, 0), (0, 2 - Z.shape[1])))

    def plot(self, X: Any, y_true: Any, path: str | os.PathLike) -> None:
        """PNG scatter of ``transform(X)`` coloured by true label, cluster centroids marked."""
        # Figure + Agg canvas directly: no pyplot global state, no backend switch
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        Z = self.transform(X)
        y_true = np.asarray(y_true)
        if len(y_true) != len(Z):
            raise ValueError(f"y_true has {len(y_true)} labels for {len(Z)} rows")
        centres = self.kmeans_.cluster_centers_[:, :2]
        if centres.shape[1] < 2:
            centres = np.pad(centres, ((0, 0), (0, 2 - centres.shape[1])))
        fig = Figure(figsize=(7, 6), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for label in np.unique(y_true):
            sel = y_true == label
            ax.scatter(Z[sel, 0], Z[sel, 1], s=8, alpha=0.6, label=str(label))
        ax.scatter(
            centres[:, 0],
            centres[:, 1],
            marker="X",
            s=180,
            c="black",
            edgecolors="white",
            label="centroids",
        )
        for i, (cx, cy) in enumerate(centres):
            ax.annotate(
                str(i),
                (cx, cy),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=9,
                weight="bold",
            )
        evr = self.pca_.explained_variance_ratio_
        ax.set_xlabel(f"PC1 ({evr[0]:.1%})")
        ax.set_ylabel(f"PC2 ({evr[1]:.1%})" if len(evr) > 1 else "PC2")
        ax.set_title(f"PCA + k-means (k={len(centres)}), coloured by true label")
        ax.legend(loc="best", fontsize=8, markerscale=1.5)
        fig.tight_layout()
        fig.savefig(os.fspath(path), format="png")


register(
    ModelSpec(
        name="pca-kmeans",
        uses_gpu=False,
        kind="clusterer",
        inputs=("vector",),
        defaults={"pca_components": 10, "n_init": 10, "max_iter": 300, "standardize": True},
        factory=PCAKMeans,
        description="Clusterer: standardise, PCA, k-means; 2-D PCA scatter plot.",
    )
)
