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
from bench import plan, runner
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
    for png in ("confusion_gender.png", "confusion_speaker.png", "leaderboard.png",
                "plots/pca-kmeans_gender_mfcc.png", "plots/pca-kmeans_speaker_mfcc.png"):
        assert (first_run / png).read_bytes()[:4] == b"\x89PNG"
    assert "[leaderboard.png](leaderboard.png)" in board and "Nadeau & Bengio" in board
    # the synthetic speakers read one chapter each: the speaker table says they share sessions
    assert "share a session" in board.split("## speaker")[1]


def test_records_hold_selection_and_intervals(first_run):
    """Selection inside the training data is recorded, and the leaderboard's interval is the
    corrected t interval of the per-seed accuracies it sits beside."""

    recs = [r for r in records(first_run) if r["model_kind"] == "classifier"]
    for r in recs:
        sel = r["selection"]
        assert sel["method"] == "cv" and r["n_val"] == 0
        if r["model"] in ("logreg", "mlp", "gmm"):  # models with a default grid
            assert sel["folds"] >= 2 and len(sel["candidates"]) >= 2
            assert sel["chosen"].items() <= r["final_params"].items()
            assert max(c["score"] for c in sel["candidates"]) == pytest.approx(sel["score"])
        assert 0 <= r["speaker_accuracy"] <= 1 and r["n_train_units"] > r["n_test_units"] > 0
    mlp = [r for r in recs if r["model"] == "mlp"]
    assert all("max_epochs" in r["selection"]["chosen"] for r in mlp)
    assert all(r["selection"]["iterations"] == "max_epochs" for r in mlp)
    logreg = sorted((r for r in recs if r["task"] == "gender" and r["model"] == "logreg"),
                    key=lambda r: r["seed"])
    # the corrected resampled t interval written out here, not by the function the report
    # calls: mean +- t_{J-1,0.975} sqrt((1/J + n_test/n_train) s^2); J = 2 seeds: t = 12.706
    acc = np.array([r["accuracy"] for r in logreg])
    ratio = (np.mean([r["n_test_units"] for r in logreg])
             / np.mean([r["n_train_units"] for r in logreg]))
    half = 12.7062047 * np.sqrt((1 / 2 + ratio) * np.sum((acc - acc.mean()) ** 2))
    lo, hi = max(0.0, acc.mean() - half), min(1.0, acc.mean() + half)
    board = (first_run / "leaderboard.md").read_text().split("## speaker")[0]
    row = next(line for line in board.splitlines() if "| logreg " in line)
    assert f"[{lo:.3f}, {hi:.3f}]" in row
    mlp_row = next(line for line in board.splitlines() if "| mlp " in line)
    assert "max_epochs~" in mlp_row  # epochs shown as the median over seeds


def test_resume_runs_nothing_new(first_run, config, count_fits):
    before = records(first_run)
    assert main(["run", str(config), "--out", str(first_run), "--resume", "--quiet"]) == 0
    assert count_fits == []
    assert records(first_run) == before


def test_report_holds_exactly_the_current_plan(first_run, config, tmp_path, count_fits):
    """--resume with other seeds / parameters / grid: the leaderboard shows this plan's cells
    only, and says how many records of other plans it ignored."""
    run = tmp_path / "replan"
    shutil.copytree(first_run, run)
    n_before = len(records(run))
    # fewer seeds and one model: every cell reused, the rest ignored
    assert main(["run", str(config), "--out", str(run), "--resume", "--quiet", "--seeds", "1",
                 "--tasks", "gender", "--models", "logreg"]) == 0
    assert count_fits == []
    board = (run / "leaderboard.md").read_text()
    rows = [line for line in board.splitlines() if line.startswith("| 1 ")]
    assert len(rows) == 1 and "| logreg " in rows[0] and rows[0].rstrip(" |").endswith("| 1")
    assert "## speaker" not in board
    assert f"{n_before - 1} record(s) of other plans in results.jsonl ignored" in board
    assert json.loads((run / "env.json").read_text())["ignored_records"] == n_before - 1
    # other parameters: a new cell runs; the old logreg cells stay in the file, unreported
    changed = write_config(tmp_path / "c.yaml", Path(yaml.safe_load(config.read_text())["store"]),
                           models={"logreg": {"C": 0.5}})
    assert main(["run", str(changed), "--out", str(run), "--resume", "--quiet", "--seeds", "1",
                 "--tasks", "gender", "--models", "logreg"]) == 0
    assert count_fits and len(records(run)) == n_before + 1
    board = (run / "leaderboard.md").read_text()
    rows = [line for line in board.splitlines() if line.startswith("| 1 ")]
    assert len(rows) == 1 and rows[0].rstrip(" |").endswith("| 1")
    assert f"{n_before} record(s) of other plans in results.jsonl ignored" in board


