"""results.jsonl after a killed run: --resume repairs a torn last line before appending."""

from __future__ import annotations

import json
from pathlib import Path

from bench import results
from bench.runner import prepare_run_dir


def _record(n: int) -> dict:
    return {"key": f"k{n}", "task": "gender", "features": "mfcc", "model": "logreg", "seed": n,
            "status": "ok", "accuracy": 0.5 + n / 100}


def test_resume_drops_a_torn_last_line_and_keeps_every_whole_record(tmp_path: Path):
    whole = [_record(0), _record(1)]
    torn = json.dumps(_record(2), sort_keys=True)[:25]  # killed mid-write: no newline
    (tmp_path / results.RESULTS).write_text(
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in whole) + torn)
    prepare_run_dir(tmp_path, resume=True)
    assert (tmp_path / results.RESULTS).read_text().endswith("}\n")
    results.append(tmp_path, _record(3))
    assert results.read_all(tmp_path) == [*whole, _record(3)]


def test_repair_keeps_a_whole_record_that_lost_only_its_newline(tmp_path: Path):
    path = tmp_path / results.RESULTS
    path.write_text(json.dumps(_record(0)) + "\n" + json.dumps(_record(1)))
    results.repair(tmp_path)
    results.append(tmp_path, _record(2))
    assert results.read_all(tmp_path) == [_record(0), _record(1), _record(2)]
    before = path.read_bytes()
    results.repair(tmp_path)  # an intact file is left as it is
    assert path.read_bytes() == before


def test_repair_of_a_file_holding_only_a_fragment(tmp_path: Path):
    (tmp_path / results.RESULTS).write_text('{"key": "k0", "ta')
    results.repair(tmp_path)
    assert (tmp_path / results.RESULTS).read_text() == ""
    results.append(tmp_path, _record(0))
    assert results.read_all(tmp_path) == [_record(0)]
