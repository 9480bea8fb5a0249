"""Builds with wav2vec2 and raw audio in the feature list, through the CLI, with a tiny model."""

from __future__ import annotations

import json

import numpy as np

import featstore
from featstore.cli import main


def _build(corpus, out, model, *extra) -> int:
    return main(["build", "--source", str(corpus), "--out", str(out), "--features",
                 "mfcc,wav2vec2,audio", "--model", str(model), "--device", "cpu", "--quiet",
                 "--workers", "0", "--shard-size", "8", "--frames-layers", "1", *extra])


def test_wav2vec2_store_info_and_resume(synthetic_corpus, tiny_wav2vec2, tmp_path, capsys):
    out = tmp_path / "w2v"
    assert _build(synthetic_corpus, out, tiny_wav2vec2) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    w2v = report["features"]["wav2vec2/mean"]
    assert w2v["layers"] == [0, 1, 2] and w2v["dim"] == 32 and w2v["model"] == "tiny-w2v2"
    assert w2v["shape"] == [3, 32] and w2v["dtype"] == "float16"
    assert report["features"]["wav2vec2/frames/1"]["shape"] == [99, 32]
    assert report["features"]["audio"]["shape"] == [32000]
    assert main(["verify", str(out)]) == 0

    # lose one finished shard and the index, as if the build had died there; resume redoes it
    ref = featstore.open(out)
    ref_mean, ref_meta = ref.load("wav2vec2/mean"), ref.meta
    ref.close()
    (out / "index.json").unlink()
    (out / "shards" / "shard-00001.h5").unlink()
    assert _build(synthetic_corpus, out, tiny_wav2vec2, "--resume") == 0
    again = featstore.open(out)
    assert again.meta.equals(ref_meta)
    np.testing.assert_allclose(again.load("wav2vec2/mean").astype(np.float32),
                               ref_mean.astype(np.float32), atol=2e-3)
    assert main(["verify", str(out)]) == 0


def test_wav2vec2_layer_subset(synthetic_corpus, tiny_wav2vec2, tmp_path):
    out = tmp_path / "sub"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
                 "wav2vec2", "--model", str(tiny_wav2vec2), "--layers", "0,2", "--dtype",
                 "float32", "--device", "cpu", "--quiet", "--workers", "0"]) == 0
    store = featstore.open(out)
    assert store.features["wav2vec2/std"].shape == (2, 32)
    assert store.features["wav2vec2/std"].params["layers"] == [0, 2]
    assert (store.load("wav2vec2/std") >= 0).all()


def test_missing_model_leaves_no_store(synthetic_corpus, tmp_path, capsys):
    out = tmp_path / "none"
    assert _build(synthetic_corpus, out, tmp_path / "no-such-model") == 2
    assert "--model" in capsys.readouterr().err
    assert not out.exists()


def test_build_leaves_torch_threads_as_it_found_them(tiny_wav2vec2, tmp_path, monkeypatch):
    """torch's thread count is process-wide: a build inside a longer process (bench cells,
    tests) may use its own during extraction but must restore the caller's afterwards."""
    import os

    import torch

    from featstore.extractors import wav2vec2
    from featstore.sources.synthetic import make_synthetic

    corpus = make_synthetic(tmp_path / "corpus", n_speakers=2, utterances_per_speaker=1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # extraction wants 2
    during = []
    extract = wav2vec2.Wav2Vec2Extractor.extract
    monkeypatch.setattr(wav2vec2.Wav2Vec2Extractor, "extract",
                        lambda self, *a: during.append(torch.get_num_threads()) or
                        extract(self, *a))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["build", "--source", str(corpus), "--out", str(tmp_path / "s"),
                     "--features", "wav2vec2", "--model", str(tiny_wav2vec2), "--layers", "2",
                     "--device", "cpu", "--quiet", "--workers", "0"]) == 0
        assert during and set(during) == {2}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
