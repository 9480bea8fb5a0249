"""The layer-weights probe: softmax weights over layers, learned toward the informative one."""

from __future__ import annotations

import numpy as np
import pytest

import models


def layered(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """4 layers of 6; only layer 2 carries the label."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 2, n)
    X = g.normal(size=(n, 4, 6)).astype(np.float32)
    X[:, 2, :3] += (2 * y[:, None] - 1) * 1.0
    return X, y


def test_learns_weight_on_the_informative_layer() -> None:
    X, y = layered(400, 0)
    Xv, yv = layered(100, 1)
    m = models.make_model("layer-weights", {"lr": 0.02, "max_epochs": 60}, seed=0, device="cpu")
    assert m.fit(X, y, X_val=Xv, y_val=yv) is m
    w = np.array(m.info()["layer_weights"])
    assert w.shape == (4,) and abs(w.sum() - 1) < 1e-6
    assert w.argmax() == 2 and w[2] > 0.3  # from 0.25 each at the start
    Xt, yt = layered(200, 2)
    assert (m.predict(Xt) == yt).mean() > 0.8


def test_same_seed_same_weights_and_mlp_head() -> None:
    X, y = layered(200, 0)
    a = models.make_model("layer-weights", {"hidden_sizes": [8], "max_epochs": 5}, seed=3,
                          device="cpu").fit(X, y)
    b = models.make_model("layer-weights", {"hidden_sizes": [8], "max_epochs": 5}, seed=3,
                          device="cpu").fit(X, y)
    np.testing.assert_array_equal(a.info()["layer_weights"], b.info()["layer_weights"])
    np.testing.assert_allclose(a.predict_proba(X).sum(1), 1.0, atol=1e-9)


def test_refuses_vector_input() -> None:
    m = models.make_model("layer-weights", {}, seed=0, device="cpu")
    with pytest.raises(ValueError, match="layers"):
        m.fit(np.zeros((10, 4)), np.arange(10) % 2)
