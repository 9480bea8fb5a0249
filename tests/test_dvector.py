"""d-vectors: Resemblyzer's pretrained GE2E encoder, batched."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors.dvector import partial_starts

pytestmark = pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None,
                                reason="resemblyzer (its packaged weights) is not installed")
CHUNK = 32000


def speechlike(b: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Harmonic tones with a per-chunk pitch and a quiet one, so volume normalisation acts."""
    g = np.random.default_rng(seed)
    t = np.arange(CHUNK) / 16000
    rows = []
    for i in range(b):
        f0 = g.uniform(90, 250)
        x = sum(np.sin(2 * np.pi * f0 * h * t + g.uniform(0, 6)) / h for h in range(1, 8))
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2  # syllable-rate envelope
        rows.append(x * (0.001 if i == 1 else 0.1) + g.normal(0, 0.003, CHUNK))
    x = torch.tensor(np.stack(rows), dtype=torch.float32)
    n = torch.full((b,), CHUNK)
    n[-1] = 9000
    x[-1, 9000:] = 0.0
    return x, n


@pytest.fixture(scope="module")
def ext():
    return make_extractor("dvector", None, ExtractContext(chunk_samples=CHUNK))


def test_partials_follow_resemblyzer() -> None:
    assert partial_starts(CHUNK, 16000) == (0, 77)  # 2 s: two 1.6 s partials
    assert partial_starts(9000, 16000) == (0,)


def test_unit_norm_and_independent_of_batch_mates(ext) -> None:
    x, n = speechlike(5)
    out = ext.extract(x, n)["dvector"]
    assert out.shape == (5, 256) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    for i in range(5):
        alone = ext.extract(x[i : i + 1], n[i : i + 1])["dvector"][0]
        np.testing.assert_allclose(out[i], alone, atol=1e-5)
    other = ext.extract(torch.cat([x[2:3], speechlike(3, seed=9)[0]]),
                        torch.cat([n[2:3], torch.full((3,), CHUNK)]))["dvector"][0]
    np.testing.assert_allclose(out[2], other, atol=1e-5)


def test_padding_is_never_read(ext) -> None:
    x, n = speechlike(2)
    noisy = x.clone()
    noisy[-1, 9000:] = 0.5  # garbage past the real samples
    np.testing.assert_allclose(ext.extract(x, n)["dvector"], ext.extract(noisy, n)["dvector"],
                               atol=1e-6)


def test_parity_with_resemblyzers_own_embed(ext) -> None:
    """Same chunk, same preprocessing (volume normalisation, no VAD trimming)."""
    try:
        from resemblyzer import VoiceEncoder
        from resemblyzer.audio import normalize_volume
    except Exception as exc:  # noqa: BLE001 - its import needs webrtcvad, librosa
        pytest.skip(f"resemblyzer not importable: {type(exc).__name__}: {exc}")
    enc = VoiceEncoder("cpu", verbose=False)
    x, n = speechlike(3)
    ours = ext.extract(x, n)["dvector"]
    for i in range(3):
        wav = normalize_volume(x[i, : n[i]].numpy(), -30, increase_only=True)
        np.testing.assert_allclose(ours[i], enc.embed_utterance(wav), atol=1e-4)


def test_real_speech_parity(ext, real_data) -> None:
    try:
        from resemblyzer import VoiceEncoder
        from resemblyzer.audio import normalize_volume
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"resemblyzer not importable: {exc}")
    import soundfile as sf

    wav, _ = sf.read(sorted(real_data.glob("test-other/*/*/*.flac"))[0], dtype="float32")
    x = torch.from_numpy(np.stack([wav[:CHUNK], wav[CHUNK : 2 * CHUNK]]))
    ours = ext.extract(x, torch.full((2,), CHUNK))["dvector"]
    enc = VoiceEncoder("cpu", verbose=False)
    for i in range(2):
        ref = enc.embed_utterance(normalize_volume(x[i].numpy(), -30, increase_only=True))
        assert float(ours[i] @ ref) > 0.99999


def test_missing_weights_is_a_notice_in_the_default_build(monkeypatch, capsys) -> None:
    import featstore.extractors.dvector as dv
    from featstore.build import load_extractors
    from featstore.cli.build import OPTIONAL_BY_DEFAULT
    from featstore.errors import UserError

    real = importlib.util.find_spec
    monkeypatch.setattr(dv.importlib.util, "find_spec",
                        lambda name, *a: None if name == "resemblyzer" else real(name, *a))
    with pytest.raises(UserError, match="--no-deps"):
        make_extractor("dvector")
    assert "dvector" in OPTIONAL_BY_DEFAULT
    kept = load_extractors(["mfcc", "dvector"], {}, ExtractContext(), OPTIONAL_BY_DEFAULT)
    assert [e.name for e in kept] == ["mfcc"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dvector features skipped" in err
