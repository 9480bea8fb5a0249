"""Shared fixtures: the real LibriSpeech sample (skipped when absent) and small stores."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "LibriSpeech"


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "SPEAKERS.TXT").exists():
        pytest.skip(f"real LibriSpeech sample not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    from featstore.sources.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("corpus") / "synth", n_speakers=8,
                          utterances_per_speaker=4, seed=0)


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory, synthetic_corpus) -> Path:
    """An MFCC, pitch, fbank and audio store of the synthetic corpus, built through the CLI."""
    from featstore.cli import main

    out = tmp_path_factory.mktemp("stores") / "synth"
    rc = main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
               "mfcc,pitch,fbank,audio", "--device", "cpu", "--quiet", "--workers", "0",
               "--shard-size", "8"])
    assert rc == 0
    return out


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Downloads and generated corpora go to a temporary cache, never the user's."""
    import os

    os.environ["FEATSTORE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


def save_tiny_wav2vec2(path: Path) -> Path:
    """A tiny random wav2vec2 with base's conv stack (2 s -> 99 frames), saved like a hub model."""
    from featstore.perf.wav2vec2 import save_random_wav2vec2

    return save_random_wav2vec2(path, tiny=True)


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("models") / "tiny-w2v2")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster (2 CPUs) for the whole session: `--ray` finds it initialised in this
    process and uses it. Workers start from this process's environment."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
