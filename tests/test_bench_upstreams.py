"""bench on a store holding d-vectors and a named upstream (a tiny random HuBERT): views by the
upstream's name, the layer sweep, layer-weights and the layer plot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import featstore
from bench.cli import main
from bench.views import ViewError, parse_view, store_views
from featstore.perf.wav2vec2 import save_random_upstream

pytestmark = pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None,
                                reason="resemblyzer (its packaged weights) is not installed")


@pytest.fixture(scope="module")
def store(tmp_path_factory, synthetic_corpus) -> Path:
    from featstore.cli import main as featstore_main

    root = tmp_path_factory.mktemp("up")
    hubert = save_random_upstream(root / "tiny-hubert", "hubert")
    out = root / "store"
    rc = featstore_main(["build", "--source", str(synthetic_corpus), "--out", str(out),
                         "--features", f"mfcc,dvector,hubert={hubert}", "--dtype", "float32",
                         "--device", "cpu", "--quiet", "--workers", "0"])
    assert rc == 0
    return out


def test_views_follow_the_upstream_name(store) -> None:
    s = featstore.open(store)
    rows = np.arange(0, len(s), 3)
    mean, std = (s.load(f"hubert/{k}", rows) for k in ("mean", "std"))
    stack = parse_view("hubert:layers").load(s, rows)
    assert parse_view("hubert:layers").kind == "layers" and stack.shape == (len(rows), 3, 64)
    np.testing.assert_allclose(stack, np.concatenate([mean, std], 2))
    np.testing.assert_allclose(parse_view("hubert:0-1").load(s, rows),  # averaged, not joined
                               np.concatenate([mean[:, :2].mean(1), std[:, :2].mean(1)], 1),
                               rtol=1e-6)
    np.testing.assert_allclose(parse_view("hubert:2").load(s, rows),
                               np.concatenate([mean[:, 2], std[:, 2]], 1))
    d = parse_view("dvector").load(s, rows)
    assert d.shape == (len(rows), 256) and np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
    assert "hubert:layers" in store_views(s) and "dvector" in store_views(s)
    with pytest.raises(ViewError, match="no wavlm features.*wavlm=MODEL"):
        parse_view("wavlm:6").check(s)
    with pytest.raises(ViewError, match="no xvector features.*dvector,hubert=.*xvector=MODEL"):
        parse_view("xvector").check(s)
    for bad in ("mfcc:3", "hubert-frames:x", "Hubert:2"):
        with pytest.raises(ViewError, match="unknown feature view"):
            parse_view(bad)
    assert s.provenance["params"]["entries"]["hubert"].startswith("hubert=")


def test_sweep_layer_weights_and_plot(store, tmp_path) -> None:
    config = tmp_path / "up.yaml"
    config.write_text(yaml.safe_dump({
        "store": str(store), "device": "cpu", "seeds": 2, "bootstrap": 50,
        "tasks": {"gender": {"grid": [
            {"features": ["dvector"], "models": ["logreg"]},
            {"features": ["hubert:each", "wavlm:each"], "models": ["logreg"]},
            {"features": ["hubert:layers", "wavlm:layers"], "models": ["layer-weights"]},
        ]}},
        "models": {"layer-weights": {"max_epochs": 5}},
    }))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--quiet", "--skip-missing-views"]) == 0
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    views = {r["features"] for r in recs}
    assert views == {"dvector", "hubert:0", "hubert:1", "hubert:2", "hubert:layers"}
    assert all(r["status"] == "ok" for r in recs)
    lw = [r for r in recs if r["model"] == "layer-weights"]
    assert len(lw) == 2 and {r["seed"] for r in lw} == {0, 1}
    for r in lw:
        assert len(r["info"]["layer_weights"]) == 3
        assert abs(sum(r["info"]["layer_weights"]) - 1) < 1e-6
    board = (out / "leaderboard.md").read_text()
    assert "[layers_gender_hubert.png](layers_gender_hubert.png)" in board
    assert (out / "layers_gender_hubert.png").stat().st_size > 1000
    assert "wavlm:each" in board and "wavlm:layers" in board  # listed as skipped, with why