def test_second_run_into_the_same_folder_is_refused(first_run, config, tmp_path, capsys):
    from bench.results import RunLock

    run = tmp_path / "locked"
    shutil.copytree(first_run, run)
    before = (run / "results.jsonl").read_bytes()
    with RunLock(run):  # another `bench run` holding the folder
        assert main(["run", str(config), "--out", str(run), "--resume", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "another bench run is writing to" in err
        fresh = tmp_path / "fresh"
        with RunLock(fresh):
            assert main(["run", str(config), "--out", str(fresh), "--quiet"]) == 2
    assert (run / "results.jsonl").read_bytes() == before
    assert not (tmp_path / "fresh" / "results.jsonl").exists()
    # --resume of a folder that does not exist: refused, and no folder (or lock) is left
    assert main(["run", str(config), "--out", str(tmp_path / "absent"), "--resume",
                 "--quiet"]) == 2
    assert "holds no earlier run" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()


def test_resume_reruns_only_missing_cells(first_run, config, tmp_path, monkeypatch):
    run = tmp_path / "partial"
    shutil.copytree(first_run, run)
    lines = (run / "results.jsonl").read_text().splitlines()
    (run / "results.jsonl").write_text("\n".join(lines[:-3]) + "\n")
    cells = []
    execute = runner.execute_cell
    monkeypatch.setattr(runner, "execute_cell", lambda ctx, cell, *a: cells.append(cell.key)
                        or execute(ctx, cell, *a))
    assert main(["run", str(config), "--out", str(run), "--resume", "--quiet"]) == 0
    assert sorted(cells) == sorted(json.loads(x)["key"] for x in lines[-3:])
    assert {r["key"] for r in records(run)} == {json.loads(x)["key"] for x in lines}


class Broken(Classifier):
    def _fit(self, X, y, w, X_val, y_val, w_val):
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


def table_rows(report: str) -> list[dict]:
    """The rows of a ``bench compare`` table, by column name."""
    lines = [line for line in report.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]


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
    report = capsys.readouterr().out
    rows = table_rows(report)
    assert list(rows[0]) == ["task", "features", "model", "seed", "metric", "A", "B", "B − A",
                             "units", "p (sign-flip, per unit)", "p (McNemar, chunks)", "note"]
    gender = {(r["model"], r["seed"]): r for r in rows if r["task"] == "gender"}
    assert set(gender) == {("logreg", "0"), ("logreg", "all"), ("pca-kmeans", "0")}
    # same cell, same predictions: every unit's difference is 0, p = 1 on both tests
    logreg = gender["logreg", "0"]
    assert logreg["B − A"] == "+0.0000" and logreg["note"] == ""
    assert logreg["p (sign-flip, per unit)"] == "1" and logreg["p (McNemar, chunks)"] == "1"
    assert int(logreg["units"]) >= 2  # test speakers, not chunks
    pooled = gender["logreg", "all"]
    assert pooled["A"] == logreg["A"] and pooled["p (sign-flip, per unit)"] == "1"
    assert pooled["units"] == logreg["units"] and pooled["p (McNemar, chunks)"] == "–"
    assert gender["pca-kmeans", "0"]["metric"] == "ari"
    assert gender["pca-kmeans", "0"]["note"] == "clusters: no paired test"
    assert "Only in A:" in report

    assert main(["compare", str(first_run), str(other)]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [(r["seed"], r["note"]) for r in rows if r["model"] == "logreg"] == [
        ("0", "test chunks differ: no paired test")]  # other test split: no pooled row either


def test_compare_pairs_runs_on_separately_built_stores(first_run, synthetic_corpus, tmp_path,
                                                       capsys):
    """A second store built from the same audio has its own index (and hash), but the same
    chunks: compare pairs them by content."""
    from featstore.cli import main as featstore_main

    store = tmp_path / "rebuilt-store"
    assert featstore_main(["build", "--source", str(synthetic_corpus), "--out", str(store),
                           "--features", "mfcc,audio", "--device", "cpu", "--quiet",
                           "--workers", "0", "--shard-size", "8"]) == 0
    cfg = write_config(tmp_path / "rebuilt.yaml", store)
    run = tmp_path / "rebuilt"
    assert main(["run", str(cfg), "--out", str(run), "--models", "logreg", "--quiet"]) == 0
    capsys.readouterr()

    assert main(["compare", str(first_run), str(run)]) == 0
    report = capsys.readouterr().out
    rows = [r for r in table_rows(report) if r["model"] == "logreg"]
    assert [r["note"] for r in rows if r["seed"] != "all"] == [""] * 4
    assert sorted((r["task"], r["seed"]) for r in rows) == [
        ("gender", "0"), ("gender", "1"), ("gender", "all"),
        ("speaker", "0"), ("speaker", "1"), ("speaker", "all")]
    for r in rows:
        assert 0 < float(r["p (sign-flip, per unit)"]) <= 1 and int(r["units"]) >= 2
        if r["seed"] != "all":
            assert 0 < float(r["p (McNemar, chunks)"]) <= 1


def test_cell_keys_survive_a_rebuild_of_the_same_store(synthetic_corpus, tmp_path, monkeypatch):
    """Keys depend on the shards' checksums and parameters, not on when, where or by which
    command line the store was built: a rebuild with identical shards reuses every cell."""
    import sys

    from bench import config as bench_config
    from featstore.cli import main as featstore_main

    keys = []
    for n, name in enumerate(("a", "b")):
        monkeypatch.setattr(featstore.provenance, "now", lambda n=n: f"202{n}-01-01T00:00:00")
        monkeypatch.setattr(featstore.provenance.platform, "node", lambda name=name: name)
        monkeypatch.setattr(sys, "argv", ["featstore", "build", name])
        out = tmp_path / name
        assert featstore_main(["build", "--source", str(synthetic_corpus), "--out", str(out),
                               "--features", "mfcc", "--device", "cpu", "--quiet",
                               "--workers", "0", "--shard-size", "16"]) == 0
        store = featstore.open(out)
        cfg = bench_config.load(write_config(tmp_path / f"{name}.yaml", out))
        keys.append([c.key for c in plan.plan(cfg, store, "cpu")])
    assert keys[0] == keys[1] and len(set(keys[0])) == len(keys[0])
    store.shards[0]["sha256"] = "0" * 64  # other shard content: every key changes
    assert not set(keys[0]) & {c.key for c in plan.plan(cfg, store, "cpu")}


def test_leaky_split_stops_the_run(config, tmp_path, monkeypatch, capsys):
    real = plan.make_split

    def leaky(*args, **kwargs) -> Split:
        split = real(*args, **kwargs)
        return dataclasses.replace(split, test=np.sort(np.append(split.test, split.train[:1])))

    monkeypatch.setattr(plan, "make_split", leaky)
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
                                        r"--features mfcc,pitch,fbank,audio,wav2vec2`"):
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


def test_missing_views_stop_the_run_or_are_skipped_and_listed(synthetic_store, tmp_path,
                                                              capsys):
    """The synthetic store has no wav2vec2 features: an error by default; with
    --skip-missing-views those entries are skipped and listed with the build flag to add."""
    cfg = write_config(tmp_path / "w2v.yaml", synthetic_store, seeds=1, tasks={
        "gender": {"grid": [{"features": ["mfcc"], "models": ["logreg"]},
                            {"features": ["wav2vec2:all"], "models": ["logreg", "mlp"]}]}})
    assert main(["run", str(cfg), "--out", str(tmp_path / "a"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--features mfcc,pitch,fbank,audio,wav2vec2" in err[0]

    out = tmp_path / "b"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--skip-missing-views"]) == 0
    assert {r["features"] for r in records(out)} == {"mfcc"}
    board = (out / "leaderboard.md").read_text()
    skipped = board.split("## Skipped grid entries")[1]
    assert "wav2vec2:all" in skipped and "logreg, mlp" in skipped and "featstore build" in skipped
    env = json.loads((out / "env.json").read_text())
    assert env["skipped"][0]["features"] == "wav2vec2:all"

    only_missing = write_config(tmp_path / "none.yaml", synthetic_store, seeds=1, tasks={
        "gender": {"features": ["wav2vec2:6"], "models": ["logreg"]}})
    assert main(["run", str(only_missing), "--out", str(tmp_path / "c"), "--quiet",
                 "--skip-missing-views"]) == 2
