"""bench views over pitch, fbank and MFCC deltas, and '+' concatenation: hand-checked
statistics, padding ignored, the build flag named when a store lacks a feature."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import featstore
from bench.views import ViewError, parse_view, real_frames, split_names, store_views
from featstore.pitch_stats import COLUMNS, pitch_stats
from featstore.pooling import deltas

PARAMS = {"hop_length": 160, "f0_min": 50.0, "f0_max": 500.0}


def test_pitch_stats_by_hand():
    f0 = np.zeros((3, 10))
    f0[0, [1, 2, 3, 4]] = [100.0, 200.0, 400.0, 800.0]  # log2 spaced: quartiles are exact
    f0[1, :] = 150.0
    f0[1, 8:] = 999.0  # centred in the padding (n_samples 1200 -> 8 real frames): ignored
    # row 2: nothing voiced
    out = pitch_stats(f0, np.array([1600, 1200, 1600]), PARAMS)
    assert out.shape == (3, len(COLUMNS)) and out.dtype == np.float32
    logs = np.log([100.0, 200.0, 400.0, 800.0])
    np.testing.assert_allclose(out[0], [np.median(logs), np.quantile(logs, 0.25),
                                        np.quantile(logs, 0.75), logs.std(), 0.4, 0.0],
                               rtol=1e-6)
    np.testing.assert_allclose(out[1], [math.log(150)] * 3 + [0.0, 1.0, 0.0], rtol=1e-6,
                               atol=1e-6)
    centre = 0.5 * math.log(50 * 500)  # the defined value of a chunk with no voiced frame
    np.testing.assert_allclose(out[2], [centre] * 3 + [0.0, 0.0, 1.0], rtol=1e-6)
    assert np.isfinite(out).all()


def test_deltas_by_hand_clamp_at_the_last_real_frame():
    x = np.arange(8, dtype=np.float32)[None, :, None] ** 2  # 0 1 4 9 16 25 36 49
    x[0, 6:] = 1e6  # padding: must never be read with n_valid = 6
    d = deltas(x, np.array([6]))[0, :6, 0]
    # t=2: (1*(9-1) + 2*(16-0)) / 10 = 4; t=0: (1*(1-0) + 2*(4-0)) / 10 = 0.9 (clamped at 0);
    # t=5: (1*(25-16) + 2*(25-9)) / 10 = 4.1 (clamped at frame 5)
    np.testing.assert_allclose(d[[0, 2, 5]], [0.9, 4.0, 4.1], rtol=1e-6)
    assert np.abs(d).max() < 10


def test_views_on_a_store(synthetic_store):
    store = featstore.open(synthetic_store)
    rows = np.arange(len(store))
    meta = store.meta
    assert store_views(store) == ["mfcc", "mfcc-deltas", "mfcc-frames", "pitch", "fbank",
                                  "fbank-frames", "audio"]
    pitch = parse_view("pitch").load(store, rows)
    assert pitch.shape == (len(rows), 6) and np.isfinite(pitch).all()
    # the synthetic women speak at 180-260 Hz, the men at 85-150 Hz (featstore.sources.synthetic)
    median_hz = np.exp(pitch[:, 0])
    female = meta["gender"].to_numpy() == "F"
    assert np.median(median_hz[female]) > 170 and np.median(median_hz[~female]) < 160
    assert (pitch[:, 4] > 0.2).all()

    mfcc = parse_view("mfcc").load(store, rows)
    joined = parse_view("mfcc+pitch").load(store, rows)
    np.testing.assert_array_equal(joined, np.concatenate([mfcc, pitch], axis=1))
    with_deltas = parse_view("mfcc-deltas").load(store, rows)
    assert with_deltas.shape == (len(rows), 78)
    np.testing.assert_allclose(with_deltas[:, :26], mfcc, rtol=1e-6)

    frames = parse_view("fbank-frames").load(store, rows[:3])
    assert frames.shape == (3, 198, 80) and frames.dtype == np.float16
    fbank = parse_view("fbank").load(store, rows)
    assert fbank.shape == (len(rows), 160) and fbank.dtype == np.float32


def test_fbank_pools_over_the_kaldi_frames_of_real_audio(synthetic_store):
    store = featstore.open(synthetic_store)
    info = store.features["fbank"]
    # Kaldi on n real samples computes 1 + (n - 400) // 160 frames (snip_edges)
    np.testing.assert_array_equal(real_frames(info, np.array([32000, 16000, 500, 10]), 198),
                                  [198, 98, 1, 1])
    row = np.array([0])
    X = store.load("fbank", row).astype(np.float32)
    n = int(store.meta["n_samples"].iloc[0])
    k = 1 + (n - 400) // 160
    expected = np.concatenate([X[0, :k].mean(0), X[0, :k].std(0)])
    np.testing.assert_allclose(parse_view("fbank").load(store, row)[0], expected, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize(("name", "message"), [
    ("mfcc+audio", "'+' joins vector views only, and 'audio' is audio"),
    ("mfcc+mfcc-frames", "'mfcc-frames' is frames"),
    ("mfcc+", "empty part"),
    ("pitch+pitch", "names a view twice"),
    ("mfcc+pitchh", "unknown feature view 'pitchh'"),
])
def test_concatenation_is_validated(name, message):
    with pytest.raises(ViewError, match=re.escape(message)):
        parse_view(name)


def test_missing_features_name_the_build_flag(tmp_path, synthetic_corpus):
    from featstore.cli import main

    out = tmp_path / "mfcc-only"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
                 "mfcc", "--device", "cpu", "--quiet", "--workers", "0"]) == 0
    store = featstore.open(out)
    for name, flag in (("pitch", "mfcc,pitch"), ("mfcc+pitch", "mfcc,pitch"),
                       ("fbank-frames", "mfcc,fbank"), ("fbank", "mfcc,fbank")):
        with pytest.raises(ViewError, match=f"--features {flag}`"):
            parse_view(name).check(store)
    parse_view("mfcc-deltas").check(store)


def test_split_names_keeps_joined_layer_lists():
    assert split_names("mfcc+pitch,wav2vec2:0,6+pitch,fbank") == [
        "mfcc+pitch", "wav2vec2:0,6+pitch", "fbank"]


def test_frame_views_carry_the_real_frame_counts(synthetic_store):
    """mfcc-frames / fbank-frames hand models each chunk's count of real-audio frames (issue 17
    item 6), so a short last chunk's zero padding can be ignored."""
    store = featstore.open(synthetic_store)
    rows = np.arange(len(store.meta))
    # as if the first two chunks were an utterance's short last chunks
    store.meta.loc[:1, "n_samples"] = np.array([12000, 1200], dtype=np.int32)
    n_samples = store.meta["n_samples"].to_numpy()
    for name, feature in (("mfcc-frames", "mfcc"), ("fbank-frames", "fbank")):
        frames = parse_view(name).load(store, rows)
        np.testing.assert_array_equal(frames.data, store.load(feature, rows))
        expected = real_frames(store.features[feature], n_samples, frames.shape[1])
        np.testing.assert_array_equal(frames.lengths, expected)
        assert (frames.lengths < frames.shape[1]).any()
        part = frames[np.array([1, 0])]  # rows stay with their counts
        np.testing.assert_array_equal(part.lengths, expected[[1, 0]])
