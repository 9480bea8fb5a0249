"""One Gaussian mixture per class, on frames or on vectors.

On frames, each class's mixture is fitted on all valid frames of that class's training chunks
and a chunk is scored by the mean log-likelihood of its valid frames (the classic GMM speaker /
gender recogniser); the zero padding of a short chunk (:class:`models.inputs.Frames`) is never
fitted or scored. A vector is treated as a chunk of one frame, so both inputs share one path; a
high-dimensional input (pooled wav2vec2: 1,536 numbers) is first projected by PCA to
``pca_components`` dimensions, so that a few diagonal components per class are estimable from
a few dozen chunks.

scikit-learn's GaussianMixture takes no sample weights: weights are honoured by drawing each
class's training frames with probability proportional to their row's weight (with
replacement, the same number of frames), which is EM with integer weights in expectation.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from featstore.standardize import Standardizer

from .base import Classifier, softmax
from .inputs import Frames, as_frames
from .params import check_choice, check_positive
from .registry import ModelSpec, register

COVARIANCE_TYPES = ("diag", "full", "tied", "spherical")
# EM on a few thousand 13-32-dimensional frames multiplies small matrices: a second BLAS thread
# only waits, and on a loaded 2-core machine it made a fit ~5-10x slower (docs/speed-bench.md)
BLAS_THREADS = 1


class GMMClassifier(Classifier):
    def __init__(self, params: dict, *, seed: int, device: str) -> None:
        check_positive("gmm", params, "n_components", "max_iter", "n_init", "max_frames_per_class",
                       "pca_components")
        check_positive("gmm", params, "reg_covar", allow_zero=True)
        check_choice("gmm", params, "covariance_type", COVARIANCE_TYPES)
        super().__init__(params, seed=seed, device=device)  # sklearn: always runs on the CPU

    @staticmethod
    def _as_chunks(X: Any) -> Frames:
        """Frames as they are; a vector is a chunk of one valid frame."""
        if isinstance(X, Frames) or np.ndim(X) == 3:
            return as_frames(X)
        X = np.asarray(X)
        if X.ndim == 2:
            return Frames(X[:, None, :], np.ones(len(X), dtype=np.int64))
        raise ValueError(f"expected vectors [n, d] or frames [n, T, d], got shape {X.shape}")

    def _fit(self, X: Any, y: np.ndarray, w: np.ndarray, X_val: Any, y_val: np.ndarray | None,
             w_val: np.ndarray | None) -> None:
        with threadpool_limits(BLAS_THREADS):
            self._fit_mixtures(X, y, w)
        self._record_val_accuracy(X_val, y_val, w_val)

    def _fit_mixtures(self, X: Any, y: np.ndarray, w: np.ndarray) -> None:
        p = self.params
        self.input_ndim_ = np.ndim(X)
        X = self._as_chunks(X)
        # the valid frames of every chunk, each with its chunk's label and weight: padding is
        # neither fitted nor standardised over
        frames_all = X.data[X.mask()]
        y_f, w_f = np.repeat(y, X.lengths), np.repeat(w, X.lengths)
        self.scaler_ = Standardizer.fit(frames_all, w_f)  # training data only
        self.pca_ = None
        d = X.shape[2]
        if p["pca_components"] < d:
            rows = self.scaler_.transform(frames_all)
            k = min(p["pca_components"], len(rows))
            self.pca_ = PCA(n_components=k, random_state=self.seed).fit(rows)
            self._info["pca_explained_variance"] = float(self.pca_.explained_variance_ratio_.sum())
        rng = np.random.default_rng(self.seed)
        weighted = not np.allclose(w, w[0])
        self.gmms_: list[GaussianMixture] = []
        per_class: dict[str, Any] = {}
        for code, label in enumerate(self.classes_):
            frames = frames_all[y_f == code]
            n = min(len(frames), p["max_frames_per_class"])  # bounds EM cost on frame features
            if weighted:
                prob = w_f[y_f == code]
                keep = np.sort(rng.choice(len(frames), n, replace=True, p=prob / prob.sum()))
                frames = frames[keep]
            elif n < len(frames):
                frames = frames[np.sort(rng.choice(len(frames), n, replace=False))]
            frames = self._project(frames)
            if len(frames) == 1:  # one sample: one component of variance reg_covar around it
                frames = np.repeat(frames, 2, axis=0)
            # a class with fewer samples than components gets fewer components
            k = min(p["n_components"], len(frames))
            gmm = GaussianMixture(
                n_components=k,
                covariance_type=p["covariance_type"],
                reg_covar=p["reg_covar"],
                max_iter=p["max_iter"],
                n_init=p["n_init"],
                random_state=self.seed,
            )
            # weighted draws repeat rows, so k-means initialisation may find fewer distinct
            # points than components: harmless here, and convergence is recorded in info()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(frames)
            self.gmms_.append(gmm)
            per_class[str(label)] = {
                "n_components": k,
                "n_frames": len(frames),
                "converged": bool(gmm.converged_),
            }
        self._info["per_class"] = per_class
        self._info["dimensions"] = d if self.pca_ is None else self.pca_.n_components_

    def _project(self, frames: np.ndarray) -> np.ndarray:
        z = self.scaler_.transform(frames)
        return z if self.pca_ is None else self.pca_.transform(z).astype(np.float32)

    def mean_log_likelihood(self, X: Any, chunk: int = 256) -> np.ndarray:
        """[n, n_classes]: each chunk's mean log-likelihood over its valid frames under each
        class's GMM."""
        self._check_fitted()
        if np.ndim(X) != self.input_ndim_:
            raise ValueError(f"fitted on {self.input_ndim_}-D input, got shape {np.shape(X)}")
        X = self._as_chunks(X)
        out = np.empty((len(X), len(self.gmms_)))
        with threadpool_limits(BLAS_THREADS):
            self._score_into(out, X, chunk)
        return out

    def _score_into(self, out: np.ndarray, X: Frames, chunk: int) -> None:
        for i in range(0, len(X), chunk):  # bounded memory on long frame arrays
            part = X[np.arange(i, min(i + chunk, len(X)))]
            frames = self._project(part.data[part.mask()])
            starts = np.concatenate([[0], np.cumsum(part.lengths)[:-1]])
            for c, gmm in enumerate(self.gmms_):
                ll = gmm.score_samples(frames)
                out[i : i + len(part), c] = np.add.reduceat(ll, starts) / part.lengths

    def predict_proba(self, X: Any) -> np.ndarray:
        return softmax(self.mean_log_likelihood(X))


register(
    ModelSpec(
        name="gmm",
        uses_gpu=False,
        kind="classifier",
        inputs=("frames", "vector"),
        defaults={
            "n_components": 8,
            "covariance_type": "diag",
            "reg_covar": 1e-3,
            "max_iter": 200,
            "n_init": 1,
            "max_frames_per_class": 100_000,
            "pca_components": 32,
        },
        factory=GMMClassifier,
        description="One Gaussian mixture per class; frames scored by mean log-likelihood; "
                    "PCA first on wide inputs.",
        search={"n_components": (1, 2, 4, 8)},
    )
)
