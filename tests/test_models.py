"""Tests for models/: the registry and contract, and every method on small synthetic data.

Everything runs offline on the CPU: the Hugging Face models are tiny random wav2vec2
configs saved to a temporary directory and loaded by path.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from models import MODELS, ModelConfigError, list_models, make_model
from models.base import softmax
from models.inputs import Frames

SR = 16000
ALL_MODELS = {
    "majority",
    "logreg",
    "xgboost",
    "mlp",
    "cnn",
    "gmm",
    "pca-kmeans",
    "hf-finetune",
    "hf-pretrained",
    "layer-weights",
}

# small, fast settings per model (the defaults are sized for real stores)
FAST = {
    "majority": {},
    "logreg": {},
    "xgboost": {"n_estimators": 60, "early_stopping_rounds": 10},
    "mlp": {"hidden_sizes": [32], "max_epochs": 40, "patience": 5, "batch_size": 32},
    "gmm": {"n_components": 2},
    "cnn": {"channels": [8, 16], "max_epochs": 15, "patience": 4, "batch_size": 16, "lr": 3e-3},
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These networks are tiny: one thread is faster and immune to oversubscription when
    other test processes share the cores. Restored afterwards for the other test modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- synthetic data -------------------------------------------------------------------


def gaussian_vectors(n: int, seed: int, d: int = 12, labels=("F", "M"), shift: float = 1.2):
    """Gaussian classes whose means differ by ``shift`` in every dimension."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, len(labels), n)
    y = np.asarray(labels)[codes]
    X = rng.normal(size=(n, d)) + shift * codes[:, None] + 5.0  # offset: standardisation matters
    return X.astype(np.float32), y


def pattern_frames(n: int, seed: int, T: int = 63, d: int = 13):
    """MFCC-shaped frames [n, T, d] where the class is a *temporal* pattern of coefficient 4:
    a fast (period 2) vs a slow (period 16) square wave, same per-coefficient mean and
    variance, so only a model that looks across frames can separate them."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, "F", "M")
    t = np.arange(T)
    X = rng.normal(scale=0.6, size=(n, T, d))
    for i in range(n):
        period = 2 if y[i] == "F" else 16
        phase = rng.integers(0, period)
        X[i, :, 4] += 2.0 * np.where(((t + phase) // (period // 2)) % 2 == 0, 1.0, -1.0)
    return X.astype(np.float16), y  # float16 like the store


def shifted_frames(n: int, seed: int, T: int = 20, d: int = 6):
    """Frames whose per-frame distribution depends on the class (for the GMM)."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, "F", "M")
    X = rng.normal(size=(n, T, d)) + 0.8 * (y == "M")[:, None, None]
    return X.astype(np.float32), y


