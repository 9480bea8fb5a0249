"""Feature views: how a model sees a store's features, by name.

    mfcc                   vector  per-chunk mean and std of each MFCC over its frames (2 x 13)
    mfcc-deltas            vector  mean and std of MFCC, delta and delta-delta (6 x 13)
    mfcc-frames            frames  the MFCC frames as stored, [n, 63, 13]
    pitch                  vector  log-F0 median, quartiles, std over voiced frames, voiced
                                   fraction, no-voiced-frame flag (featstore.pitch_stats)
    fbank                  vector  per-chunk mean and std of each Kaldi log-mel bin (2 x 80)
    fbank-frames           frames  the Kaldi log-mel frames as stored, [n, 198, 80]
    dvector, xvector       vector  the stored speaker embedding of each chunk
    <up>:<layers>          vector  pooled mean and std of layer(s) of an upstream <up> (wav2vec2,
                                   or the NAME of a NAME=MODEL feature: hubert:6), concatenated
                                   (2 x D); <layers> is one layer (6), a list (0,6,12), a range
                                   (4-8) or all. Several layers are averaged uniformly, never
                                   concatenated: the unlearned version of SUPERB's layer-weighted
                                   sum. In a config, <up>:each is one view per stored layer.
    <up>:layers            layers  every layer's [mean | std] kept apart, [n, L, 2 x D]: the
                                   input of the layer-weights model (a learned weighted sum)
    <up>-frames:<l>        frames  frame-level states of layer l (build with --frames-layers l)
    audio                  audio   the int16 waveform of each chunk
    <view>+<view>...       vector  vector views side by side, e.g. mfcc+pitch

Vector views are float32. Frame and audio views keep their stored dtype (float16 / int16):
the models convert one batch at a time, so a large array is never copied whole in float32.
mfcc-frames and fbank-frames come as ``models.inputs.Frames``: the frames and each chunk's
number of frames of real audio, so the models (cnn, gmm) ignore a short chunk's padding.
A view the store lacks is a one-line error naming the ``featstore build`` flag that adds it.
Statistics over frames count only the frames of real audio (not a short chunk's zero padding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from featstore.errors import UserError
from featstore.pitch_stats import pitch_stats
from featstore.pooling import deltas, frame_shift, masked_mean_std, valid_frames
from featstore.store.reader import FeatureInfo, Store
from models.inputs import Frames

KINDS = ("vector", "frames", "audio", "layers")
BLOCK = 2048  # rows per read when pooling: bounds the float32 copy of [n, L, D] float16 arrays

# name syntax -> (kind, description), for `bench list` and error messages
CATALOGUE = {
    "mfcc": ("vector", "per-chunk mean and std of each MFCC over frames covering real audio"),
    "mfcc-deltas": ("vector", "mean and std of MFCC, delta and delta-delta (Kaldi deltas, "
                    "window 2)"),
    "mfcc-frames": ("frames", "MFCC frames as stored [n, frames, n_mfcc]"),
    "pitch": ("vector", "median, quartiles and std of log-F0 over voiced frames, voiced "
              "fraction, flag for chunks without a voiced frame"),
    "fbank": ("vector", "per-chunk mean and std of each Kaldi log-mel bin"),
    "fbank-frames": ("frames", "Kaldi log-mel frames as stored [n, frames, bins]"),
    "dvector": ("vector", "Resemblyzer's pretrained GE2E speaker embedding (256)"),
    "xvector": ("vector", "the embedding of the store's *ForXVector checkpoint"),
    "<upstream>:<layer>": ("vector", "pooled mean+std of one layer of wav2vec2 or a NAME=MODEL "
                           "upstream, e.g. wav2vec2:6, hubert:6"),
    "<upstream>:<list|range|all>": ("vector", "uniform average over layers of pooled mean+std, "
                                    "e.g. wav2vec2:0,6,12, hubert:0-4, wavlm:all"),
    "<upstream>:each": ("vector", "config only: one view per stored layer (a layer sweep)"),
    "<upstream>:layers": ("layers", "every stored layer's pooled mean+std kept apart "
                          "[n, layers, 2 x D], for layer-weights"),
    "<upstream>-frames:<layer>": ("frames", "frame-level states of one layer (needs "
                                  "--frames-layers at build)"),
    "audio": ("audio", "int16 waveform of each chunk"),
    "<view>+<view>": ("vector", "vector views side by side, e.g. mfcc+pitch, "
                      "mfcc+pitch+wav2vec2:6"),
}
FRAME_FEATURES = {"mfcc": "mfcc", "mfcc-deltas": "mfcc", "mfcc-frames": "mfcc",
                  "fbank": "fbank", "fbank-frames": "fbank"}


class ViewError(UserError):
    """An unknown view name, or a view the store cannot provide."""


@dataclass(frozen=True)
class View:
    name: str
    kind: str

    def check(self, store: Store) -> None:
        """Raise ViewError if ``store`` cannot provide this view."""
        raise NotImplementedError

    def uses(self) -> tuple[str, ...]:
        """The store features this view reads (its cells' keys hash only these, so adding
        another feature to the store leaves them unchanged)."""
        raise NotImplementedError

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        """The view for store ``rows`` (sorted row indices), in that order."""
        raise NotImplementedError


def _missing(store: Store, view: str, extractor: str, extra: str = "",
             entry: str | None = None) -> ViewError:
    params = store.provenance.get("params", {})
    entries = params.get("entries", {})  # NAME=MODEL features, as given
    built = [entries.get(f, f) for f in params.get("features", [])]
    flag = ",".join(dict.fromkeys([*built, entry or extractor]))
    return ViewError(f"view '{view}': store {store.path} has no {extractor} features: rebuild "
                     f"with `featstore build --features {flag}{extra}`")


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
            raise _missing(store, self.name, self.feature)

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


@dataclass(frozen=True)
class PitchView(View):
    def uses(self) -> tuple[str, ...]:
        return ("pitch/f0",)

    def check(self, store: Store) -> None:
        if "pitch/f0" not in store.features:
            raise _missing(store, self.name, "pitch")

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        n_samples = store.meta["n_samples"].to_numpy()[rows]
        params = store.features["pitch/f0"].params
        return pitch_stats(store.load("pitch/f0", rows), n_samples, params)


@dataclass(frozen=True)
class ConcatView(View):
    parts: tuple[View, ...] = ()

    def uses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for p in self.parts for n in p.uses()))

    def check(self, store: Store) -> None:
        for part in self.parts:
            part.check(store)

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return np.concatenate([p.load(store, rows) for p in self.parts], axis=1)


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
            raise _missing(store, self.name, self.feature, entry=_entry(self.feature))
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
            raise _missing(store, self.name, self.feature, f" --frames-layers {self.layer}",
                           _entry(self.feature))
        raise ViewError(f"view '{self.name}': store {store.path} has no frame-level states of "
                        f"layer {self.layer} (stored frame layers: "
                        f"{', '.join(map(str, stored)) or 'none'}): rebuild with "
                        f"`featstore build ... --frames-layers {self.layer}`")

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return store.load(f"{self.feature}/frames/{self.layer}", rows)


@dataclass(frozen=True)
class EmbeddingView(View):
    """A stored per-chunk embedding as it is (dvector, xvector)."""

    def uses(self) -> tuple[str, ...]:
        return (self.name,)

    def check(self, store: Store) -> None:
        if self.name not in store.features:
            entry = "xvector=MODEL" if self.name == "xvector" else None
            raise _missing(store, self.name, self.name, entry=entry)

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return store.load(self.name, rows).astype(np.float32, copy=False)


# compatibility names
Wav2Vec2View, Wav2Vec2FramesView = UpstreamView, UpstreamFramesView


@dataclass(frozen=True)
class AudioView(View):
    def uses(self) -> tuple[str, ...]:
        return ("audio",)

    def check(self, store: Store) -> None:
        if "audio" not in store.features:
            raise _missing(store, self.name, "audio")

    def load(self, store: Store, rows: np.ndarray) -> np.ndarray:
        return store.load("audio", rows)


_LAYER_SPEC = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_layers(text: str) -> tuple[int, ...] | None:
    """'6' -> (6,), '0,6,12' -> (0, 6, 12), '4-8' -> (4, ..., 8), 'all' -> None."""
    if text == "all":
        return None
    if not _LAYER_SPEC.match(text):
        raise ValueError(text)
    layers: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            raise ValueError(text)
        layers.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(dict.fromkeys(layers))


VALID = ("mfcc, mfcc-deltas, mfcc-frames, pitch, fbank, fbank-frames, dvector, xvector, "
         "<upstream>:<layer|list|range|all|layers> for wav2vec2 or a NAME=MODEL upstream "
         "(e.g. wav2vec2:6, hubert:0,6,12, wavlm:4-8, hubert:all, hubert:layers), "
         "<upstream>-frames:<layer>, audio, and vector views joined with + (e.g. mfcc+pitch)")
EMBEDDINGS = ("dvector", "xvector")
BUILT_IN = ("mfcc", "mfcc-deltas", "pitch", "fbank", "audio", *EMBEDDINGS)
UPSTREAM = re.compile(r"^[a-z][a-z0-9_]*$")  # featstore.extractors.upstream.NAME


def parse_view(name: str) -> View:
    """The view called ``name``; ViewError (listing the valid names) if there is none."""
    if not isinstance(name, str):
        raise ViewError(f"a feature view name must be a string, got {name!r}")
    if "+" in name:
        return _parse_concat(name)
    if name in FRAME_FEATURES:
        return FrameFeatureView(name, CATALOGUE[name][0], feature=FRAME_FEATURES[name],
                                frames=name.endswith("-frames"), deltas=name == "mfcc-deltas")
    if name == "pitch":
        return PitchView(name, "vector")
    if name == "audio":
        return AudioView(name, "audio")
    if name in EMBEDDINGS:
        return EmbeddingView(name, "vector")
    head, sep, arg = name.partition(":")
    feature = head.removesuffix("-frames")
    try:
        if sep and UPSTREAM.match(feature) and feature not in BUILT_IN:
            if head.endswith("-frames") and arg.isdigit():
                return UpstreamFramesView(name, "frames", feature=feature, layer=int(arg))
            if arg == "each":  # expanded against the store by bench.plan (expand)
                return UpstreamView(name, "vector", feature=feature)
            if arg == "layers":
                return UpstreamView(name, "layers", feature=feature, stack=True)
            if not head.endswith("-frames"):
                return UpstreamView(name, "vector", feature=feature, layers=parse_layers(arg))
    except ValueError:
        pass
    raise ViewError(f"unknown feature view '{name}'; valid views: {VALID}")


def _parse_concat(name: str) -> ConcatView:
    names = name.split("+")
    if "" in names:
        raise ViewError(f"feature view '{name}': an empty part around '+'")
    if len(set(names)) < len(names):
        raise ViewError(f"feature view '{name}' names a view twice")
    parts = tuple(parse_view(n) for n in names)
    for part in parts:
        if part.kind != "vector":
            raise ViewError(f"feature view '{name}': '+' joins vector views only, and "
                            f"'{part.name}' is {part.kind}")
    return ConcatView(name, "vector", parts=parts)


def split_names(text: str) -> list[str]:
    """A comma list of view names; a bare number or range continues the previous name's layer
    list, so 'mfcc,wav2vec2:0,6,12' is ['mfcc', 'wav2vec2:0,6,12'] and 'wav2vec2:0,6+pitch'
    is one name."""
    out: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if out and re.fullmatch(r"\d+(-\d+)?(\+.*)?", token) and ":" in out[-1].split("+")[-1]:
            out[-1] += "," + token
        else:
            out.append(token)
    return out


def store_views(store: Store) -> list[str]:
    """The concrete view names ``store`` can provide (each stored wav2vec2 layer, and all);
    any vector views among them can be joined with +."""
    names = ["mfcc", "mfcc-deltas", "mfcc-frames"] if "mfcc" in store.features else []
    names += ["pitch"] if "pitch/f0" in store.features else []
    names += ["fbank", "fbank-frames"] if "fbank" in store.features else []
    names += [e for e in EMBEDDINGS if e in store.features]
    for feature in upstreams(store):
        layers = store.features[f"{feature}/mean"].params.get("layers", [])
        names += [f"{feature}:{layer}" for layer in layers] + [f"{feature}:all",
                                                               f"{feature}:layers"]
        names += sorted((f"{feature}-frames:{n.rsplit('/', 1)[1]}" for n in store.features
                         if n.startswith(f"{feature}/frames/")), key=lambda s: int(s.split(":")[1]))
    return names + (["audio"] if "audio" in store.features else [])


def upstreams(store: Store) -> list[str]:
    """The self-supervised features a store holds (wav2vec2 and NAME=MODEL ones)."""
    return [n.split("/")[0] for n in store.features if n.count("/") == 1 and n.endswith("/mean")]


def expand(name: str, store: Store) -> list[str]:
    """A config's view name as concrete views: ``NAME:each`` is one view per layer the store
    holds of NAME (a layer sweep); any other name, or NAME:each when the store lacks NAME (its
    check then says why), is itself."""
    feature, sep, arg = name.partition(":")
    if not sep or arg != "each" or f"{feature}/mean" not in store.features:
        return [name]
    return [f"{feature}:{layer}"
            for layer in store.features[f"{feature}/mean"].params.get("layers", [])]
