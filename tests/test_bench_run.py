"""End to end on the synthetic store: outputs, failure isolation, --resume, compare, views."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import featstore
import models
from bench import runner
from bench.cli import main
from bench.splits import Split
from bench.views import ViewError, parse_view
from models.base import Classifier, Clusterer

MODELS = ["majority", "logreg", "mlp", "gmm", "pca-kmeans"]
FIELDS = {"key", "task", "features", "model", "seed", "status", "accuracy", "precision",
          "recall", "f1", "balanced_accuracy", "utterance_accuracy", "accuracy_ci",
          "fit_seconds", "predict_seconds", "samples_per_second", "peak_host_mb",
          "peak_gpu_mb", "device", "n_train", "n_val", "n_test", "params", "info",
          "confusion", "labels", "predictions"}
CLUSTER_FIELDS = {"ari", "nmi", "v_measure", "purity", "silhouette"}


def write_config(path: Path, store: Path, **changes) -> Path:
    data = {
        "store": str(store), "device": "cpu", "seeds": 2, "bootstrap": 100,
        "tasks": {"gender": {"features": ["mfcc"], "models": MODELS},
                  "speaker": {"features": ["mfcc"], "models": MODELS}},
        "models": {"mlp": {"hidden_sizes": [16], "max_epochs": 15, "patience": 3}},
        **changes,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def config(tmp_path_factory, synthetic_store) -> Path:
    return write_config(tmp_path_factory.mktemp("cfg") / "bench.yaml", synthetic_store)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, config) -> Path:
    out = tmp_path_factory.mktemp("runs") / "first"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def count_fits(monkeypatch) -> list:
    calls: list = []
    fit = Classifier.fit

    def counted_fit(self, *a, **k):
        calls.append(type(self).__name__)
        return fit(self, *a, **k)

    monkeypatch.setattr(Classifier, "fit", counted_fit)
    for spec in models.MODELS.values():  # fit_predict is overridden by each clusterer
        cls = spec.factory if isinstance(spec.factory, type) else None
        if cls is not None and issubclass(cls, Clusterer):
            original = cls.fit_predict

            def counted(self, *a, _orig=original, **k):
                calls.append(type(self).__name__)
                return _orig(self, *a, **k)

            monkeypatch.setattr(cls, "fit_predict", counted)
    return calls


def test_run_writes_every_output(first_run, synthetic_store):
    recs = records(first_run)
    assert len(recs) == 2 * len(MODELS) * 2  # tasks x models x seeds
    assert all(r["status"] == "ok" for r in recs)
    assert len({r["key"] for r in recs}) == len(recs)
    for r in recs:
        if r["model"] == "pca-kmeans":
            assert CLUSTER_FIELDS <= set(r)
            assert 0 <= r["purity"] <= 1 and -1 <= r["ari"] <= 1
        else:
            assert FIELDS <= set(r), FIELDS - set(r)
            low, high = r["accuracy_ci"]
            assert low <= r["accuracy"] <= high
            assert sum(map(sum, r["confusion"])) == r["n_test"]
            assert r["fit_seconds"] >= 0 and r["samples_per_second"] > 0
        pred = np.load(first_run / r["predictions"])
        assert len(pred["rows"]) == len(pred["y_pred"]) == r["n_test"]
        assert Path(r["predictions"]).stem == r["key"]
    by = {(r["task"], r["model"]): r for r in recs if r["seed"] == 0}
    # the synthetic voices separate gender by pitch: logistic regression gets most right
    assert by["gender", "logreg"]["accuracy"] >= 0.8
    assert by["gender", "majority"]["accuracy"] == pytest.approx(by["gender", "majority"]
                                                                 ["chance_accuracy"])
    assert by["gender", "mlp"]["info"]["params"]["hidden_sizes"] == [16]

    splits = json.loads((first_run / "splits.json").read_text())
    meta = featstore.open(synthetic_store).meta
    for task in ("gender", "speaker"):
        assert set(splits[task]) == {"0", "1"}
        s = splits[task]["0"]
        assert set(s["train"]).isdisjoint(s["test"]) and s["test"]
        assert set(s["train"]) | set(s["test"]) <= set(meta["utterance_id"])
    spk = dict(zip(meta["utterance_id"], meta["speaker_id"], strict=True))
    g = splits["gender"]["1"]
    assert {spk[u] for u in g["train"]}.isdisjoint({spk[u] for u in g["test"]})

    board = (first_run / "leaderboard.md").read_text()
    env = json.loads((first_run / "env.json").read_text())
    assert str(synthetic_store) in board and env["config_hash"] in board
    assert "## gender" in board and "## speaker" in board
    assert "chance (test majority share)" in board
    assert "### Clustering" in board and "reduced settings**: no" in board
    gender_table = board.split("## gender")[1].split("### Clustering")[0]
    ranked = [line.split("|")[3].strip() for line in gender_table.splitlines()
              if line.startswith("| 1 ")]
    best = max((r for r in recs if r["task"] == "gender" and r["model"] != "pca-kmeans"),
               key=lambda r: np.mean([x["accuracy"] for x in recs if x["model"] == r["model"]
                                      and x["task"] == "gender"]))
    assert ranked == [best["model"]]
    assert {"versions", "device", "git_commit", "config", "config_hash", "command",
            "code_version"} <= set(env)
    for png in ("confusion_gender.png", "confusion_speaker.png",
                "plots/pca-kmeans_gender_mfcc.png", "plots/pca-kmeans_speaker_mfcc.png"):
        assert (first_run / png).read_bytes()[:4] == b"\x89PNG"


def test_resume_runs_nothing_new(first_run, config, count_fits):
    before = records(first_run)
    assert main(["run", str(config), "--out", str(first_run), "--resume", "--quiet"]) == 0
    assert count_fits == []
    assert records(first_run) == before


def test_resume_reruns_only_missing_cells(first_run, config, tmp_path, count_fits):
    run = tmp_path / "partial"
    shutil.copytree(first_run, run)
    lines = (run / "results.jsonl").read_text().splitlines()
    (run / "results.jsonl").write_text("\n".join(lines[:-3]) + "\n")
    assert main(["run", str(config), "--out", str(run), "--resume", "--quiet"]) == 0
    assert len(count_fits) == 3
    assert {r["key"] for r in records(run)} == {json.loads(x)["key"] for x in lines}


class Broken(Classifier):
    def _fit(self, X, y, X_val, y_val):
        raise RuntimeError("deliberately broken")

    def predict_proba(self, X):
        raise AssertionError("never reached")


def test_failing_cell_is_recorded_and_exit_code_is_1(config, tmp_path, monkeypatch, capsys):
    spec = models.MODELS["logreg"]
    monkeypatch.setitem(models.MODELS, "logreg", dataclasses.replace(spec, factory=Broken))
    out = tmp_path / "broken"
    rc = main(["run", str(config), "--out", str(out), "--tasks", "gender",
               "--models", "logreg,majority", "--quiet"])
    assert rc == 1
    recs = records(out)
    failed = [r for r in recs if r["status"] == "failed"]
    assert {r["model"] for r in failed} == {"logreg"} and len(failed) == 2
    assert all("deliberately broken" in r["error"] for r in failed)
    assert all(r["status"] == "ok" for r in recs if r["model"] == "majority")
    assert "## Failed cells" in (out / "leaderboard.md").read_text()
    assert "2 of 4 cell(s) failed" in capsys.readouterr().err


def test_compare_renders_markdown_with_p_values(first_run, config, synthetic_store, tmp_path,
                                                capsys):
    same = tmp_path / "same"
    assert main(["run", str(config), "--out", str(same), "--models", "logreg,pca-kmeans",
                 "--seeds", "1", "--quiet"]) == 0
    other_cfg = write_config(tmp_path / "other.yaml", synthetic_store, test_fraction=0.5)
    other = tmp_path / "other"
    assert main(["run", str(other_cfg), "--out", str(other), "--models", "logreg",
                 "--tasks", "speaker", "--seeds", "1", "--quiet"]) == 0
    capsys.readouterr()

    assert main(["compare", str(first_run), str(same)]) == 0
    table = capsys.readouterr().out
    assert "p (exact McNemar)" in table and table.count("| gender ") == 2
    logreg = next(line for line in table.splitlines() if "| gender " in line and "logreg" in line)
    cells = [c.strip() for c in logreg.strip("|").split("|")]
    assert cells[7] == "+0.0000" and cells[10] == "1"  # same cell, same predictions: p = 1
    assert "clusters: no paired test" in table and "Only in A:" in table

    assert main(["compare", str(first_run), str(other)]) == 0
    assert "test rows differ: no paired test" in capsys.readouterr().out


def test_leaky_split_stops_the_run(config, tmp_path, monkeypatch, capsys):
    real = runner.make_split

    def leaky(*args, **kwargs) -> Split:
        split = real(*args, **kwargs)
        return dataclasses.replace(split, test=np.sort(np.append(split.test, split.train[:1])))

    monkeypatch.setattr(runner, "make_split", leaky)
    out = tmp_path / "leaky"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 1
    assert "split leakage" in capsys.readouterr().err
    assert not (out / "results.jsonl").exists()


def test_views_on_an_mfcc_store(synthetic_store):
    store = featstore.open(synthetic_store)
    rows = np.array([0, 3, 7])
    mfcc = store.load("mfcc", rows)
    X = parse_view("mfcc").load(store, rows)
    assert X.shape == (3, 26) and X.dtype == np.float32
    full = store.meta["n_samples"].to_numpy()[rows] == 32000
    np.testing.assert_allclose(X[full, :13], mfcc[full].mean(1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(X[full, 13:], mfcc[full].std(1), rtol=1e-4, atol=1e-4)
    assert parse_view("mfcc-frames").load(store, rows).shape == (3, 63, 13)
    assert parse_view("audio").load(store, rows).dtype == np.int16
    with pytest.raises(ViewError, match=r"no wav2vec2 features: rebuild with `featstore build "
                                        r"--features mfcc,audio,wav2vec2`"):
        parse_view("wav2vec2:6").check(store)
    with pytest.raises(ViewError, match="--frames-layers 3"):
        parse_view("wav2vec2-frames:3").check(store)


def test_padded_chunk_pools_real_frames_only(synthetic_store):
    store = featstore.open(synthetic_store)
    meta = store.meta.copy()
    meta.loc[5, "n_samples"] = 10_000  # as if row 5 were a zero-padded last chunk
    store.__dict__["meta"] = meta  # Store.meta is a cached_property
    k = int(np.ceil(10_000 / 512))  # frames whose centre lies in the real samples
    mfcc = store.load("mfcc", [5])[0]
    X = parse_view("mfcc").load(store, np.array([5]))[0]
    np.testing.assert_allclose(X[:13], mfcc[:k].mean(0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(X[13:], mfcc[:k].std(0), rtol=1e-4, atol=1e-4)
    assert not np.allclose(X[:13], mfcc.mean(0))
