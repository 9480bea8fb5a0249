"""Named self-supervised upstreams (NAME=MODEL) and x-vectors, against tiny random checkpoints
of each family saved with save_pretrained and loaded by path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from transformers import Wav2Vec2FeatureExtractor

from featstore.errors import UserError
from featstore.extractors import ExtractContext, make_extractor
from featstore.extractors.configs import Wav2Vec2Config
from featstore.perf.wav2vec2 import FAMILIES, save_random_upstream

CHUNK, N_PAD = 32000, 9000


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[tuple[str, bool], Path]:
    root = tmp_path_factory.mktemp("upstreams")
    return {(fam, ln): save_random_upstream(root / f"{fam}-{int(ln)}", fam, layer_norm=ln)
            for fam in FAMILIES for ln in (False, True) if not (fam == "data2vec-audio" and ln)}


def chunks(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(3, CHUNK, generator=g) * 2 - 1) * 0.3 + 0.05
    x[2, N_PAD:] = 0.0  # a zero-padded last chunk
    return x, torch.tensor([CHUNK, CHUNK, N_PAD])


def hidden_states(path: Path, family: str, audio: np.ndarray, mask: bool) -> tuple:
    """Hidden states straight from transformers, its feature extractor normalising."""
    fe = Wav2Vec2FeatureExtractor.from_pretrained(path)
    inputs = fe(audio, sampling_rate=16000, return_tensors="pt").input_values
    model = getattr(transformers, FAMILIES[family][1]).from_pretrained(path).eval()
    kw = {"attention_mask": torch.ones_like(inputs, dtype=torch.long)} if mask else {}
    with torch.no_grad():
        return model(inputs, output_hidden_states=True, **kw).hidden_states


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_loads_by_path_under_its_name(models, family) -> None:
    ext = make_extractor(f"ssl_x={models[family, False]}", Wav2Vec2Config(dtype="float32"))
    assert ext.name == "ssl_x"
    assert {s.name for s in ext.specs()} == {"ssl_x/mean", "ssl_x/std"}
    p = ext.params()
    assert p["model_type"] == family and p["layers"] == [0, 1, 2]
    assert p["attention_mask"] is (family == "data2vec-audio")  # its conv stack has layer norm
    out = ext.extract(*chunks())
    assert out["ssl_x/mean"].shape == (3, 3, 32) and np.isfinite(out["ssl_x/std"]).all()


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_layer_norm_padded_chunk_is_masked(models, family) -> None:
    """With a layer-norm encoder a padded chunk gets transformers' attention mask and is pooled
    over the frames it leaves unmasked."""
    path = models[family, family != "data2vec-audio"]
    ext = make_extractor(f"up={path}", Wav2Vec2Config(dtype="float32"))
    assert ext.masked
    x, n = chunks()
    got = ext.extract(x, n)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(path)
    inputs = fe(x[2, :N_PAD].numpy(), sampling_rate=16000, padding="max_length",
                max_length=CHUNK, return_attention_mask=True, return_tensors="pt")
    model = getattr(transformers, FAMILIES[family][1]).from_pretrained(path).eval()
    with torch.no_grad():
        hidden = model(**inputs, output_hidden_states=True).hidden_states
    k = int(model._get_feat_extract_output_lengths(N_PAD))
    want = torch.stack([h[0, :k] for h in hidden]).mean(1).numpy()
    np.testing.assert_allclose(got["up/mean"][2], want, atol=2e-4)
    if family != "data2vec-audio":  # (its stacked positional convs see past the mask)
        # one positional conv: the masked padded chunk is its real audio run alone
        alone = hidden_states(path, family, x[2, :N_PAD].numpy(), mask=True)
        want = torch.stack([h[0] for h in alone]).mean(1).numpy()
        np.testing.assert_allclose(got["up/mean"][2], want, atol=2e-4)
    # and the full chunks are unaffected by the padded one beside them
    single = ext.extract(x[:1], n[:1])
    np.testing.assert_allclose(got["up/mean"][0], single["up/mean"][0], atol=2e-5)


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm"])
def test_group_norm_padded_chunk_runs_unmasked(models, family) -> None:
    """Group norm: the unmasked forward of the zero-padded chunk, pooled over the frames whose
    receptive field starts in real audio (what the model saw in training)."""
    path = models[family, False]
    ext = make_extractor(f"up={path}", Wav2Vec2Config(dtype="float32"))
    assert not ext.masked
    x, n = chunks()
    got = ext.extract(x, n)["up/mean"][2]
    fe = Wav2Vec2FeatureExtractor.from_pretrained(path)
    padded = fe(x[2, :N_PAD].numpy(), sampling_rate=16000, padding="max_length",
                max_length=CHUNK, return_attention_mask=True,  # normalise over real samples
                return_tensors="pt").input_values
    model = getattr(transformers, FAMILIES[family][1]).from_pretrained(path).eval()
    with torch.no_grad():
        hidden = model(padded, output_hidden_states=True).hidden_states
    k = -(-N_PAD // 320)
    want = torch.stack([h[0, :k] for h in hidden]).mean(1).numpy()
    np.testing.assert_allclose(got, want, atol=2e-4)
    alone = torch.stack([h[0] for h in hidden_states(path, family, x[2, :N_PAD].numpy(),
                                                      mask=False)]).mean(1).numpy()
    assert np.abs(got - alone).max() > 1e-3  # group norm saw the padding: not the same


def test_wav2vec2_with_model_flag_is_unchanged(models) -> None:
    path = models["wav2vec2", False]
    a = make_extractor("wav2vec2", Wav2Vec2Config(model=str(path), dtype="float32"))
    b = make_extractor(f"wav2vec2={path}", Wav2Vec2Config(dtype="float32"))
    assert a.params() == b.params() and "model_type" not in a.params()
    x, n = chunks()
    np.testing.assert_array_equal(a.extract(x, n)["wav2vec2/mean"],
                                  b.extract(x, n)["wav2vec2/mean"])


@pytest.mark.parametrize("entry, message", [
    ("mfcc=foo", "built-in feature"), ("Hub-ert=foo", "lower-case"), ("hubert=", "give a model"),
    ("hubert=/no/such/dir", "does not exist"), ("nosuch", "unknown feature"),
])
def test_bad_entries_are_one_line_errors(entry, message) -> None:
    with pytest.raises(UserError, match=message) as err:
        make_extractor(entry)
    assert "\n" not in str(err.value)


def test_other_models_are_refused_in_one_line(tmp_path) -> None:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    cfg = WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16,
                        vocab_size=100, max_source_positions=64, max_target_positions=16,
                        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    WhisperModel(cfg).save_pretrained(tmp_path / "whisper")
    WhisperFeatureExtractor().save_pretrained(tmp_path / "whisper")
    with pytest.raises(UserError, match="supported: wav2vec2, hubert, wavlm, data2vec-audio"):
        make_extractor(f"whisper={tmp_path / 'whisper'}")


@pytest.mark.parametrize("layer_norm", [False, True])
def test_xvector_embeds_each_chunk_alone(tmp_path, layer_norm) -> None:
    path = save_random_upstream(tmp_path / "xv", "wavlm", xvector=True, layer_norm=layer_norm)
    ext = make_extractor(f"xvector={path}")
    assert [s.name for s in ext.specs()] == ["xvector"] and ext.masked is layer_norm
    x, n = chunks()
    out = ext.extract(x, n)["xvector"]
    assert out.shape == (3, 24) and np.isfinite(out).all()
    for i in range(3):  # no dependence on batch mates
        np.testing.assert_allclose(out[i], ext.extract(x[i : i + 1], n[i : i + 1])["xvector"][0],
                                   atol=1e-4)
    if layer_norm:  # masked: the padded chunk's embedding is that of its real audio alone
        alone = torch.from_numpy(np.asarray(x[2, :N_PAD]))[None]
        ref = make_extractor(f"xvector={path}", None, ExtractContext(chunk_samples=N_PAD))
        np.testing.assert_allclose(out[2], ref.extract(alone, torch.tensor([N_PAD]))["xvector"][0],
                                   atol=1e-4)


def test_xvector_refuses_a_model_without_xvector_head(models) -> None:
    with pytest.raises(UserError, match="ForXVector"):
        make_extractor(f"xvector={models['hubert', False]}")


def test_load_errors_name_the_entry_not_model_flag() -> None:
    with pytest.raises(UserError, match="as hubert=PATH") as err:
        make_extractor("hubert=/no/such/dir")
    assert "--model" not in str(err.value)
