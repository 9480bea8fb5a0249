"""Cross-corpus evaluation: train on one store, test on the whole of another; the refusals
(other feature parameters, shared speakers, closed-set speaker ID) and the interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import featstore
from bench.cli import main
from bench.config import ConfigError, parse
from bench.crosscorpus import combined_interval, corpus_of, replicates
from featstore.cli import main as featstore_main


def build(corpus: Path, out: Path, *extra: str) -> Path:
    assert featstore_main(["build", "--source", str(corpus), "--out", str(out), "--features",
                           "mfcc", "--device", "cpu", "--quiet", "--workers", "0",
                           *extra]) == 0
    return out


@pytest.fixture(scope="module")
def other_readers(tmp_path_factory) -> Path:
    """A store of other speakers: a synthetic corpus whose ids are renamed (10001, ...)."""
    from featstore.sources.synthetic import make_synthetic

    root = make_synthetic(tmp_path_factory.mktemp("other") / "synth", n_speakers=6,
                          utterances_per_speaker=3, seed=5)
    for folder in sorted((root / "synthetic").iterdir()):
        new = str(int(folder.name) + 1000)
        for path in sorted(folder.rglob("*")):
            if path.is_file() and folder.name in path.name:
                path.rename(path.with_name(path.name.replace(folder.name, new, 1)))
        folder.rename(folder.with_name(new))
    speakers = root / "SPEAKERS.TXT"
    lines = [line if line.startswith(";") else str(int(line.split("|")[0]) + 1000).ljust(5)
             + "|" + line.split("|", 1)[1] for line in speakers.read_text().splitlines()]
    speakers.write_text("\n".join(lines) + "\n")
    return build(root, tmp_path_factory.mktemp("stores") / "other")


def config(path: Path, store: Path, test_store: Path, **tasks) -> Path:
    path.write_text(yaml.safe_dump({
        "store": str(store), "device": "cpu", "seeds": 2, "bootstrap": 100,
        "tasks": tasks or {
            "gender": {"test_store": str(test_store), "features": ["mfcc"],
                       "models": ["logreg"]},
            "verification": {"test_store": str(test_store), "features": ["mfcc"],
                             "models": ["cosine"]}}}))
    return path


def test_train_on_one_store_test_on_another(synthetic_store, other_readers, tmp_path):
    other = featstore.open(other_readers)
    assert not set(other.meta["speaker_id"]) & set(featstore.open(synthetic_store).meta
                                                   ["speaker_id"])
    out = tmp_path / "run"
    assert main(["run", str(config(tmp_path / "c.yaml", synthetic_store, other_readers)),
                 "--out", str(out), "--quiet"]) == 0
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs)
    gender = [r for r in recs if r["task"] == "gender"]
    for r in gender:  # tested on every chunk of the other store; trained on the whole split
        assert r["n_test"] == len(other) and r["test_store"] == str(other_readers)
        assert r["n_test_units"] == other.meta["speaker_id"].nunique()
        assert len(r["boot_replicates"]) == 100
        pred = np.load(out / r["predictions"])
        assert set(pred["utterance_id"]) == set(other.meta["utterance_id"])
    verification = [r for r in recs if r["task"] == "verification"]
    main_speakers = featstore.open(synthetic_store).meta["speaker_id"].nunique()
    assert all(r["n_train_units"] == main_speakers for r in verification)  # all train
    assert all(r["n_test_units"] == other.meta["speaker_id"].nunique() for r in verification)
    trials = (out / verification[0]["trials"]).read_text().split()
    assert set(trials[1::3]) | set(trials[2::3]) <= set(other.meta["utterance_id"])
    splits = json.loads((out / "splits.json").read_text())["gender"]["0"]
    assert splits["test_store"] == str(other_readers)
    assert set(splits["test"]) == set(other.meta["utterance_id"])
    board = (out / "leaderboard.md").read_text()
    assert f"tested on the whole store `{other_readers}`" in board
    row = next(line for line in board.split("## gender")[1].splitlines()
               if line.startswith("| 1 "))
    lo, hi = combined_interval([r["boot_replicates"] for r in gender])
    assert f"[{lo:.3f}, {hi:.3f}]" in row


def test_refusals_are_one_line(synthetic_store, synthetic_corpus, tmp_path, capsys):
    twenty = build(synthetic_corpus, tmp_path / "mfcc20", "--n-mfcc", "20")
    cases = [(twenty, "view 'mfcc' differs from store"),  # other feature parameters
             (synthetic_store, "speaker(s) are in both stores")]  # the same readers
    for i, (test, message) in enumerate(cases):
        cfg = config(tmp_path / f"c{i}.yaml", synthetic_store, test)
        assert main(["run", str(cfg), "--out", str(tmp_path / f"r{i}"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
        assert not (tmp_path / f"r{i}" / "results.jsonl").exists()
    with pytest.raises(ConfigError, match="closed-set speaker ID"):
        parse({"tasks": {"speaker": {"test_store": "x", "features": ["mfcc"],
                                     "models": ["logreg"]}}})
    cfg = config(tmp_path / "missing.yaml", synthetic_store, tmp_path / "nowhere")
    assert main(["run", str(cfg), "--out", str(tmp_path / "r9"), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err


def test_corpus_qualified_speakers(synthetic_store):
    assert corpus_of(featstore.open(synthetic_store)) == "LibriSpeech"


def test_combined_interval_widens_with_seed_spread():
    rng = np.random.default_rng(0)
    correct = rng.random(400) < 0.8
    clusters = np.repeat(np.arange(40), 10)
    reps = replicates(correct, clusters, 500)
    assert reps == replicates(correct, clusters, 500)  # the same draws for every seed
    same = combined_interval([reps, reps, reps])
    lo, hi = same
    assert lo < correct.mean() < hi
    spread = combined_interval([[x - 0.1 for x in reps], reps, [x + 0.1 for x in reps]])
    assert spread[1] - spread[0] > hi - lo
