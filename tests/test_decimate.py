"""Pitch's decimation to its analysis rate: the filter's response, the CPU kernel against the
torch op, the factor each setting gets, and YIN at 8 kHz against YIN at 16 kHz."""

import numpy as np
import pytest
import torch

from featstore.audio import cut, decode
from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors import kernels as K
from featstore.extractors.configs import PitchConfig
from featstore.extractors.decimate import decimate, decimated_length, taps


def response_db(h: np.ndarray, freqs: np.ndarray, rate: float) -> np.ndarray:
    z = np.exp(-2j * np.pi * np.outer(freqs / rate, np.arange(len(h))))
    return 20 * np.log10(np.maximum(np.abs(z @ h), 1e-12))


def test_filter_keeps_speech_and_stops_what_would_alias():
    h = taps(2)
    assert len(h) == 47 and np.allclose(h, h[::-1]) and np.isclose(h.sum(), 1.0)
    db = response_db(h, np.arange(0, 8001, 10.0), 16000)
    f = np.arange(0, 8001, 10.0)
    assert np.abs(db[f <= 3600]).max() < 1.0  # flat to 3.6 kHz
    assert db[f >= 4700].max() < -60  # what would fold below 3.3 kHz is 60 dB down


@pytest.mark.parametrize("q", [2, 3])
@pytest.mark.parametrize("n", [32000, 31999, 40, 5])
def test_cpu_kernel_matches_the_torch_op(q, n):
    rng = np.random.default_rng(n + q)
    x = torch.from_numpy(rng.normal(size=(4, n)).astype(np.float32))
    m = decimated_length(n, q)
    buf = torch.full((4, m + 20), 7.0)  # a view inside a larger buffer, as YIN's
    fused = decimate(x, q, buf[:, 10 : 10 + m], K)
    ops = decimate(x, q, torch.empty(4, m))
    torch.testing.assert_close(fused, ops, rtol=0, atol=2e-6)
    assert (buf[:, :10] == 7).all() and (buf[:, 10 + m :] == 7).all()  # nothing outside


def test_output_sample_j_is_centred_on_input_sample_qj():
    h = taps(2)
    x = torch.zeros(2, 1000)
    x[0, 500] = 1.0  # at an even sample only the centre tap reaches an output: j = 250
    x[1, 501] = 1.0  # at an odd one, the odd taps reach j = 239 .. 262
    y = decimate(x, 2, torch.empty(2, 500), K).numpy()
    expected = np.zeros(500)
    expected[250] = h[23]
    np.testing.assert_allclose(y[0], expected, atol=1e-7)
    expected[250] = 0.0
    expected[239:263] = h[::2]
    np.testing.assert_allclose(y[1], expected, atol=1e-7)
    dc = decimate(torch.ones(1, 1000), 2, torch.empty(1, 500), K)[0].numpy()
    np.testing.assert_allclose(dc[20:-20], 1.0, atol=1e-6)  # unit gain away from the edges


def test_factor_per_setting():
    assert PitchConfig().decimation == 2 and PitchConfig().analysis().sample_rate == 8000
    assert PitchConfig().analysis().hop == 80
    assert PitchConfig(analysis_rate=16000).decimation == 1
    assert PitchConfig(sample_rate=8000).decimation == 1
    assert PitchConfig(sample_rate=48000).decimation == 6
    assert PitchConfig(sample_rate=44100).decimation == 3  # 441-sample hop: 5 and 4 do not divide
    assert PitchConfig(hop_ms=10.0625).decimation == 1  # a 161-sample hop
    assert PitchConfig(f0_max=2500.0).decimation == 1  # 8 kHz could not hold 4 f0_max


def test_params_record_the_rate_and_old_params_rebuild_undecimated():
    ext = make_extractor("pitch", PitchConfig(), ExtractContext())
    p = ext.params()
    assert (p["analysis_rate"], p["decimation"], p["yin_sample_rate"]) == (8000, 2, 8000)
    assert PitchConfig.from_dict(p) == PitchConfig()
    # params recorded before analysis_rate existed: YIN ran at the store's rate
    old = {k: v for k, v in p.items() if k != "analysis_rate"}
    assert PitchConfig.from_dict(old).decimation == 1


def test_yin_at_8_khz_agrees_with_16_khz_on_real_speech(real_data):
    paths = sorted(real_data.glob("test-other/*/*/*.flac"))[::10]
    chunks = np.concatenate([cut(decode(str(p)).samples, 32000)[0][:2] for p in paths])
    x, n = torch.from_numpy(np.ascontiguousarray(chunks)), torch.full((len(chunks),), 32000)
    low = make_extractor("pitch", PitchConfig()).extract(x, n)["pitch/f0"]
    full = make_extractor("pitch", PitchConfig(analysis_rate=16000)).extract(x, n)["pitch/f0"]
    both = (low > 0) & (full > 0)
    assert both.sum() > 500  # a real comparison
    assert ((low > 0) == (full > 0)).mean() > 0.95  # the same voicing decisions, nearly always
    cents = 1200 * np.abs(np.log2(low[both] / full[both]))
    assert np.median(cents) < 3
    assert (cents > 50).mean() < 0.05
