"""Views of a frame-level feature (mfcc, fbank): the frames as stored, or pooled per chunk
over the frames of real audio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.views.base import BLOCK, View, missing_feature
from featstore.pooling import deltas, frame_shift, masked_mean_std, valid_frames
from featstore.store.reader import FeatureInfo, Store
from models.inputs import Frames


def real_frames(info: FeatureInfo, n_samples: np.ndarray, n_frames: int) -> np.ndarray:
    """Frames of real audio per chunk. Kaldi's snip-edges frames (fbank): those that fit the
    real samples, i.e. the frames Kaldi computes on the unpadded audio; centred frames (MFCC):
    those whose centre lies in real audio, as the wav2vec2 pooling counts."""
    p = info.params
    if p.get("snip_edges"):
        n = 1 + (np.asarray(n_samples, np.int64) - p["frame_length"]) // p["frame_shift"]
        return np.clip(n, 1, n_frames)
    return valid_frames(n_samples, frame_shift(p), n_frames)


@dataclass(frozen=True)
class FrameFeatureView(View):
    """A frame-level feature (mfcc, fbank) as stored, or pooled: mean and std per chunk, with
    delta and delta-delta for ``deltas``."""

    feature: str = "mfcc"
    frames: bool = False
    deltas: bool = False

    def uses(self) -> tuple[str, ...]:
        return (self.feature,)

    def check(self, store: Store) -> None:
        if self.feature not in store.features:
            raise missing_feature(store, self.name, self.feature)

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray | Frames:
        info = store.features[self.feature]
        n_samples = store.meta["n_samples"].to_numpy()
        if self.frames:  # with each chunk's count of real-audio frames: models skip the padding
            X = store.load(self.feature, rows)
            return Frames(X, real_frames(info, n_samples[rows], X.shape[1]))
        return np.concatenate([self._pool(store.load(self.feature, part), info, n_samples[part])
                               for part in np.array_split(rows, max(1, -(-len(rows) // BLOCK)))])

    def _pool(self, X: np.ndarray, info: FeatureInfo, n_samples: np.ndarray) -> np.ndarray:
        # Pool over frames of real audio only: the zero padding of an utterance's last chunk
        # would otherwise shift its statistics.
        X = X.astype(np.float32, copy=False)
        k = real_frames(info, n_samples, X.shape[1])
        parts = [X]
        if self.deltas:
            parts.append(deltas(X, k))
            parts.append(deltas(parts[-1], k))
        stats = [masked_mean_std(x, k, axis=1) for x in parts]  # float32 sums, float64 division
        return np.concatenate([s for pair in stats for s in pair], axis=1).astype(np.float32)
