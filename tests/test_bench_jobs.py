"""bench run --jobs N: cells on local worker processes give the numbers, predictions and plots
of a run in one process; one writer; --resume; a failed cell or a dead worker is recorded and
--resume finishes the run; bad values are one line."""

from __future__ import annotations

import json
import os

import pytest
from test_bench_ray import (
    assert_only_logreg_failed,
    assert_same_cells,
    break_logreg,
    records,
    write_config,
)

from bench import pool
from bench.cli import main
from bench.worker import run_cell


@pytest.fixture(scope="module")
def config(tmp_path_factory, synthetic_store):
    return write_config(tmp_path_factory.mktemp("cfg") / "bench.yaml", synthetic_store)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, config):
    out = tmp_path_factory.mktemp("runs") / "local"
    assert main(["run", str(config), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def jobs_run(tmp_path_factory, config):
    out = tmp_path_factory.mktemp("runs") / "jobs"
    assert main(["run", str(config), "--out", str(out), "--quiet", "--jobs", "2"]) == 0
    return out


def test_jobs_run_gives_the_one_process_numbers(local_run, jobs_run):
    assert_same_cells(local_run, jobs_run)
    assert json.loads((jobs_run / "env.json").read_text())["jobs"] == 2
    assert json.loads((local_run / "env.json").read_text())["jobs"] == 1
    board = (jobs_run / "leaderboard.md").read_text()
    assert "logreg" in board and "pca-kmeans" in board and "--jobs 2" in board


def test_jobs_resume_runs_nothing_finished(jobs_run, config):
    before = len(records(jobs_run))
    rc = main(["run", str(config), "--out", str(jobs_run), "--resume", "--quiet", "--jobs", "2"])
    assert rc == 0 and len(records(jobs_run)) == before


def test_failed_cell_in_a_worker_is_recorded(config, tmp_path, monkeypatch):
    break_logreg(monkeypatch)
    out = tmp_path / "broken"
    rc = main(["run", str(config), "--out", str(out), "--tasks", "gender", "--models",
               "logreg,majority", "--quiet", "--jobs", "2"])
    assert rc == 1
    assert_only_logreg_failed(out)


def die_on_logreg(job, cell, plot, device):
    """A worker killed while it runs a logreg cell (as by the OOM killer)."""
    if cell.model == "logreg":
        os._exit(9)
    return run_cell(job, cell, plot, device)


def test_a_dead_worker_fails_its_cells_and_resume_finishes(config, tmp_path, monkeypatch):
    monkeypatch.setattr(pool, "run_cell", die_on_logreg)
    out = tmp_path / "dead"
    args = ["run", str(config), "--out", str(out), "--tasks", "gender", "--models",
            "logreg,majority", "--quiet", "--jobs", "2"]
    assert main(args) == 1
    recs = records(out)
    assert any(r["status"] == "failed" and r["model"] == "logreg" for r in recs)
    assert all("BrokenProcessPool" in r["error"] for r in recs if r["status"] == "failed")
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0
    final = {r["key"]: r for r in records(out) if r["status"] == "ok"}
    assert len(final) == 4  # 2 models x 2 seeds, all ok now


@pytest.mark.parametrize("extra", [["--jobs", "0"], ["--jobs", "many"],
                                   ["--jobs", "2", "--ray"]])
def test_bad_jobs_are_one_line(config, tmp_path, capsys, extra):
    try:
        rc = main(["run", str(config), "--out", str(tmp_path / "x"), *extra])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--jobs" in err, err
