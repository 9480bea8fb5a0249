"""Views that pass a stored per-chunk array through as it is: speaker embeddings (dvector,
xvector) and the waveform (audio)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.views.base import View, missing_feature
from featstore.store.reader import Store


@dataclass(frozen=True)
class EmbeddingView(View):
    """A stored per-chunk embedding as it is (dvector, xvector)."""

    def uses(self) -> tuple[str, ...]:
        return (self.name,)

    def check(self, store: Store) -> None:
        if self.name not in store.features:
            entry = "xvector=MODEL" if self.name == "xvector" else None
            raise missing_feature(store, self.name, self.name, entry=entry)

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return store.load(self.name, rows).astype(np.float32, copy=False)


@dataclass(frozen=True)
class AudioView(View):
    def uses(self) -> tuple[str, ...]:
        return ("audio",)

    def check(self, store: Store) -> None:
        if "audio" not in store.features:
            raise missing_feature(store, self.name, "audio")

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return store.load("audio", rows)
