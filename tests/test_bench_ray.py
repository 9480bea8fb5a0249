"""bench run --ray on a real local Ray cluster: the same numbers as a local run, one writer,
--resume, failed cells recorded, and a worker that cannot see the store stopping with one line."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench import runner
from bench.cli import main

MODELS = ["majority", "logreg", "mlp", "pca-kmeans"]
SCORES = ("accuracy", "f1", "balanced_accuracy", "utterance_accuracy", "accuracy_ci", "ari",
          "nmi", "purity")


def write_config(path: Path, store: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "store": str(store), "device": "cpu", "seeds": 2, "bootstrap": 50,
        "tasks": {"gender": {"features": ["mfcc"], "models": MODELS},
                  "speaker": {"features": ["mfcc"], "models": MODELS}},
        "models": {"mlp": {"hidden_sizes": [16], "max_epochs": 10, "patience": 3}},
    }))
    return path


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def config(tmp_path_factory, synthetic_store) -> Path:
    return write_config(tmp_path_factory.mktemp("cfg") / "bench.yaml", synthetic_store)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, config) -> Path:
    out = tmp_path_factory.mktemp("runs") / "local"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory, config, ray_local) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ray"
    assert main(["run", str(config), "--out", str(out), "--quiet", "--ray"]) == 0
    return out


def assert_same_cells(local_run: Path, other_run: Path) -> dict[str, dict]:
    """Every cell of ``other_run`` ok, with the one-process run's cell keys, scores,
    predictions (in its own run folder) and plots; returns its records by key."""
    local = {r["key"]: r for r in records(local_run)}
    other = {r["key"]: r for r in records(other_run)}
    assert set(local) == set(other) and len(local) == 2 * 2 * len(MODELS)  # same cell keys
    for key, rec in other.items():
        assert rec["status"] == "ok", rec.get("error")
        for score in SCORES:
            assert rec.get(score) == local[key].get(score), (rec["model"], score)
        with np.load(local_run / rec["predictions"]) as a, \
                np.load(other_run / rec["predictions"]) as b:
            assert all((a[k] == b[k]).all() for k in a.files)
    plots = sorted(p.name for p in (other_run / "plots").iterdir())
    assert plots == sorted(p.name for p in (local_run / "plots").iterdir()) and plots
    return other


def test_ray_run_gives_the_local_numbers(local_run, ray_run):
    # predictions came back to the driver's run folder, equal to the local ones
    remote = assert_same_cells(local_run, ray_run)
    assert all(rec["ray_node"] for rec in remote.values())  # each ran on a Ray worker


def test_ray_run_records_the_cluster_and_reports(ray_run, local_run):
    env = json.loads((ray_run / "env.json").read_text())
    assert env["cluster"]["num_nodes"] == 1 and env["cluster"]["cpus"] == 2
    assert env["cluster"]["nodes"][0]["gpus"] == 0
    assert "cluster" not in json.loads((local_run / "env.json").read_text())
    board = (ray_run / "leaderboard.md").read_text()
    assert "logreg" in board and "pca-kmeans" in board


def test_ray_resume_runs_nothing_finished(ray_run, config):
    before = len(records(ray_run))
    rc = main(["run", str(config), "--out", str(ray_run), "--resume", "--quiet", "--ray"])
    assert rc == 0 and len(records(ray_run)) == before


def break_logreg(monkeypatch) -> None:
    """Plan logreg cells with max_iter=0: they pass the driver (checks skipped) and raise in
    the process that fits them."""
    plan = runner.plan

    def broken_logreg(*args, **kwargs):
        cells = plan(*args, **kwargs)
        return [dataclasses.replace(c, params={**c.params, "max_iter": 0})
                if c.model == "logreg" else c for c in cells]

    monkeypatch.setattr(runner, "plan", broken_logreg)
    monkeypatch.setattr(runner, "preflight", lambda *a: None)


def assert_only_logreg_failed(out: Path) -> None:
    recs = records(out)
    assert {r["model"] for r in recs if r["status"] == "failed"} == {"logreg"}
    assert all("max_iter" in r["error"] for r in recs if r["status"] == "failed")
    assert [r["status"] for r in recs if r["model"] == "majority"] == ["ok", "ok"]
    assert "## Failed cells" in (out / "leaderboard.md").read_text()


def test_failed_cell_on_a_worker_is_recorded(config, tmp_path, monkeypatch, ray_local):
    """A cell that raises on its Ray worker is recorded as failed; the others still run."""
    break_logreg(monkeypatch)
    out = tmp_path / "broken"
    rc = main(["run", str(config), "--out", str(out), "--tasks", "gender", "--models",
               "logreg,majority", "--quiet", "--ray"])
    assert rc == 1
    assert_only_logreg_failed(out)


def test_worker_that_cannot_see_the_store_is_one_clear_line(config, synthetic_store, tmp_path,
                                                            monkeypatch, capsys, ray_local):
    store = tmp_path / "store"
    shutil.copytree(synthetic_store, store)
    cfg = write_config(tmp_path / "bench.yaml", store)
    prepare = runner.prepare_run_dir

    def then_hide(*args):  # the driver has read the store; the workers will not find it
        store.rename(tmp_path / "elsewhere")
        return prepare(*args)

    monkeypatch.setattr(runner, "prepare_run_dir", then_hide)
    rc = main(["run", str(cfg), "--out", str(tmp_path / "run"), "--models", "majority",
               "--quiet", "--ray"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("bench: error: Ray worker on ") and len(err.splitlines()) == 1
    assert f"cannot see the store {store}" in err and "shared" in err


def test_bad_ray_address_is_a_usage_error(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", str(config), "--ray", "not an address"])
    assert exc.value.code == 2
    assert "expected auto or a Ray address" in capsys.readouterr().err


def test_without_ray_flag_ray_is_never_imported(config, tmp_path):
    code = ("import sys; from bench.cli import main; "
            f"rc = main(['run', {str(config)!r}, '--out', {str(tmp_path / 'run')!r}, "
            "'--models', 'majority', '--seeds', '1', '--quiet']); "
            "assert rc == 0, rc; assert 'ray' not in sys.modules, 'ray imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