def tones(n: int, seed: int, seconds: float = 1.0):
    """int16 sine tones at 16 kHz: 200 Hz ("low") vs 1800 Hz ("high"), random phase / gain."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, "low", "high")
    rng.shuffle(y)
    t = np.arange(int(seconds * SR)) / SR
    X = np.empty((n, len(t)), dtype=np.int16)
    for i in range(n):
        f = 200.0 if y[i] == "low" else 1800.0
        x = rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        x += rng.normal(scale=0.01, size=len(t))
        X[i] = np.round(x * 32767).astype(np.int16)
    return X, y


def fit_vectors(name: str, seed: int = 0, **params):
    X, y = gaussian_vectors(300, seed=1)
    Xv, yv = gaussian_vectors(100, seed=2)
    model = make_model(name, {**FAST[name], **params}, seed=seed, device="cpu")
    return model.fit(X, y, X_val=Xv, y_val=yv)


# ---- registry and configuration errors ------------------------------------------------


def test_registry_lists_every_model():
    assert set(list_models()) == ALL_MODELS
    assert set(MODELS) == ALL_MODELS
    for name, spec in MODELS.items():
        assert spec.name == name
        assert spec.kind in ("classifier", "clusterer")
        assert spec.inputs and set(spec.inputs) <= {"vector", "frames", "audio", "layers"}
        assert spec.description and "\n" not in spec.description
    assert MODELS["pca-kmeans"].kind == "clusterer"
    assert MODELS["cnn"].inputs == ("frames",)
    assert set(MODELS["gmm"].inputs) == {"frames", "vector"}
    assert MODELS["hf-finetune"].inputs == ("audio",)


def test_unknown_model_names_choices():
    with pytest.raises(ModelConfigError, match="unknown model 'svm'") as e:
        make_model("svm", {}, seed=0, device="cpu")
    assert "logreg" in str(e.value) and "pca-kmeans" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_param_names_key_and_valid_keys():
    with pytest.raises(ModelConfigError, match="learning_rte") as e:
        make_model("mlp", {"learning_rte": 0.1}, seed=0, device="cpu")
    for key in ("lr", "hidden_sizes", "patience"):
        assert key in str(e.value)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("mlp", {"lr": "fast"}, "lr must be float or int"),
        ("mlp", {"max_epochs": 2.5}, "max_epochs must be int"),
        ("mlp", {"max_epochs": True}, "max_epochs must be int"),
        ("cnn", {"augment": 1}, "augment must be bool"),
        ("mlp", {"hidden_sizes": 64}, "hidden_sizes must be tuple or list"),
        ("mlp", {"hidden_sizes": [64, "a"]}, "hidden_sizes must be positive ints"),
        ("mlp", {"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
        ("logreg", {"C": -1.0}, "C must be > 0"),
        ("gmm", {"covariance_type": "diagonal"}, "covariance_type must be one of"),
        ("cnn", {"kernel_size": 4}, "kernel_size must be a positive odd int"),
        ("hf-finetune", {}, "checkpoint required"),
        ("hf-finetune", {"checkpoint": None}, "checkpoint required"),
        ("mlp", [("lr", 0.1)], "params must be a dict"),
        ("hf-finetune", {"checkpoint": 3}, "checkpoint must be str"),
        ("hf-pretrained", {"checkpoint": "x/y"}, "label_map required"),
    ],
)
def test_bad_params_are_config_errors(name, params, match):
    with pytest.raises(ModelConfigError, match=match):
        make_model(name, params, seed=0, device="cpu")


def test_params_normalised_and_device_checked():
    model = make_model("mlp", {"lr": 1, "hidden_sizes": [8, 4]}, seed=0, device="auto")
    assert model.params["lr"] == 1.0 and isinstance(model.params["lr"], float)
    assert model.params["hidden_sizes"] == (8, 4)
    assert model.params["patience"] == MODELS["mlp"].defaults["patience"]
    assert model.device == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelConfigError, match="device"):
        make_model("mlp", {}, seed=0, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelConfigError, match="no CUDA GPU"):
            make_model("mlp", {}, seed=0, device="cuda")


# ---- vector classifiers ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["logreg", "xgboost", "mlp", "gmm"])
def test_vector_classifier_learns_and_follows_contract(name):
    model = fit_vectors(name)
    Xt, yt = gaussian_vectors(200, seed=3)
    pred = model.predict(Xt)
    assert np.mean(pred == yt) >= 0.85
    assert list(model.classes_) == ["F", "M"]
    assert pred.dtype.kind == "U" and set(pred) <= {"F", "M"}  # string labels round-trip
    proba = model.predict_proba(Xt)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert np.all(model.classes_[proba.argmax(1)] == pred)  # columns follow classes_
    # class "M" has the larger mean: its column must grow with the features
    assert proba[np.argmax(Xt.sum(1)), 1] > 0.5 > proba[np.argmin(Xt.sum(1)), 1]
    info = model.info()
    json.dumps(info)
    assert info["device"] == "cpu"


@pytest.mark.parametrize("name", ["logreg", "xgboost", "mlp", "gmm"])
def test_vector_classifier_reproducible(name):
    Xt, _ = gaussian_vectors(100, seed=3)
    a = fit_vectors(name, seed=7).predict_proba(Xt)
    b = fit_vectors(name, seed=7).predict_proba(Xt)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["xgboost", "mlp", "logreg"])
def test_integer_labels_and_three_classes(name):
    labels = (11, 3, 7)
    X, y = gaussian_vectors(300, seed=1, labels=labels, shift=3.0)
    Xv, yv = gaussian_vectors(90, seed=2, labels=labels, shift=3.0)
    Xt, yt = gaussian_vectors(150, seed=3, labels=labels, shift=3.0)
    model = make_model(name, FAST[name], seed=0, device="cpu").fit(X, y, X_val=Xv, y_val=yv)
    assert list(model.classes_) == [3, 7, 11]
    pred = model.predict(Xt)
    assert pred.dtype.kind == "i" and np.mean(pred == yt) >= 0.85
    assert model.predict_proba(Xt).shape == (150, 3)


def test_majority_baseline():
    X = np.zeros((10, 3), dtype=np.float32)
    y = np.array(["M"] * 7 + ["F"] * 3)
    model = make_model("majority", {}, seed=0, device="cpu").fit(X, y, X_val=X[:4], y_val=y[:4])
    assert list(model.predict(np.ones((5, 3)))) == ["M"] * 5
    np.testing.assert_allclose(model.predict_proba(X[:2]), [[0.3, 0.7], [0.3, 0.7]])
    assert model.info()["majority_class"] == "M"


def test_xgboost_early_stopping_on_validation():
    model = fit_vectors("xgboost", n_estimators=400, early_stopping_rounds=5)
    info = model.info()
    assert info["best_iteration"] < 399 and info["n_trees"] < 400
    assert "best_val_logloss" in info and info["val_accuracy"] >= 0.85


def test_mlp_early_stopping_restores_best_epoch():
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(200, 8)), rng.normal(size=(100, 8))  # pure noise: overfits fast
    y, yv = rng.integers(0, 2, 200), rng.integers(0, 2, 100)
    model = make_model(
        "mlp", {"hidden_sizes": [64], "max_epochs": 200, "patience": 3}, seed=0, device="cpu"
    )
    info = model.fit(X, y, X_val=Xv, y_val=yv).info()
    assert info["stopped_early"] and info["epochs_run"] < 200
    assert info["best_epoch"] == info["epochs_run"] - 3
    best = min(h["val_loss"] for h in info["history"])
    assert info["best_val_loss"] == pytest.approx(best)
    # the restored weights are the best epoch's: recomputing its validation loss agrees
    p = model.predict_proba(Xv)
    assert -np.mean(np.log(p[np.arange(100), yv])) == pytest.approx(best, rel=1e-4)


def test_validation_errors():
    X, y = gaussian_vectors(50, seed=1)
    model = make_model("logreg", {}, seed=0, device="cpu")
    with pytest.raises(ValueError, match="not seen in training"):
        model.fit(X, y, X_val=X[:3], y_val=np.array(["F", "M", "U"]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(X, np.full(50, "F"))
    with pytest.raises(ValueError, match="vector input"):
        model.fit(X[:, :, None], y)
    with pytest.raises(RuntimeError, match="not fitted"):
        make_model("mlp", {}, seed=0, device="cpu").predict_proba(X)


# ---- frame models ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames_data():
    return pattern_frames(160, seed=1), pattern_frames(60, seed=2), pattern_frames(100, seed=3)


def test_frame_pattern_needs_time_context(frames_data):
    """Sanity check of the data: the per-chunk mean vector carries no class information."""
    (X, y), _, (Xt, yt) = frames_data
    lr = make_model("logreg", {}, seed=0, device="cpu").fit(X.astype(np.float32).mean(1), y)
    assert np.mean(lr.predict(Xt.astype(np.float32).mean(1)) == yt) < 0.7


@pytest.mark.parametrize("augment", [False, True])
def test_cnn_learns_temporal_pattern(frames_data, augment):
    (X, y), (Xv, yv), (Xt, yt) = frames_data
    model = make_model("cnn", {**FAST["cnn"], "augment": augment}, seed=0, device="cpu").fit(
        X, y, X_val=Xv, y_val=yv
    )
    assert np.mean(model.predict(Xt) == yt) >= 0.85
    proba = model.predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    info = model.info()
    assert info["best_val_accuracy"] >= 0.85 and 1 <= info["best_epoch"] <= info["epochs_run"]
    with pytest.raises(ValueError, match="frame input"):
        model.predict(Xt.mean(1))


def test_cnn_reproducible(frames_data):
    (X, y), (Xv, yv), (Xt, _) = frames_data
    params = {**FAST["cnn"], "max_epochs": 3, "augment": True}
    a = make_model("cnn", params, seed=3, device="cpu").fit(X, y, X_val=Xv, y_val=yv)
    b = make_model("cnn", params, seed=3, device="cpu").fit(X, y, X_val=Xv, y_val=yv)
    a, b = a.predict_proba(Xt), b.predict_proba(Xt)
    np.testing.assert_array_equal(a, b)


def _runs(flags: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a 1-D bool tensor."""
    out, start = [], None
    for i, f in enumerate([*flags.tolist(), False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i))
            start = None
    return out


