"""The batched YIN pitch extractor: known tones, silence and noise, padding, batch
independence, and agreement with librosa.pyin on real speech."""

import numpy as np
import pytest
import torch

from featstore.audio import cut, decode
from featstore.errors import UserError
from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors.configs import PitchConfig
from featstore.extractors.decimate import decimate, decimated_length

SR = 16000


def _pitch(batch: np.ndarray, n_samples=None, **kw) -> tuple[np.ndarray, np.ndarray]:
    ext = make_extractor("pitch", PitchConfig(**kw))
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
    n = torch.full((len(batch),), batch.shape[1]) if n_samples is None else torch.tensor(n_samples)
    out = ext.extract(x, n)
    return out["pitch/f0"], out["pitch/periodicity"]


def tone(f0: float, n: int = 32000, harmonics: int = 8, seed: int = 0) -> np.ndarray:
    """A harmonic tone with 1/k amplitudes and random phases."""
    t = np.arange(n) / SR
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, harmonics)
    return 0.3 * sum(np.sin(2 * np.pi * k * f0 * t + phases[k - 1]) / k
                     for k in range(1, harmonics + 1) if k * f0 < SR / 2)


def cents(a: np.ndarray, b: float | np.ndarray) -> np.ndarray:
    return 1200 * np.abs(np.log2(a / b))


