"""store.extractor(name): an extractor rebuilt from the store's recorded parameters gives the
rows the store holds; configs round-trip through to_dict / from_dict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import featstore
from featstore.cli import main
from featstore.extractors.configs import CONFIGS
from featstore.store.featurize import config_type


@pytest.fixture(scope="module")
def w2v_store(tmp_path_factory, synthetic_corpus, tiny_wav2vec2):
    out = tmp_path_factory.mktemp("w2v") / "s"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
                 "mfcc,audio", "--device", "cpu", "--quiet", "--workers", "0",
                 "--shard-size", "8", "--n-mfcc", "20"]) == 0
    assert main(["add", str(out), "--features", "wav2vec2,pitch,fbank", "--model",
                 str(tiny_wav2vec2), "--f0-min", "70", "--pitch-hop-ms", "20", "--fbank-bins", "40",
                 "--fbank-dtype", "float32", "--device", "cpu", "--quiet"]) == 0
    return out


def _utterance(store, plan: dict, k: int):
    """Utterance ``k`` of the store: its decoded samples and its rows."""
    meta = store.meta
    utt = sorted(meta.utterance_id.unique())[k]
    path = next(u["path"] for u in plan["utterances"] if u["utterance_id"] == utt)
    samples, _ = sf.read(path, dtype="float32")
    return samples, np.flatnonzero(meta.utterance_id.to_numpy() == utt)


@pytest.mark.parametrize("name", ["mfcc", "pitch", "fbank", "wav2vec2", "audio"])
def test_stored_chunks_re_extracted_equal_their_rows(w2v_store, name):
    store = featstore.open(w2v_store)
    plan = json.loads((w2v_store / "plan.json").read_text())
    ex = store.extractor(name)
    assert ex.config.to_dict()["feature_type"] == name
    for k in (0, 5):  # one utterance of two chunks or more, and another
        samples, rows = _utterance(store, plan, k)
        got = ex(samples)
        assert set(got) == {n for n, f in store.features.items() if f.group == name}
        for feature, value in got.items():
            np.testing.assert_array_equal(value, store.load(feature, rows), err_msg=feature)


def test_recorded_parameters_come_back(w2v_store, tiny_wav2vec2):
    store = featstore.open(w2v_store)
    assert store.extractor("mfcc").config.n_mfcc == 20
    pitch, fbank = store.extractor("pitch").config, store.extractor("fbank").config
    assert (pitch.f0_min, pitch.hop_ms, pitch.sample_rate) == (70.0, 20.0, 16000)
    assert (fbank.num_mel_bins, fbank.dtype) == (40, "float32")
    assert store.features["pitch/f0"].params["hop_length"] == 320  # as recorded
    assert store.extractor("wav2vec2").config.model == str(tiny_wav2vec2)
    with pytest.raises(KeyError, match="no"):
        store.extractor("nope")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_round_trip(name):
    cls = config_type(name)
    config = cls()
    assert cls.from_dict(config.to_dict()) == config
    assert json.loads(json.dumps(config.to_dict()))["feature_type"] == name


def test_named_models_are_rebuilt_under_their_names(tmp_path, synthetic_corpus):
    from featstore.perf.wav2vec2 import save_random_upstream

    hubert = save_random_upstream(tmp_path / "tiny-hubert", "hubert")
    xvector = save_random_upstream(tmp_path / "tiny-xv", "wavlm", xvector=True)
    out = tmp_path / "s"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
                 f"hubert={hubert},xvector={xvector}", "--device", "cpu", "--quiet",
                 "--workers", "0", "--speakers", "2"]) == 0
    store = featstore.open(out)
    plan = json.loads((out / "plan.json").read_text())
    samples, rows = _utterance(store, plan, 0)
    got = store.extractor("hubert")(samples)
    assert set(got) == {"hubert/mean", "hubert/std"}
    for feature, value in got.items():  # other batch mates than the build's: float16 rounding
        stored = store.load(feature, rows)
        assert value.dtype == stored.dtype == np.float16
        np.testing.assert_allclose(value.astype(np.float32), stored.astype(np.float32),
                                   rtol=2**-10, atol=2**-20, err_msg=feature)
    ex = store.extractor("xvector")
    assert ex.config.model == str(xvector) and ex.config.compute_dtype == "float32"
    np.testing.assert_allclose(ex(samples)["xvector"], store.load("xvector", rows), atol=1e-4)


def _rchar() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def test_one_layer_reads_only_that_layer(w2v_store):
    store = featstore.open(w2v_store)
    info = store.features["wav2vec2/mean"]
    layers = info.params["layers"]
    assert len(layers) == info.shape[0] >= 3
    everything = store.load("wav2vec2/mean")
    rows = np.array([len(store) - 1, 0, 3, 3, 10])
    got = store.load("wav2vec2/mean", rows, layers=[layers[1]])
    np.testing.assert_array_equal(got, everything[rows][:, [1]])
    np.testing.assert_array_equal(store.load("wav2vec2/std", None, layers=layers[::-1]),
                                  store.load("wav2vec2/std")[:, ::-1])
    with pytest.raises(KeyError, match="no layer"):
        store.load("wav2vec2/mean", rows, layers=[99])
    path = w2v_store / store.file_of("wav2vec2/mean", 0)
    import h5py

    with h5py.File(path) as f:
        assert f["features/wav2vec2/mean"].chunks[1:] == (1, info.shape[1])  # a layer a chunk
    store.close()
    before = _rchar()
    store.load("wav2vec2/mean")
    every = _rchar() - before
    store.close()
    before = _rchar()
    store.load("wav2vec2/mean", layers=[layers[1]])
    one = _rchar() - before
    assert one < every / len(layers) * 1.5


def test_export_sees_added_features(w2v_store):
    store = featstore.open(w2v_store)
    ds = store.to_hf(["mfcc", "pitch/f0"], rows=[0, 1, 2]).with_format("numpy", dtype=None)
    np.testing.assert_array_equal(np.stack(ds["pitch/f0"]), store.load("pitch/f0", [0, 1, 2]))
