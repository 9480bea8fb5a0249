"""bench report: a finished run's leaderboard re-rendered from its files alone."""

from __future__ import annotations

import json
import shutil

import pytest
from test_bench_run import write_config

from bench.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_store):
    cfg = write_config(tmp_path_factory.mktemp("cfg") / "b.yaml", synthetic_store, seeds=1,
                       tasks={"gender": {"features": ["mfcc"], "models": ["majority", "logreg"]}})
    out = tmp_path_factory.mktemp("runs") / "r"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


def test_report_rewrites_the_leaderboard_without_the_store(run, tmp_path, synthetic_store):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    original = (copy / "leaderboard.md").read_text()
    (copy / "leaderboard.md").unlink()
    (copy / "leaderboard.png").unlink()
    hidden = tmp_path / "hidden-store"
    shutil.move(synthetic_store, hidden)  # the report must not need the store
    try:
        assert main(["report", str(copy)]) == 0
    finally:
        shutil.move(hidden, synthetic_store)
    assert (copy / "leaderboard.md").read_text() == original
    assert (copy / "leaderboard.png").stat().st_size > 0


def test_report_ignores_records_of_other_plans(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    lines = (copy / "results.jsonl").read_text().splitlines()
    stale = json.loads(lines[-1])
    stale.update(key="0" * 16, accuracy=0.0)  # a cell of some earlier plan
    (copy / "results.jsonl").write_text("\n".join([*lines, json.dumps(stale)]) + "\n")
    assert main(["report", str(copy)]) == 0
    board = (copy / "leaderboard.md").read_text()
    assert "0 record(s) of other plans" in (run / "leaderboard.md").read_text()
    assert "1 record(s) of other plans in results.jsonl ignored" in board
    assert board.replace("1 record(s) of other", "0 record(s) of other") == (
        run / "leaderboard.md").read_text()  # the stale record's accuracy reached no row


def test_report_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a bench run folder" in err
