"""The batched Kaldi fbank: parity with torchaudio.compliance.kaldi.fbank, storage dtype,
batch independence, the int16-scale relation the README states."""

import math

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from featstore.audio import cut, decode
from featstore.errors import UserError
from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors.configs import FbankConfig


def _extractor(**kw):
    return make_extractor("fbank", FbankConfig(**kw))


def _reference(chunks: np.ndarray, bins: int = 80) -> np.ndarray:
    """torchaudio's Kaldi fbank, one chunk at a time, at our settings (Kaldi defaults, dither
    off)."""
    return np.stack([kaldi.fbank(torch.from_numpy(c)[None], num_mel_bins=bins, dither=0.0,
                                 sample_frequency=16000.0).numpy() for c in chunks])


def _compute(chunks: np.ndarray, **kw) -> np.ndarray:
    return _extractor(**kw).compute(torch.from_numpy(chunks)).numpy()


def test_parity_with_torchaudio_on_real_audio(real_data):
    paths = sorted(real_data.glob("test-other/*/*/*.flac"))[::20][:5]
    chunks = np.concatenate([cut(decode(str(p)).samples, 32000)[0][:3] for p in paths])
    ours, ref = _compute(chunks), _reference(chunks)
    assert ours.shape == ref.shape == (len(chunks), 198, 80)
    assert np.abs(ours - ref).max() < 1e-3  # README: measured ~1e-6
    assert ref.max() - ref.min() > 10  # real speech, not a degenerate input


@pytest.mark.parametrize("bins", [23, 80])
def test_parity_with_torchaudio_on_synthetic_audio(bins):
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    chunks = np.stack([0.3 * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.normal(size=32000),
                       rng.normal(size=32000) * 0.05 + 0.2,  # a DC offset: removed per frame
                       np.zeros(32000)]).astype(np.float32)  # silence: the epsilon floor
    ours = _compute(chunks, num_mel_bins=bins)
    assert ours.shape == (3, 198, bins)
    assert np.abs(ours - _reference(chunks, bins)).max() < 1e-3
    assert (ours[2] == np.float32(np.log(np.finfo(np.float32).eps))).all()


def test_stored_float16_and_float32():
    rng = np.random.default_rng(2)
    x = torch.from_numpy((rng.normal(size=(4, 32000)) * 0.1).astype(np.float32))
    n = torch.full((4,), 32000)
    exact = _extractor().compute(x).numpy()
    half = _extractor().extract(x, n)["fbank"]
    full = _extractor(dtype="float32").extract(x, n)["fbank"]
    assert half.dtype == np.float16 and full.dtype == np.float32
    np.testing.assert_array_equal(full, exact)
    # float16 keeps ~3 significant digits: 2^-8 absolute for log-mels of magnitude below 16
    assert np.abs(half.astype(np.float32) - exact).max() <= 2.0**-8


def test_int16_scale_adds_a_constant():
    """Kaldi / WeNet feed int16-scale samples: their log-mels are ours + 2 ln 32768."""
    x = (np.random.default_rng(3).normal(size=(2, 32000)) * 0.1).astype(np.float32)
    shift = _compute(x * 32768) - _compute(x)
    np.testing.assert_allclose(shift, 2 * math.log(32768), atol=1e-3)


def test_batch_independence():
    rng = np.random.default_rng(1)
    batch = (rng.normal(size=(64, 32000)) * np.logspace(-4, 0, 64)[:, None]).astype(np.float32)
    batch[5] = 0.0
    full = _compute(batch)
    for i in (0, 5, 31, 63):
        np.testing.assert_allclose(_compute(batch[i : i + 1])[0], full[i], rtol=1e-5, atol=1e-4)


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError, match="num_mel_bins"):
        FbankConfig(num_mel_bins=2)
    with pytest.raises(ValueError, match="dtype"):
        FbankConfig(dtype="int8")
    with pytest.raises(UserError, match="bad fbank parameter: need 0 <= low_freq"):
        # valid at 16 kHz, not at the store's 8 kHz: make_extractor checks with its rate
        make_extractor("fbank", FbankConfig(high_freq=6000.0), ExtractContext(sample_rate=8000))


def test_build_flags_reach_the_extractors(synthetic_corpus, tmp_path):
    import featstore
    from featstore.cli import main

    out = tmp_path / "s"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
                 "pitch,fbank", "--fbank-bins", "40", "--fbank-dtype", "float32", "--f0-min",
                 "60", "--f0-max", "400", "--pitch-hop-ms", "20", "--device", "cpu", "--quiet",
                 "--workers", "0"]) == 0
    features = featstore.open(out).features
    assert features["fbank"].shape == (198, 40) and features["fbank"].dtype == "float32"
    assert features["pitch/f0"].shape == (1 + 32000 // 320,)
    params = features["pitch/f0"].params
    assert (params["f0_min"], params["f0_max"], params["hop_length"]) == (60.0, 400.0, 320)
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(tmp_path / "bad"),
                 "--features", "pitch", "--f0-min", "400", "--f0-max", "300", "--quiet"]) == 2


def test_blocks_on_the_pool_give_the_one_block_values():
    """A batch split into cache-sized blocks on the thread pool gives the values of the same
    batch in one block, bit for bit."""
    rng = np.random.default_rng(5)
    x = torch.from_numpy((rng.normal(size=(9, 32000)) * 0.1).astype(np.float32))
    split, whole = _extractor(), _extractor()
    split.block, whole.block = 2, 64
    np.testing.assert_array_equal(split.compute(x).numpy(), whole.compute(x).numpy())


def test_fused_cpu_kernels_match_the_torch_ops(real_data):
    """The CPU's numba framing and power spectrum (the default there) give the torch ops'
    values (CUDA's path) to float32 rounding, on real speech, a DC offset and silence."""
    from featstore.extractors.fbank import FbankExtractor

    paths = sorted(real_data.glob("test-other/*/*/*.flac"))[::30][:3]
    chunks = np.concatenate([cut(decode(str(p)).samples, 32000)[0][:2] for p in paths]
                            + [np.full((1, 32000), 0.25, np.float32), np.zeros((1, 32000),
                                                                              np.float32)])
    fused = FbankExtractor(FbankConfig(), ExtractContext())
    ops = FbankExtractor(FbankConfig(), ExtractContext(), backend="torch")
    assert fused.kernels is not None and ops.kernels is None
    x = torch.from_numpy(chunks)
    a, b = fused.compute(x).numpy(), ops.compute(x).numpy()
    assert b[:-2].max() - b[:-2].min() > 10  # real speech, not a degenerate input
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)
    half_a, half_b = a.astype(np.float16), b.astype(np.float16)
    assert (half_a != half_b).mean() < 1e-3  # float16 storage: a rare rounding step at most