def test_cnn_augment_masks_one_band_per_axis_inside_the_valid_frames():
    """Without a shift, each chunk's output equals its input except one time band and one
    frequency band (each at most time_mask / freq_mask of the axis wide) set to 0; the time band
    lies inside the chunk's valid frames and the padding stays 0."""
    params = {"augment": True, "time_shift": 0.0, "time_mask": 0.3, "freq_mask": 0.3}
    model = make_model("cnn", params, seed=0, device="cpu")
    B, T, d = 64, 40, 10
    torch.manual_seed(0)
    x = torch.rand(B, 1, T, d) + 1.0  # no zeros of its own
    lengths = torch.randint(14, T + 1, (B,))  # longer than a time band: bands stay apart
    x = x * (torch.arange(T)[None, :] < lengths[:, None]).float()[:, None, :, None]
    out, out_lengths = model._augment((x, lengths))
    assert out.shape == x.shape and torch.equal(out_lengths, lengths)
    widths = {"time": [], "freq": []}
    for b in range(B):
        n = int(lengths[b])
        zero = out[b, 0, :n] == 0  # [n, d] inside the valid frames
        rows, cols = zero.all(1), zero.all(0)  # masked frames / masked bins
        time_runs, freq_runs = _runs(rows), _runs(cols)
        assert len(time_runs) <= 1 and len(freq_runs) <= 1
        expected = torch.zeros_like(zero)
        for s, e in time_runs:
            expected[s:e] = True
            widths["time"].append(e - s)
        for s, e in freq_runs:
            expected[:, s:e] = True
            widths["freq"].append(e - s)
        assert torch.equal(zero, expected)  # nothing else was touched...
        kept = ~expected
        assert torch.equal(out[b, 0, :n][kept], x[b, 0, :n][kept])  # ...nor changed
        assert (out[b, 0, n:] == 0).all()  # padding stays 0
    assert 0 < max(widths["time"]) <= round(0.3 * T) and len(widths["time"]) > B // 2
    assert 0 < max(widths["freq"]) <= round(0.3 * d) and len(widths["freq"]) > B // 2


