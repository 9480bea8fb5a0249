"""featstore.pooling: one masked mean/std for numpy and torch, and its callers (the bench mfcc
view, the EDA, the wav2vec2 extractor) giving exactly what their own code gave before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.views import parse_view
from featstore import eda
from featstore.pooling import masked_mean_std, valid_frames
from featstore.store.reader import Store

ROOT = Path(__file__).resolve().parents[1]


def random_case(seed: int, shape: tuple[int, ...], axis: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 3 + 1).astype(np.float32)
    n = rng.integers(1, shape[axis] + 1, size=shape[0])
    n[0] = shape[axis]  # one full row
    return x, n


# -- the function ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((7, 20, 5), 1), ((6, 3, 11, 4), 2), ((5, 9), 1),
                                        ((4, 8, 3), -2)])
def test_numpy_and_torch_agree(shape, axis):
    x, n = random_case(0, shape, axis)
    mean_np, std_np = masked_mean_std(x, n, axis)
    mean_t, std_t = masked_mean_std(torch.from_numpy(x), torch.from_numpy(n).float(), axis)
    assert isinstance(mean_t, torch.Tensor) and mean_t.dtype == torch.float32
    assert mean_np.shape == tuple(mean_t.shape) == tuple(np.delete(shape, axis))
    np.testing.assert_allclose(mean_t.numpy(), mean_np, rtol=0, atol=1e-6)
    np.testing.assert_allclose(std_t.numpy(), std_np, rtol=0, atol=1e-6)
    # and in float64 both libraries agree to rounding
    mean_t64, std_t64 = masked_mean_std(torch.from_numpy(x).double(), torch.from_numpy(n), axis)
    mean_64, std_64 = masked_mean_std(x.astype(np.float64), n, axis)
    np.testing.assert_allclose(mean_t64.numpy(), mean_64, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std_t64.numpy(), std_64, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_padded_frames_do_not_matter(lib):
    x, n = random_case(1, (9, 30, 4), 1)
    n[1] = 1  # a single real frame: std 0
    y = x.copy()
    pad = np.arange(30)[None, :] >= n[:, None]
    assert pad.any()
    y[pad] = np.random.default_rng(2).normal(size=(pad.sum(), 4)) * 1e4 + 500
    if lib == "torch":
        x, y, n = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(n).float()
    (mx, sx), (my, sy) = masked_mean_std(x, n, 1), masked_mean_std(y, n, 1)
    assert np.array_equal(np.asarray(mx), np.asarray(my))
    assert np.array_equal(np.asarray(sx), np.asarray(sy))
    assert (np.asarray(sx)[1] == 0).all()
    # and it is the plain statistic of the real frames alone
    xs = np.asarray(x, dtype=np.float64)
    for i, k in enumerate(np.asarray(n).astype(int)):
        np.testing.assert_allclose(np.asarray(mx)[i], xs[i, :k].mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(sx)[i], xs[i, :k].std(0), rtol=1e-5, atol=1e-5)


def test_full_rows_equal_plain_mean_and_std():
    x = np.random.default_rng(3).normal(size=(5, 17, 6)) * 10 - 4
    mean, std = masked_mean_std(x, np.full(5, 17), 1)
    np.testing.assert_allclose(mean, x.mean(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std, np.std(x, axis=1, ddof=0), rtol=1e-12, atol=1e-12)
    mean_t, std_t = masked_mean_std(torch.from_numpy(x), torch.full((5,), 17.0), 1)
    np.testing.assert_allclose(std_t.numpy(), np.std(x, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean_t.numpy(), x.mean(axis=1), rtol=1e-12, atol=1e-12)


def test_time_axis_cannot_be_the_rows():
    with pytest.raises(ValueError, match="axis 0"):
        masked_mean_std(np.zeros((3, 4)), np.ones(3), 0)


def test_valid_frames_rule():
    n = np.array([32000, 26320, 0, 1, 512, 513, 99999])
    assert valid_frames(n, 512, 63).tolist() == [63, 52, 1, 1, 1, 2, 63]
    assert valid_frames(n, 512, 63).dtype == np.int64
    k = valid_frames(torch.tensor(n, dtype=torch.float32), 512, 63)
    assert k.dtype == torch.float32 and k.tolist() == [63, 52, 1, 1, 1, 2, 63]
    # wav2vec2-base: hop 320, 99 frames per 2 s chunk
    assert valid_frames(torch.tensor([32000.0, 320.0, 321.0]), 320, 99).tolist() == [99, 1, 2]


def test_featstore_eda_imports_neither_torch_nor_models():
    code = ("import sys, featstore.pooling, featstore.eda; "
            "print(sorted({'torch', 'models'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# -- the callers, against the code they had before ---------------------------------------------
def old_view_mfcc(X: np.ndarray, n_samples: np.ndarray, hop: int) -> np.ndarray:
    """MFCCView.load's pooling (then in bench/views.py) before featstore.pooling existed."""
    k = np.clip(np.ceil(n_samples / hop).astype(int), 1, X.shape[1])
    w = (np.arange(X.shape[1])[None, :] < k[:, None]).astype(np.float32)[..., None]
    mean = (X * w).sum(1) / k[:, None]
    std = np.sqrt((((X - mean[:, None]) * w) ** 2).sum(1) / k[:, None])
    return np.concatenate([mean, std], axis=1).astype(np.float32)


