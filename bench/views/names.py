"""The view names: the catalogue ``bench list`` prints, and parsing a name (or a command-line
list of names) into its view."""

from __future__ import annotations

import re

from bench.views.base import ConcatView, View, ViewError
from bench.views.frames import FrameFeatureView
from bench.views.pitch import PitchView
from bench.views.stored import AudioView, EmbeddingView
from bench.views.upstream import UpstreamFramesView, UpstreamView

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