def test_cnn_augment_shifts_each_chunk_within_its_valid_frames():
    params = {"augment": True, "time_shift": 0.2, "time_mask": 0.0, "freq_mask": 0.0}
    model = make_model("cnn", params, seed=0, device="cpu")
    B, T, d = 32, 30, 3
    lengths = torch.randint(4, T + 1, (B,))
    frame = torch.arange(1, T + 1, dtype=torch.float32)[None, None, :, None]  # frame t holds t+1
    x = frame.expand(B, 1, T, d) * (torch.arange(T)[None, :] < lengths[:, None]).float()[
        :, None, :, None]
    out, _ = model._augment((x, lengths))
    shifts = []
    for b in range(B):
        n = int(lengths[b])
        src = out[b, 0, :n, 0].long() - 1  # which input frame each output frame came from
        shift = int((torch.arange(n) - src[0]) [0]) % n
        assert torch.equal(src, (torch.arange(n) - shift) % n)  # a circular roll of the valid part
        assert (out[b, 0, :, :] == out[b, 0, :, :1]).all()  # whole frames move
        assert (out[b, 0, n:] == 0).all()
        shifts.append(min(shift, n - shift))
    assert 0 < max(shifts) <= round(0.2 * T)


def test_gmm_on_frames():
    X, y = shifted_frames(80, seed=1)
    Xt, yt = shifted_frames(60, seed=2)
    model = make_model("gmm", {"n_components": 2}, seed=0, device="cpu").fit(X, y)
    assert np.mean(model.predict(Xt) == yt) >= 0.95
    ll = model.mean_log_likelihood(Xt)
    np.testing.assert_allclose(model.predict_proba(Xt), softmax(ll))
    # the frame-level score is the mean over the chunk's frames
    frames = model._project(Xt[0])
    np.testing.assert_allclose(ll[0, 1], model.gmms_[1].score_samples(frames).mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="fitted on 3-D"):
        model.predict(Xt.mean(1))


def test_gmm_reduces_components_for_small_classes():
    X, y = gaussian_vectors(40, seed=1)
    X = np.concatenate([X, X[:2] + 10])
    y = np.concatenate([y, ["Z", "Z"]])
    model = make_model("gmm", {"n_components": 4}, seed=0, device="cpu").fit(X, y)
    per_class = model.info()["per_class"]
    assert per_class["Z"]["n_components"] == 2 and per_class["F"]["n_components"] == 4