def old_eda_frames(n_samples: np.ndarray, hop_length: int, n_frames: int) -> np.ndarray:
    n = np.ceil(np.asarray(n_samples, dtype=np.float64) / hop_length).astype(np.int64)
    return np.clip(n, 1, n_frames)


def old_eda_mean_std(mfcc: np.ndarray, n_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """featstore/eda.py chunk_mean_std before featstore.pooling existed."""
    mask = (np.arange(mfcc.shape[1])[None, :] < n_valid[:, None])[..., None]
    count = n_valid[:, None].astype(np.float64)
    x = mfcc.astype(np.float64)
    mean = (x * mask).sum(axis=1) / count
    var = (((x - mean[:, None, :]) ** 2) * mask).sum(axis=1) / count
    return mean, np.sqrt(var)


def old_wav2vec2_pool(h: torch.Tensor, n: torch.Tensor, hop: int) -> tuple[torch.Tensor, ...]:
    """The wav2vec2 extractor's pooling of stacked layers [B, G, T, D] before featstore.pooling."""
    frames = h.shape[2]
    k = torch.ceil(n / hop).clamp(1, frames)
    t = torch.arange(frames, device=h.device)
    w = (t[None, :] < k[:, None]).to(torch.float32)[..., None]
    mean = (h * w[:, None]).sum(2) / k[:, None, None]
    var = (((h - mean[:, :, None]) * w[:, None]) ** 2).sum(2) / k[:, None, None]
    return mean, var.sqrt()


@pytest.fixture(scope="module")
def padded_store(tmp_path_factory) -> Path:
    """An MFCC store whose utterances are mostly shorter than one 2 s chunk: zero-padded."""
    from featstore.cli import main
    from featstore.sources.synthetic import make_synthetic

    base = tmp_path_factory.mktemp("pooling")
    corpus = make_synthetic(base / "corpus", n_speakers=4, utterances_per_speaker=3,
                            seconds=(0.3, 2.6), seed=4)
    out = base / "store"
    assert main(["build", "--source", str(corpus), "--out", str(out), "--features", "mfcc",
                 "--device", "cpu", "--quiet", "--workers", "0"]) == 0
    return out


def test_mfcc_view_and_eda_unchanged(padded_store):
    with Store(padded_store) as store:
        info = store.features["mfcc"]
        hop = info.params["hop_length"]
        rows = np.arange(len(store))
        n_samples = store.meta["n_samples"].to_numpy()
        X = store.load("mfcc", rows)
        n_valid = old_eda_frames(n_samples, hop, info.shape[0])
        assert (n_valid < info.shape[0]).sum() >= 3  # padding is really exercised
        for sel in (rows, rows[1::2]):
            got = parse_view("mfcc").load(store, sel)
            want = old_view_mfcc(X[sel].astype(np.float32), n_samples[sel], hop)
            assert got.dtype == np.float32 and np.array_equal(got, want)  # bit-identical
        assert np.array_equal(eda.valid_frames(n_samples, hop, info.shape[0]), n_valid)
        got_mean, got_std = eda.chunk_mean_std(X, n_valid)
        want_mean, want_std = old_eda_mean_std(X, n_valid)
        assert got_mean.dtype == np.float64
        assert np.array_equal(got_mean, want_mean) and np.array_equal(got_std, want_std)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("group", [1, 3])
def test_wav2vec2_pooling_unchanged(device, group):
    g = torch.Generator().manual_seed(5)
    h = (torch.randn(8, group, 99, 32, generator=g) * 2 + 0.5).to(device)
    n = torch.tensor([32000, 31999, 20000, 641, 640, 320, 1, 1]).to(device).float()
    want_mean, want_std = old_wav2vec2_pool(h, n, 320)
    got_mean, got_std = masked_mean_std(h, valid_frames(n, 320, 99), axis=2)
    assert got_mean.dtype == torch.float32 and got_mean.device == h.device
    assert torch.equal(got_mean, want_mean) and torch.equal(got_std, want_std)  # bit-identical


def test_frame_shift_comes_from_the_recorded_params():
    from featstore.pooling import frame_shift

    assert frame_shift({"frame_shift": 160, "hop_length": 512}) == 160
    assert frame_shift({"hop_length": 256}) == 256  # stores written before frame_shift
    with pytest.raises(KeyError):
        frame_shift({"n_mfcc": 13})  # never a guessed default
