"""Views of a self-supervised upstream (wav2vec2, or a NAME=MODEL feature such as hubert):
pooled layers averaged or stacked, and one layer's frame-level states."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.views.base import BLOCK, View, ViewError, missing_feature
from featstore.store.reader import Store


def _entry(feature: str) -> str:
    return feature if feature == "wav2vec2" else f"{feature}=MODEL"


@dataclass(frozen=True)
class UpstreamView(View):
    """Pooled states of a self-supervised upstream stored as ``feature`` (wav2vec2, hubert...):
    vector = the uniform average over ``layers`` of [mean | std]; ``stack`` (kind "layers") =
    each layer's [mean | std] kept apart, [n, layers, 2 x D]."""

    feature: str = "wav2vec2"
    layers: tuple[int, ...] | None = None  # None: every stored layer
    stack: bool = False

    def uses(self) -> tuple[str, ...]:
        return (f"{self.feature}/mean", f"{self.feature}/std")

    def _positions(self, store: Store) -> list[int]:
        if f"{self.feature}/mean" not in store.features:
            raise missing_feature(store, self.name, self.feature,
                                  entry=_entry(self.feature))
        stored = list(store.features[f"{self.feature}/mean"].params.get("layers", []))
        if self.layers is None:
            return list(range(len(stored)))
        absent = [layer for layer in self.layers if layer not in stored]
        if absent:
            raise ViewError(f"view '{self.name}': layer(s) {', '.join(map(str, absent))} not in "
                            f"the store; stored layers: {', '.join(map(str, stored))} (rebuild "
                            "with `featstore build --layers ...` to keep others)")
        return [stored.index(layer) for layer in self.layers]

    def check(self, store: Store) -> None:
        self._positions(store)

    def stored_layers(self, store: Store) -> list[int]:
        stored = store.features[f"{self.feature}/mean"].params.get("layers", [])
        return [stored[i] for i in self._positions(store)]

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        pos = self._positions(store)  # a ViewError for layers the store lacks
        dim = store.features[f"{self.feature}/mean"].shape[-1]
        shape = (len(rows), len(pos), 2 * dim) if self.stack else (len(rows), 2 * dim)
        out = np.empty(shape, dtype=np.float32)
        for i in range(0, len(rows), BLOCK):
            part = rows[i : i + BLOCK]
            # the mean over layers of [mean | std] is [mean over layers | std over layers];
            # only the chosen layers are read (each layer is its own column of HDF5 chunks)
            for j, stat in enumerate(("mean", "std")):
                block = store.load(f"{self.feature}/{stat}", part,
                                   layers=self.layers).astype(np.float32)
                if self.stack:
                    out[i : i + BLOCK, :, j * dim : (j + 1) * dim] = block
                else:
                    out[i : i + BLOCK, j * dim : (j + 1) * dim] = block.mean(axis=1)
        return out


@dataclass(frozen=True)
class UpstreamFramesView(View):
    feature: str = "wav2vec2"
    layer: int = 0

    def uses(self) -> tuple[str, ...]:
        return (f"{self.feature}/frames/{self.layer}",)

    def check(self, store: Store) -> None:
        if f"{self.feature}/frames/{self.layer}" in store.features:
            return
        stored = sorted(int(n.rsplit("/", 1)[1]) for n in store.features
                        if n.startswith(f"{self.feature}/frames/"))
        if f"{self.feature}/mean" not in store.features:
            raise missing_feature(store, self.name, self.feature,
                                  f" --frames-layers {self.layer}", _entry(self.feature))
        raise ViewError(f"view '{self.name}': store {store.path} has no frame-level states of "
                        f"layer {self.layer} (stored frame layers: "
                        f"{', '.join(map(str, stored)) or 'none'}): rebuild with "
                        f"`featstore build ... --frames-layers {self.layer}`")

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return store.load(f"{self.feature}/frames/{self.layer}", rows)


# compatibility names
Wav2Vec2View, Wav2Vec2FramesView = UpstreamView, UpstreamFramesView