# ---- clustering -----------------------------------------------------------------------


def test_pca_kmeans_recovers_blobs_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(3, 20))
    y = np.repeat(["a", "b", "c"], 60)
    X = centres[np.searchsorted(["a", "b", "c"], y)] + rng.normal(size=(180, 20))
    model = make_model("pca-kmeans", {}, seed=0, device="cpu")
    ids = model.fit_predict(X, 3)
    assert ids.shape == (180,) and adjusted_rand_score(y, ids) > 0.9
    np.testing.assert_array_equal(
        ids, make_model("pca-kmeans", {}, seed=0, device="cpu").fit_predict(X, 3)
    )
    assert model.transform(X).shape == (180, 2)
    info = model.info()
    assert (
        info["pca_components"] == 10
        and 0 < info["explained_variance_2d"] <= info["explained_variance"] <= 1
    )
    png = tmp_path / "clusters.png"
    model.plot(X, y, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="n_clusters"):
        model.fit_predict(X, 0)


# ---- Hugging Face models (tiny random wav2vec2 saved locally) -------------------------


def tiny_wav2vec2_config(**kw):
    from transformers import Wav2Vec2Config

    # 1 s at 16 kHz -> 200 frames through two strided convs (10, 8): small and fast
    return Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32),
        conv_stride=(10, 8),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        classifier_proj_size=16,
        mask_time_prob=0.0,
        layerdrop=0.0,
        **kw,
    )


def save_checkpoint(path, model) -> str:
    from transformers import Wav2Vec2FeatureExtractor

    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=SR, do_normalize=True).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    from transformers import Wav2Vec2Model

    torch.manual_seed(0)
    return save_checkpoint(
        tmp_path_factory.mktemp("w2v_base"), Wav2Vec2Model(tiny_wav2vec2_config())
    )


@pytest.fixture(scope="module")
def gender_checkpoint(tmp_path_factory):
    from transformers import Wav2Vec2ForSequenceClassification

    torch.manual_seed(1)
    id2label = {0: "female", 1: "male", 2: "child"}
    config = tiny_wav2vec2_config(
        num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()}
    )
    return save_checkpoint(
        tmp_path_factory.mktemp("w2v_gender"), Wav2Vec2ForSequenceClassification(config)
    )


HF_FAST = {"epochs": 6, "lr": 5e-3, "batch_size": 8, "patience": 6, "warmup_ratio": 0.0}


def test_hf_finetune_learns_tones(base_checkpoint):
    X, y = tones(48, seed=1)
    Xv, yv = tones(16, seed=2)
    Xt, yt = tones(32, seed=3)
    model = make_model(
        "hf-finetune", {"checkpoint": base_checkpoint, **HF_FAST}, seed=0, device="cpu"
    )
    model.fit(X, y, X_val=Xv, y_val=yv)
    info = model.info()
    losses = [h["train_loss"] for h in info["history"]]
    assert losses[-1] < losses[0]
    assert np.mean(model.predict(Xt) == yt) >= 0.85
    assert list(model.classes_) == ["high", "low"]
    assert model.net_.config.id2label == {0: "high", 1: "low"}
    np.testing.assert_allclose(model.predict_proba(Xt).sum(1), 1.0, atol=1e-6)
    assert info["normalisation"].startswith("Wav2Vec2FeatureExtractor(do_normalize=True")
    # the convolutional feature encoder is frozen by default, the rest trains
    assert 0 < info["n_trainable_parameters"] < info["n_parameters"]
    json.dumps(info)


def test_hf_finetune_reproducible_and_capped(base_checkpoint):
    X, y = tones(24, seed=1)
    Xv, yv = tones(8, seed=2)
    params = {"checkpoint": base_checkpoint, **HF_FAST, "epochs": 2, "max_train_chunks": 16}
    a = make_model("hf-finetune", params, seed=5, device="cpu").fit(X, y, X_val=Xv, y_val=yv)
    b = make_model("hf-finetune", params, seed=5, device="cpu").fit(X, y, X_val=Xv, y_val=yv)
    assert a.info()["n_train"] == 16
    np.testing.assert_array_equal(a.predict_proba(Xv), b.predict_proba(Xv))


