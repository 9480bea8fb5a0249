"""wav2vec2 and audio extractors, against a tiny random model saved to disk and loaded by path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

from featstore.errors import UserError
from featstore.extractors.audio import AudioExtractor
from featstore.extractors.base import EXTRACTORS, ExtractContext
from featstore.extractors.configs import AudioConfig, Wav2Vec2Config
from featstore.extractors.wav2vec2 import suggest_batch_size

SR, CHUNK = 16000, 32000
LAYERS, DIM = 2, 32


@pytest.fixture(scope="module")
def model_dir(tiny_wav2vec2: Path) -> Path:
    return tiny_wav2vec2


def make(model_dir: Path, **kw):
    """Through the registry, as the CLI does."""
    kw.setdefault("dtype", "float32")
    return EXTRACTORS["wav2vec2"](Wav2Vec2Config(model=str(model_dir), **kw), ExtractContext())


def speech(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # non-zero mean and small scale, so the normalisation matters
    return (torch.rand(b, CHUNK, generator=g) * 2 - 1) * 0.3 + 0.05


def reference(model_dir: Path, x: torch.Tensor, n: int = CHUNK) -> tuple[torch.Tensor, ...]:
    """Hidden states straight from transformers, its own feature extractor normalising."""
    fe = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    inputs = fe(x[:n].numpy(), sampling_rate=SR, padding="max_length", max_length=CHUNK,
                return_attention_mask=True, return_tensors="pt").input_values
    model = Wav2Vec2Model.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(inputs, output_hidden_states=True).hidden_states


def test_loads_by_path_specs_and_params(model_dir: Path) -> None:
    ext = make(model_dir)
    frames = int(Wav2Vec2Model.from_pretrained(model_dir)._get_feat_extract_output_lengths(CHUNK))
    assert frames == 99
    specs = {s.name: s for s in ext.specs()}
    assert set(specs) == {"wav2vec2/mean", "wav2vec2/std"}
    for s in specs.values():
        assert s.shape == (LAYERS + 1, DIM) and s.dtype == "float32"
        assert s.params["layers"] == [0, 1, 2] and s.params["dim"] == DIM
        assert s.params["model"] == "tiny-w2v2"
    p = ext.params()
    assert p["revision"] is None and p["num_layers_total"] == LAYERS + 1 and p["frames"] == frames
    assert p["normalize"] is True and p["compute_dtype"] == "float32"


@pytest.mark.parametrize("model", ["/nonexistent/w2v2", "bogus-org/no-such-model-xyz"])
def test_unloadable_model_is_one_line_user_error(model: str, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import time
    with pytest.raises(UserError) as err:
        EXTRACTORS["wav2vec2"](Wav2Vec2Config(model=model), ExtractContext())
    msg = str(err.value)
    assert "\n" not in msg and model in msg and "--model" in msg and "HF_HUB_OFFLINE=1" in msg


def test_batch_independence(model_dir: Path) -> None:
    ext = make(model_dir, frames_layers=(1,))
    x = speech(32, seed=1)
    n = torch.randint(CHUNK // 4, CHUNK + 1, (32,))
    n[0], n[1] = CHUNK, 7000  # a full and a padded chunk
    x[1, 7000:] = 0
    big = ext.extract(x, n)
    for i in (0, 1):
        one = ext.extract(x[i : i + 1], n[i : i + 1])
        for name, arr in one.items():
            scale = np.abs(arr).max()
            np.testing.assert_allclose(arr[0], big[name][i], rtol=1e-4, atol=1e-5 * scale,
                                       err_msg=name)


def test_pooled_and_frames_match_transformers(model_dir: Path) -> None:
    ext = make(model_dir, frames_layers=(0, 2))
    x = speech(3, seed=2)
    out = ext.extract(x, torch.full((3,), CHUNK))
    for i in range(3):
        hs = reference(model_dir, x[i])
        assert len(hs) == LAYERS + 1
        mean = torch.stack([h[0].mean(0) for h in hs]).numpy()
        std = torch.stack([h[0].std(0, unbiased=False) for h in hs]).numpy()
        np.testing.assert_allclose(out["wav2vec2/mean"][i], mean, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out["wav2vec2/std"][i], std, rtol=1e-4, atol=1e-4)
        for layer in (0, 2):
            frames = out[f"wav2vec2/frames/{layer}"][i]
            assert frames.shape == (99, DIM)
            np.testing.assert_allclose(frames, hs[layer][0].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [5000, 100])
def test_padded_chunk_pools_only_real_frames(model_dir: Path, n: int) -> None:
    ext = make(model_dir)
    x = speech(1, seed=3)[0]
    x[n:] = 0
    out = ext.extract(x[None], torch.tensor([n]))
    k = max(1, math.ceil(n / 320))  # frames starting inside real audio (hop 320 = 5 * 2**6)
    hs = reference(model_dir, x, n)
    mean = torch.stack([h[0, :k].mean(0) for h in hs]).numpy()
    std = torch.stack([h[0, :k].std(0, unbiased=False) for h in hs]).numpy()
    np.testing.assert_allclose(out["wav2vec2/mean"][0], mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["wav2vec2/std"][0], std, rtol=1e-4, atol=1e-4)
    all_frames = torch.stack([h[0].mean(0) for h in hs]).numpy()
    assert not np.allclose(out["wav2vec2/mean"][0], all_frames, atol=1e-3)


def test_layer_subset_and_storage_dtype(model_dir: Path) -> None:
    x, n = speech(2, seed=4), torch.full((2,), CHUNK)
    full = make(model_dir).extract(x, n)
    sub = make(model_dir, layers=(2, 0))
    assert [s.shape for s in sub.specs()] == [(2, DIM), (2, DIM)]
    assert sub.params()["layers"] == [2, 0]
    out = sub.extract(x, n)
    for stat in ("mean", "std"):
        np.testing.assert_allclose(out[f"wav2vec2/{stat}"], full[f"wav2vec2/{stat}"][:, [2, 0]],
                                   rtol=1e-5, atol=1e-6)
    half = make(model_dir, dtype="float16").extract(x, n)
    assert half["wav2vec2/std"].dtype == np.float16
    np.testing.assert_allclose(half["wav2vec2/std"], full["wav2vec2/std"], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"layers": (3,)}, "0..2"),
        ({"layers": (-1,)}, "0..2"),
        ({"layers": (1, 1)}, "0..2"),
        ({"frames_layers": (7,)}, "0..2"),
        ({"dtype": "int8"}, "float16"),
        ({"compute_dtype": "fp8"}, "bfloat16"),
    ],
)
def test_option_validation(model_dir: Path, kw: dict, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        make(model_dir, **kw)


def test_suggest_batch_size_cpu(model_dir: Path) -> None:
    ext = make(model_dir)
    bs = suggest_batch_size(ext.model, ext.context)
    assert isinstance(bs, int) and bs > 0


def test_audio_round_trip_and_clipping() -> None:
    ext = EXTRACTORS["audio"](AudioConfig(), ExtractContext())
    assert isinstance(ext, AudioExtractor)
    [spec] = ext.specs()
    assert spec.name == "audio" and spec.shape == (CHUNK,) and spec.dtype == "int16"
    assert ext.params() == {"sample_rate": SR, "dtype": "int16", "scale": 32768}
    x = speech(3, seed=5)
    x[2, :4] = torch.tensor([1.5, -2.0, 1.0, -1.0])
    pcm = ext.extract(x, torch.full((3,), CHUNK))["audio"]
    assert pcm.dtype == np.int16 and pcm.shape == (3, CHUNK)
    assert pcm[2, :4].tolist() == [32767, -32768, 32767, -32768]
    np.testing.assert_allclose(pcm[:2] / 32768, x[:2].numpy(), atol=0.5 / 32768)
