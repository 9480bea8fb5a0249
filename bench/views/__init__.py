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

Layout: ``base`` (the View contract, ViewError, joined views), ``frames`` (mfcc, fbank),
``pitch``, ``stored`` (embeddings, audio), ``upstream`` (wav2vec2 and NAME=MODEL layers),
``names`` (the catalogue and name parsing), ``available`` (what a given store offers).
"""

from __future__ import annotations

from bench.views.available import expand, store_views, upstreams
from bench.views.base import BLOCK, KINDS, ConcatView, View, ViewError
from bench.views.frames import FrameFeatureView, real_frames
from bench.views.names import (
    BUILT_IN,
    CATALOGUE,
    EMBEDDINGS,
    FRAME_FEATURES,
    UPSTREAM,
    VALID,
    parse_layers,
    parse_view,
    split_names,
)
from bench.views.pitch import PitchView
from bench.views.stored import AudioView, EmbeddingView
from bench.views.upstream import (
    UpstreamFramesView,
    UpstreamView,
    Wav2Vec2FramesView,
    Wav2Vec2View,
)

__all__ = [
    "BLOCK", "BUILT_IN", "CATALOGUE", "EMBEDDINGS", "FRAME_FEATURES", "KINDS", "UPSTREAM",
    "VALID", "AudioView", "ConcatView", "EmbeddingView", "FrameFeatureView", "PitchView",
    "UpstreamFramesView", "UpstreamView", "View", "ViewError", "Wav2Vec2FramesView",
    "Wav2Vec2View", "expand", "parse_layers", "parse_view", "real_frames", "split_names",
    "store_views", "upstreams",
]