def test_hf_finetune_float_audio_without_feature_extractor(tmp_path, base_checkpoint):
    """No preprocessor_config.json: falls back to per-chunk zero-mean unit-variance."""
    from transformers import Wav2Vec2Model

    path = tmp_path / "nofe"
    Wav2Vec2Model.from_pretrained(base_checkpoint).save_pretrained(path)
    X, y = tones(8, seed=1)
    params = {"checkpoint": str(path), **HF_FAST, "epochs": 1}
    model = make_model("hf-finetune", params, seed=0, device="cpu").fit(
        X.astype(np.float32) / 32768, y
    )
    assert model.info()["normalisation"].startswith("zero-mean")
    assert model.predict_proba(X).shape == (8, 2)


@pytest.mark.parametrize("name", ["hf-finetune", "hf-pretrained"])
def test_hf_missing_checkpoint_is_config_error(tmp_path, name):
    params = {"checkpoint": str(tmp_path / "does-not-exist"), "label_map": {"a": "b"}}
    if name == "hf-finetune":
        del params["label_map"]
    with pytest.raises(ModelConfigError, match="local path") as e:
        make_model(name, params, seed=0, device="cpu")
    assert "\n" not in str(e.value)
    # an existing directory without config.json
    with pytest.raises(ModelConfigError, match="local path|cannot load"):
        make_model(name, {**params, "checkpoint": str(tmp_path)}, seed=0, device="cpu")