def test_shape_and_frames_follow_the_hop():
    f0, per = _pitch(np.zeros((2, 32000)), hop_ms=5)
    assert f0.shape == per.shape == (2, 1 + 32000 // 80)
    assert f0.dtype == np.float32


@pytest.mark.parametrize("f0", [55.0, 85.0, 120.0, 220.0, 300.0, 480.0])
def test_harmonic_tones_within_10_cents(f0):
    est, per = _pitch(tone(f0)[None])
    inner = est[0, 5:-5]  # frames reaching into the chunk's edge padding may be unvoiced
    assert (inner > 0).all()
    assert cents(inner, f0).max() < 10
    assert per[0, 5:-5].min() > 0.9


def test_search_range_is_respected():
    # a 100 Hz tone searched in 150-500 Hz cannot come out at 100 Hz; searched in 50-500 it does
    f0, _ = _pitch(tone(100.0)[None], f0_min=150.0)
    assert (f0[f0 > 0] >= 150.0).all()
    assert np.median(cents(_pitch(tone(100.0)[None])[0][0, 5:-5], 100.0)) < 1


def test_silence_and_noise_are_unvoiced_and_finite():
    rng = np.random.default_rng(0)
    batch = np.stack([np.zeros(32000), rng.normal(size=32000) * 0.1,
                      rng.normal(size=32000) * 1e-4, rng.uniform(-1, 1, 32000)])
    f0, per = _pitch(batch)
    assert np.isfinite(f0).all() and np.isfinite(per).all()
    assert (f0[0] == 0).all() and (per[0] == 0).all()  # silence: d' = 1, periodicity 0
    assert (f0[1:] > 0).mean() < 0.02  # noise: (almost) never voiced
    assert ((per >= 0) & (per <= 1)).all()


def test_padded_tail_frames_are_unvoiced_and_never_read():
    """Frames centred in a short chunk's zero padding are unvoiced with periodicity 0, and
    ``n_samples`` only masks: the frames centred in real audio are what they are without it."""
    n = 20000
    x = tone(150.0)
    padded = x.copy()
    padded[n:] = 0.0
    f0, per = _pitch(padded[None], n_samples=[n])
    real = 1 + (n - 1) // 160  # frames whose centre t * 160 < n
    assert (f0[0, real:] == 0).all() and (per[0, real:] == 0).all()
    assert (f0[0, 5 : real - 5] > 0).all()
    f0_full, _ = _pitch(padded[None])
    np.testing.assert_array_equal(f0_full[0, :real], f0[0, :real])


def test_batch_independence():
    rng = np.random.default_rng(1)
    f0s, gains = np.geomspace(60, 450, 64), np.logspace(-3, 0, 64)
    batch = np.stack([tone(f, seed=i) * g for i, (f, g) in enumerate(zip(f0s, gains, strict=True))])
    batch[5] = 0.0
    batch[9] = rng.normal(size=32000) * 0.3
    counts = np.full(64, 32000)
    counts[31] = 12345
    batch[31, 12345:] = 0.0
    f0, per = _pitch(batch, n_samples=counts.tolist())
    for i in (0, 5, 9, 31, 63):
        one_f0, one_per = _pitch(batch[i : i + 1], n_samples=[int(counts[i])])
        np.testing.assert_allclose(one_f0[0], f0[i], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(one_per[0], per[i], rtol=1e-5, atol=1e-5)


def test_invalid_range_is_rejected():
    with pytest.raises(ValueError, match="f0_min < f0_max"):
        PitchConfig(f0_min=300.0, f0_max=200.0)
    with pytest.raises(UserError, match="bad pitch parameter: need 0 < f0_min < f0_max"):
        make_extractor("pitch", PitchConfig(f0_max=3000.0), ExtractContext(sample_rate=8000))


def test_agrees_with_librosa_pyin_on_real_speech(real_data):
    librosa = pytest.importorskip("librosa")
    paths = sorted(real_data.glob("test-other/*/*/*.flac"))[::25][:4]  # 4 speakers, M and F
    chunks = np.concatenate([cut(decode(str(p)).samples, 32000)[0][:2] for p in paths])
    ours, _ = _pitch(chunks)
    errors, both_voiced, ref_voiced = [], 0, 0
    for chunk, f0 in zip(chunks, ours, strict=True):
        ref, voiced, _ = librosa.pyin(chunk, fmin=50, fmax=500, sr=SR, frame_length=1024,
                                      hop_length=160)
        n = min(len(ref), len(f0))
        both = voiced[:n] & (f0[:n] > 0)
        errors.append(cents(f0[:n][both], ref[:n][both]))
        both_voiced += both.sum()
        ref_voiced += voiced[:n].sum()
    errors = np.concatenate(errors)
    assert both_voiced > 300 and both_voiced > 0.5 * ref_voiced  # a real comparison
    assert np.median(errors) < 50


def test_block_and_frame_correlations_agree():
    """The default settings take the block path (at 8 kHz, window and hop share 80-sample
    blocks); it gives the frame path's values to float32 rounding, on tones, noise, silence and
    a short chunk."""
    from featstore.extractors.pitch import PitchExtractor

    rng = np.random.default_rng(4)
    batch = np.stack([tone(f, seed=i) for i, f in enumerate((62.0, 140.0, 233.0, 410.0))]
                     + [rng.normal(size=32000) * 0.2, np.zeros(32000), tone(95.0) * 1e-3])
    batch[-1, 15000:] = 0.0
    counts = torch.tensor([32000] * 6 + [15000])
    x = torch.from_numpy(batch.astype(np.float32))
    ext = PitchExtractor(PitchConfig(), ExtractContext())
    assert ext.yin.method == "blocks"
    f0_b, per_b = (v.numpy() for v in ext.compute(x, counts))
    frames = PitchExtractor(PitchConfig(), ExtractContext(), method="frames")
    f0_f, per_f = (v.numpy() for v in frames.compute(x, counts))
    np.testing.assert_array_equal(f0_b > 0, f0_f > 0)
    assert (f0_b > 0).sum() > 600  # the tones are voiced: a real comparison
    np.testing.assert_allclose(f0_b, f0_f, rtol=1e-4)
    np.testing.assert_allclose(per_b, per_f, atol=1e-4)
    # the correlations themselves, at every lag the difference function reads
    m = decimated_length(32000, ext.q)  # YIN's input: the chunk at its rate, centred
    padded = torch.zeros((len(x), ext.yin.padded))
    decimate(x, ext.q, padded[:, ext.half : ext.half + m])
    corr_b = ext.yin.frame_correlations(ext.yin.correlations(padded))
    corr_f = frames.yin.frame_correlations(frames.yin.correlations(padded))
    scale = corr_f.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    assert ((corr_b - corr_f).abs() / scale).max() < 1e-5


def test_settings_without_shared_blocks_take_the_frame_path():
    from featstore.extractors.pitch import PitchExtractor

    context = ExtractContext()
    assert PitchExtractor(PitchConfig(hop_ms=5), context).yin.method == "blocks"  # 40 | 160
    assert PitchExtractor(PitchConfig(f0_min=150.0), context).yin.method == "frames"  # 54, 80
    f0, _ = _pitch(tone(220.0)[None], f0_min=150.0)
    assert cents(f0[0, 5:-5], 220.0).max() < 10


@pytest.mark.parametrize("method", ["blocks", "frames"])
def test_fused_cpu_pass_matches_the_torch_ops(method):
    """The CPU's fused numba pass (the default there) gives the torch ops' values (the CUDA
    path) to float32 rounding, voicing decisions included, on both correlation methods."""
    from featstore.extractors.pitch import PitchExtractor

    rng = np.random.default_rng(7)
    batch = np.stack([tone(f, seed=i) for i, f in enumerate((51.0, 77.0, 160.0, 350.0, 495.0))]
                     + [rng.normal(size=32000) * 0.2, np.zeros(32000), tone(120.0) * 1e-4,
                        tone(210.0) + rng.normal(size=32000) * 0.05])
    batch[6, 20000:21000] = tone(180.0)[:1000]  # a tone burst in silence
    counts = torch.tensor([32000] * 8 + [17000])
    x = torch.from_numpy(batch.astype(np.float32))
    fused = PitchExtractor(PitchConfig(), ExtractContext(), method=method)
    ops = PitchExtractor(PitchConfig(), ExtractContext(), method=method, backend="torch")
    assert fused.yin.backend == "numba" and ops.yin.method == method
    f0_n, per_n = (v.numpy() for v in fused.compute(x, counts))
    f0_t, per_t = (v.numpy() for v in ops.compute(x, counts))
    assert (f0_t > 0).sum() > 700  # most tone frames voiced: a real comparison
    np.testing.assert_array_equal(f0_n > 0, f0_t > 0)
    np.testing.assert_allclose(f0_n, f0_t, rtol=1e-5)
    np.testing.assert_allclose(per_n, per_t, atol=1e-5)
