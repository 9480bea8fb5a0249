"""The pitch view: per-chunk log-F0 statistics of the stored pitch track
(the statistics themselves: featstore.pitch_stats)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.views.base import View, missing_feature
from featstore.pitch_stats import pitch_stats
from featstore.store.reader import Store


@dataclass(frozen=True)
class PitchView(View):
    def uses(self) -> tuple[str, ...]:
        return ("pitch/f0",)

    def check(self, store: Store) -> None:
        if "pitch/f0" not in store.features:
            raise missing_feature(store, self.name, "pitch")

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        n_samples = store.meta["n_samples"].to_numpy()[rows]
        params = store.features["pitch/f0"].params
        return pitch_stats(store.load("pitch/f0", rows), n_samples, params)