def _reference_logits(checkpoint: str, X: np.ndarray) -> np.ndarray:
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    model = Wav2Vec2ForSequenceClassification.from_pretrained(checkpoint).eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(checkpoint)
    inputs = fe(X.astype(np.float32) / 32768, sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits.double().numpy()


def test_hf_pretrained_maps_and_renormalises(gender_checkpoint):
    X, _ = tones(6, seed=4)
    y = np.array(["F", "M", "F", "M", "F", "M"])
    model = make_model(
        "hf-pretrained",
        {"checkpoint": gender_checkpoint, "label_map": {"female": "F", "male": "M"}},
        seed=0,
        device="cpu",
    ).fit(X, y)
    assert list(model.classes_) == ["F", "M"]
    assert model.info()["ignored_checkpoint_labels"] == ["child"]
    logits = _reference_logits(gender_checkpoint, X)
    expected = softmax(logits[:, [0, 1]])  # "child" dropped, renormalised over female / male
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    assert list(model.predict(X)) == list(np.array(["F", "M"])[expected.argmax(1)])


def test_hf_pretrained_many_to_one_and_label_checks(gender_checkpoint):
    X, _ = tones(4, seed=4)
    label_map = {"female": "adult", "male": "adult", "child": "child"}
    model = make_model(
        "hf-pretrained",
        {"checkpoint": gender_checkpoint, "label_map": label_map},
        seed=0,
        device="cpu",
    )
    model.fit(X, np.array(["adult", "child", "adult", "adult"]))
    full = softmax(_reference_logits(gender_checkpoint, X))
    np.testing.assert_allclose(
        model.predict_proba(X), np.c_[full[:, 0] + full[:, 1], full[:, 2]], atol=1e-5
    )
    with pytest.raises(ValueError, match=r"also has \['U'\]"):
        model.fit(X, np.array(["adult", "U", "adult", "adult"]))
    with pytest.raises(ModelConfigError, match="woman.*child, female, male"):
        make_model(
            "hf-pretrained",
            {"checkpoint": gender_checkpoint, "label_map": {"woman": "F"}},
            seed=0,
            device="cpu",
        )


@pytest.mark.parametrize("name", ["logreg", "gmm", "majority"])
def test_object_labels_from_pandas(name):
    """Label columns read through pandas arrive as object arrays; they come back unchanged."""
    X, y = gaussian_vectors(120, seed=1)
    y = y.astype(object)
    model = make_model(name, FAST[name], seed=0, device="cpu").fit(X, y, X_val=X[:20], y_val=y[:20])
    pred = model.predict(X)
    assert pred.dtype == object and set(pred) <= {"F", "M"}
    assert model.info()["val_accuracy"] >= (0.85 if name != "majority" else 0.0)


@pytest.mark.parametrize("n, size", [(5, 4), (9, 4), (13, 4), (8, 4), (1, 4)])
def test_batches_cover_every_row_once_without_singletons(n, size):
    from models.torch_train import _batches

    batches = _batches(n, size, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert n == 1 or all(len(b) > 1 for b in batches)


# ---- padding (issue 17 item 6): frames past a chunk's valid length never matter ----------


def padded(X: np.ndarray, seed: int, fill: float) -> Frames:
    """``X`` with random valid lengths (a third of the chunks full) and the frames past them
    set to ``fill`` times random noise."""
    rng = np.random.default_rng(seed)
    n, T, _ = X.shape
    lengths = np.where(rng.random(n) < 1 / 3, T, rng.integers(T // 3, T, n))
    X = X.copy()
    pad = np.arange(T)[None, :] >= lengths[:, None]
    X[pad] = (fill * rng.normal(size=(int(pad.sum()), X.shape[2]))).astype(X.dtype)
    return Frames(X, lengths)


def test_frames_rows_keep_their_lengths():
    X = np.zeros((4, 5, 2), dtype=np.float16)
    f = Frames(X, [5, 1, 3, 2])
    part = f[np.array([2, 0])]
    assert part.shape == (2, 5, 2) and part.dtype == np.float16 and len(part) == 2
    np.testing.assert_array_equal(part.lengths, [3, 5])
    np.testing.assert_array_equal(f[1:3].lengths, [1, 3])
    np.testing.assert_array_equal(f.mask()[2], [True, True, True, False, False])
    with pytest.raises(ValueError, match="lengths must lie"):
        Frames(X, [5, 0, 3, 2])
    with pytest.raises(ValueError, match="one length per chunk"):
        Frames(X, [5, 1])


def test_cnn_ignores_padding(frames_data):
    """Fit and prediction do not depend on what a chunk's padding holds."""
    (X, y), (Xv, yv), (Xt, _) = frames_data
    params = {**FAST["cnn"], "max_epochs": 3, "augment": True}

    def fit_predict(fill: float) -> np.ndarray:
        model = make_model("cnn", params, seed=0, device="cpu")
        model.fit(padded(X, 1, fill), y, X_val=padded(Xv, 2, fill), y_val=yv)
        return model.predict_proba(padded(Xt, 3, fill))

    quiet, loud = fit_predict(0.0), fit_predict(50.0)
    np.testing.assert_allclose(quiet, loud, rtol=1e-5, atol=1e-6)
    # and the padding is really a cut: the same chunks unpadded predict otherwise
    model = make_model("cnn", params, seed=0, device="cpu")
    model.fit(padded(X, 1, 0.0), y, X_val=padded(Xv, 2, 0.0), y_val=yv)
    assert not np.allclose(model.predict_proba(Xt), quiet, atol=1e-3)


def test_cnn_pools_wide_inputs_before_the_first_convolution():
    X, y = pattern_frames(40, seed=1, T=198, d=80)
    model = make_model("cnn", {**FAST["cnn"], "max_epochs": 1}, seed=0, device="cpu").fit(X, y)
    assert model.info()["input_shape"] == [198, 20]
    small = make_model("cnn", {**FAST["cnn"], "max_epochs": 1}, seed=0, device="cpu")
    assert small.fit(*pattern_frames(40, seed=1)).info()["input_shape"] == [63, 13]


def test_gmm_ignores_padding():
    X, y = shifted_frames(80, seed=1)
    Xt, _ = shifted_frames(30, seed=2)
    quiet, loud = padded(X, 1, 0.0), padded(X, 1, 40.0)
    test_quiet, test_loud = padded(Xt, 3, 0.0), padded(Xt, 3, 40.0)
    a = make_model("gmm", {"n_components": 2}, seed=0, device="cpu").fit(quiet, y)
    b = make_model("gmm", {"n_components": 2}, seed=0, device="cpu").fit(loud, y)
    np.testing.assert_allclose(a.mean_log_likelihood(test_quiet),
                               b.mean_log_likelihood(test_loud), rtol=1e-6)
    # each class is fitted on its valid frames only, each chunk scored on its own
    for code, label in enumerate(a.classes_):
        assert a.info()["per_class"][label]["n_frames"] == quiet.lengths[y == label].sum()
        k = int(test_quiet.lengths[0])
        frames = a._project(Xt[0, :k])
        np.testing.assert_allclose(a.mean_log_likelihood(test_loud)[0, code],
                                   a.gmms_[code].score_samples(frames).mean(), rtol=1e-6)
