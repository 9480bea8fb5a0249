"""wav2vec2 views and hf-finetune on a store built with a tiny random wav2vec2 model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

import featstore
from bench.cli import main
from bench.views import ViewError, parse_view, store_views


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny-w2v2"
    Wav2Vec2Model(cfg).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def w2v_store(tmp_path_factory, synthetic_corpus, tiny_model) -> Path:
    """Layers 0 and 2 of 0..2 pooled (so layer != position), frame states of layer 1."""
    from featstore.cli import main as featstore_main

    out = tmp_path_factory.mktemp("stores") / "w2v"
    rc = featstore_main(["build", "--source", str(synthetic_corpus), "--out", str(out),
                         "--features", "mfcc,wav2vec2,audio", "--model", str(tiny_model),
                         "--layers", "0,2", "--frames-layers", "1", "--device", "cpu",
                         "--quiet", "--workers", "0"])
    assert rc == 0
    return out


def test_layer_views(w2v_store):
    store = featstore.open(w2v_store)
    rows = np.arange(0, len(store), 5)
    mean = store.load("wav2vec2/mean", rows).astype(np.float32)  # [n, 2 stored layers, 32]
    std = store.load("wav2vec2/std", rows).astype(np.float32)
    layer2 = parse_view("wav2vec2:2").load(store, rows)
    assert layer2.shape == (len(rows), 64) and layer2.dtype == np.float32
    np.testing.assert_allclose(layer2, np.concatenate([mean[:, 1], std[:, 1]], 1))
    average = np.concatenate([mean.mean(1), std.mean(1)], 1)
    for name in ("wav2vec2:all", "wav2vec2:0,2"):
        np.testing.assert_allclose(parse_view(name).load(store, rows), average, rtol=1e-6)
    assert not np.allclose(layer2, average)
    for name in ("wav2vec2:1", "wav2vec2:0-1"):
        with pytest.raises(ViewError, match="layer.s. 1 not in the store; stored layers: 0, 2"):
            parse_view(name).check(store)
    assert parse_view("wav2vec2-frames:1").load(store, rows[:2]).shape == (2, 99, 32)
    with pytest.raises(ViewError, match=r"stored frame layers: 1\)"):
        parse_view("wav2vec2-frames:2").check(store)
    assert store_views(store) == ["mfcc", "mfcc-deltas", "mfcc-frames", "wav2vec2:0", "wav2vec2:2",
                                  "wav2vec2:all", "wav2vec2:layers", "wav2vec2-frames:1", "audio"]


def test_hf_finetune_takes_the_store_checkpoint_and_is_marked_reduced(w2v_store, tiny_model,
                                                                      tmp_path):
    config = tmp_path / "w2v.yaml"
    config.write_text(yaml.safe_dump({
        "store": str(w2v_store), "device": "cpu", "seeds": 1, "bootstrap": 50,
        "tasks": {"gender": {"grid": [
            {"features": ["audio"], "models": ["hf-finetune"]},
            {"features": ["wav2vec2:all", "wav2vec2:2"], "models": ["logreg"]},
        ]}},
        "models": {"hf-finetune": {"epochs": 2, "cpu": {"epochs": 1, "max_train_chunks": 16}}},
    }))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 0
    recs = {r["model"] + "/" + r["features"]: r
            for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    hf = recs["hf-finetune/audio"]
    assert hf["status"] == "ok"
    assert hf["params"]["checkpoint"] == str(tiny_model)
    assert hf["device_overrides"] == {"epochs": 1, "max_train_chunks": 16}
    assert hf["info"]["epochs_run"] == 1 and hf["info"]["n_train"] == 16
    assert recs["logreg/wav2vec2:all"]["status"] == "ok"
    board = (out / "leaderboard.md").read_text()
    assert "reduced settings**: YES" in board and "hf-finetune (reduced)" in board
    assert "epochs=1, max_train_chunks=16" in board
