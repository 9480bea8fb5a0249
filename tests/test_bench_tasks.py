"""The task contract (bench/tasks/): splits unchanged by the refactor, the session unit of the
speaker task, the code version derived from what cells import, and the rule text in one place."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import featstore
from bench import plan as bench_plan
from bench.cell import ViewCache, execute_cell
from bench.code_version import ROOT, cell_files, code_version
from bench.splits import make_split, split_groups
from bench.tasks import TASKS


def session_meta() -> pd.DataFrame:
    """Speakers with 1-3 chapters of 1-4 utterances of 1-3 chunks, two subsets."""
    rng = np.random.default_rng(7)
    rows = []
    for s in range(14):
        speaker, gender = str(200 + s), "F" if s % 2 else "M"
        n_ch = 1 if s % 3 == 0 else int(rng.integers(2, 4))
        for ch in range(n_ch):
            for u in range(1 if s == 0 else int(rng.integers(1, 5))):
                utt = f"{speaker}-{ch}-{u:04d}"
                for c in range(int(rng.integers(1, 4))):
                    rows.append({"utterance_id": utt, "speaker_id": speaker, "gender": gender,
                                 "chapter_id": str(ch),
                                 "subset": "dev-clean" if s % 4 else "test-other",
                                 "start_sample": 32000 * c, "n_samples": 32000})
    return pd.DataFrame(rows)


# sha256 of the row indices per part, computed by the code before the task refactor
# (bench/splits.py at cad9b7a) on session_meta(): gender and speaker splits must not move
BEFORE = {
    "gender/0": "865147300f35d09f", "gender/1": "cdfab31181e85650",
    "gender/2": "3bba549f607ce5f8", "gender/3": "821389151dee2e76",
    "gender/4": "5d0cdf3b3a6d8e1d", "speaker/0": "5cd7964724353f6c",
    "speaker/1": "34e2c20280b46164", "speaker/2": "428804b4b6490f36",
    "speaker/3": "845abe63b2428569", "speaker/4": "9373518418749603",
}


def test_gender_and_speaker_splits_are_unchanged_by_the_task_refactor():
    meta = session_meta()
    assert len(meta) == 150
    for name, digest in BEFORE.items():
        task, seed = name.split("/")
        split = make_split(meta, task, int(seed), validation_fraction=0.2, test_fraction=0.25)
        parts = json.dumps({p: r.tolist() for p, r in split.parts().items()})
        assert hashlib.sha256(parts.encode()).hexdigest()[:16] == digest, name


def test_speaker_unit_is_the_session_of_a_multi_chapter_speaker():
    meta = pd.DataFrame({"speaker_id": ["a", "a", "a", "b", "b"],
                         "chapter_id": ["1", "1", "2", "7", "7"],
                         "utterance_id": ["a-1-0", "a-1-1", "a-2-0", "b-7-0", "b-7-1"]})
    assert list(split_groups(meta, "speaker")) == ["a-1", "a-1", "a-2", "b-7-0", "b-7-1"]
    assert TASKS["speaker"].unit == "session" and TASKS["gender"].unit == "speaker"


def test_speaker_cells_count_sessions_as_units(synthetic_store, tmp_path):
    """Two chapters per synthetic speaker: the record's units, the CI's clusters and the
    predictions' paired-test units are the sessions, not the utterances."""
    from bench import config as bench_config
    from tests.test_bench_run import write_config

    store = featstore.open(synthetic_store)
    meta = store.meta
    rank = meta.groupby("speaker_id")["utterance_id"].rank(method="dense").to_numpy()
    meta["chapter_id"] = np.where(rank <= 2, "c1", "c2")  # utterances 1-2 / 3-4
    cfg = bench_config.load(write_config(tmp_path / "b.yaml", synthetic_store, seeds=1,
                                         tasks={"speaker": {"features": ["mfcc"],
                                                            "models": ["logreg"]}}))
    cells = bench_plan.plan(cfg, store, "cpu")
    from bench.cell import RunContext

    ctx = RunContext(cfg, store, "cpu", tmp_path, bench_plan.make_splits(cfg, store), True)
    rec = execute_cell(ctx, cells[0], ViewCache(), None)
    assert rec["status"] == "ok", rec.get("error")
    test = ctx.splits["speaker"][0].test
    sessions = (meta["speaker_id"] + "-" + meta["chapter_id"]).to_numpy()[test]
    assert rec["unit"] == "session"
    assert rec["n_test_units"] == len(set(sessions)) < len(set(meta["utterance_id"][test]))
    pred = np.load(tmp_path / rec["predictions"])
    assert sorted(set(pred["unit"])) == sorted(set(sessions))


def _copy_tree(dst: Path) -> Path:
    for pkg in ("bench", "models", "featstore"):
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_code_version_follows_what_cells_import(tmp_path):
    root = _copy_tree(tmp_path / "repo")
    files = {p.relative_to(root).as_posix() for p in cell_files(root)}
    # standardize.py was missing from the old hand list; cli / report / perf run in no cell
    assert {"featstore/standardize.py", "featstore/pooling.py", "bench/views/__init__.py",
            "models/logreg.py", "bench/tasks/speaker.py"} <= files
    # every module of the bench/views and bench/config packages, not only their __init__
    for package in ("views", "config"):
        assert {p.relative_to(root).as_posix() for p in (root / "bench" / package).glob("*.py")
                } <= files
    assert {"bench/verification/metrics.py", "bench/verification/backends.py"} <= files
    assert not files & {"bench/report.py", "bench/report_plots.py", "bench/cli.py",
                        "bench/compare.py", "bench/verification/report.py", "featstore/build.py"}
    assert not any(f.startswith(("featstore/perf/", "featstore/cli/")) for f in files)
    before = code_version(root)
    assert code_version(root) == before
    # a view / config function edited in its own module (each package was one file once)
    for moved, old, new in (("bench/views/upstream.py", "stack: bool = False", "stack: bool = 1"),
                            ("bench/config/entries.py", "low=1)", "low=2)")):
        original = (root / moved).read_text()
        assert old in original
        (root / moved).write_text(original.replace(old, new, 1))
        assert code_version(root) != before, moved
        (root / moved).write_text(original)
        assert code_version(root) == before
    with open(root / "bench/report.py", "a") as f:  # reports only: no cell reruns
        f.write("\n# a comment\n")
    assert code_version(root) == before
    with open(root / "featstore/standardize.py", "a") as f:
        f.write("\n# an edit\n")
    edited = code_version(root)
    assert edited != before
    # a new module imported lazily, inside a function, joins the hash by itself
    (root / "featstore/newhelper.py").write_text("X = 1\n")
    assert code_version(root) == edited
    with open(root / "models/logreg.py", "a") as f:
        f.write("\n\ndef _later():\n    from featstore import newhelper\n    return newhelper\n")
    with_import = code_version(root)
    (root / "featstore/newhelper.py").write_text("X = 2\n")
    assert code_version(root) != with_import


def test_each_task_owns_its_rule_text(capsys):
    from bench.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for task in TASKS.values():
        assert task.rule in out
    # the stale text `bench list` used to print: the speaker task splits by session first
    assert "split by utterance, every speaker on train" not in out


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_groups_are_the_units(name):
    meta = session_meta()
    groups = split_groups(meta, name)
    assert len(groups) == len(meta)
    # a group never spans two speakers
    assert (pd.Series(meta["speaker_id"].to_numpy()).groupby(groups).nunique() == 1).all()
