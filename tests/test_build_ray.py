"""featstore build --ray on a real local Ray cluster, with the real LibriSpeech sample: the same
rows as a local build, a worker killed mid-shard, --resume, and a worker that cannot see the
source."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import featstore
from featstore import build as build_module
from featstore.build_ray import CRASH_HOOK
from featstore.cli import main
from featstore.store.layout import INDEX, SHARDS, TMP_PREFIX, shard_name
from featstore.store.verify import verify

SHARDS_IN_TEST = 8  # 4 test-other speakers x 10 utterances, 5 per shard


def build(source: Path, out: Path, *extra: str) -> int:
    return main(["build", "--source", str(source), "--subsets", "test-other", "--speakers", "4",
                 "--features", "mfcc,audio", "--shard-size", "5", "--device", "cpu",
                 "--workers", "0", "--quiet", "--out", str(out), *extra])


def assert_same_rows(a: Path, b: Path) -> None:
    """Every feature row and label of store ``b`` equals store ``a``'s, in the same order."""
    sa, sb = featstore.open(a), featstore.open(b)
    assert len(sa) == len(sb) > 0
    assert sa.meta.equals(sb.meta)
    rows = np.arange(len(sa))
    assert set(sa.features) == set(sb.features) == {"mfcc", "audio"}
    for name in sa.features:
        np.testing.assert_array_equal(sa.load(name, rows), sb.load(name, rows))
    assert verify(b) == []


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, real_data) -> Path:
    out = tmp_path_factory.mktemp("local") / "store"
    assert build(real_data, out) == 0
    return out


@pytest.fixture(scope="module")
def ray_store(tmp_path_factory, real_data, ray_local) -> Path:
    out = tmp_path_factory.mktemp("ray") / "store"
    assert build(real_data, out, "--ray") == 0
    return out


def test_ray_build_equals_local_build(local_store, ray_store):
    assert_same_rows(local_store, ray_store)
    index = json.loads((ray_store / INDEX).read_text())
    assert len(index["shards"]) == SHARDS_IN_TEST
    cluster = index["provenance"]["cluster"]
    assert cluster["num_nodes"] == 1 and cluster["cpus"] == 2 and cluster["gpus"] == 0
    assert cluster["workers"] == {"actors": 2, "num_cpus": 1}
    assert sum(cluster["shards_built_by_node"].values()) == SHARDS_IN_TEST
    plan = json.loads((ray_store / "plan.json").read_text())
    assert plan == json.loads((local_store / "plan.json").read_text())  # same plan
    assert "cluster" not in json.loads((local_store / INDEX).read_text())["provenance"]


def test_worker_killed_mid_shard_still_gives_a_complete_store(local_store, real_data, tmp_path,
                                                              monkeypatch, ray_local):
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_HOOK, f"3:{marker}")
    out = tmp_path / "store"
    assert build(real_data, out, "--ray") == 0
    assert marker.exists()  # the worker building shard 3 died with its temporary file open
    assert_same_rows(local_store, out)
    assert not list((out / SHARDS).glob(TMP_PREFIX + "*"))


def test_shard_whose_worker_keeps_dying_stops_the_build_naming_it(local_store, real_data,
                                                                   tmp_path, monkeypatch, capsys,
                                                                   ray_local):
    monkeypatch.setenv(CRASH_HOOK, "2:")  # every attempt at shard 2 kills its worker
    out = tmp_path / "store"
    assert build(real_data, out, "--ray") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("featstore build: error: building on Ray failed")
    assert shard_name(2) in err and "--resume" in err
    assert not (out / INDEX).exists() and not (out / SHARDS / shard_name(2)).exists()
    monkeypatch.delenv(CRASH_HOOK)
    assert build(real_data, out, "--ray", "--resume") == 0
    assert_same_rows(local_store, out)


def test_resume_on_ray_builds_only_missing_shards(local_store, ray_store, real_data, tmp_path,
                                                  ray_local):
    out = tmp_path / "store"
    shutil.copytree(ray_store, out)
    for i in (1, 4):
        (out / SHARDS / shard_name(i)).unlink()
    (out / INDEX).unlink()
    stale = out / SHARDS / (TMP_PREFIX + shard_name(1))
    stale.write_bytes(b"half a shard from a killed worker")
    kept = {p.name: p.stat().st_mtime_ns for p in (out / SHARDS).glob("shard-*")}
    assert build(real_data, out, "--ray", "--resume") == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / SHARDS).glob("shard-*")
            if p.name in kept} == kept  # untouched
    assert not stale.exists()
    assert_same_rows(local_store, out)
    built = json.loads((out / INDEX).read_text())["provenance"]["cluster"]
    assert sum(built["shards_built_by_node"].values()) == 2


def test_worker_that_cannot_see_the_source_is_one_clear_line(real_data, tmp_path, monkeypatch,
                                                             capsys, ray_local):
    corpus = tmp_path / "LibriSpeech"
    speaker = next(p for p in sorted((real_data / "test-other").iterdir()) if p.is_dir())
    shutil.copytree(speaker, corpus / "test-other" / speaker.name)
    shutil.copy(real_data / "SPEAKERS.TXT", corpus)
    check = build_module.adopt_plan

    def then_hide(*args):  # planned from the corpus; the workers will not find it
        plan = check(*args)
        corpus.rename(tmp_path / "elsewhere")
        return plan

    monkeypatch.setattr(build_module, "adopt_plan", then_hide)
    rc = main(["build", "--source", str(corpus), "--features", "mfcc", "--device", "cpu",
               "--quiet", "--out", str(tmp_path / "store"), "--ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("featstore build: error: Ray worker on ")
    assert f"cannot see the source {corpus}" in err[-1] and "shared" in err[-1]


def test_without_ray_flag_build_never_imports_ray(synthetic_corpus, tmp_path):
    code = ("import sys; from featstore.cli import main; "
            f"rc = main(['build', '--source', {str(synthetic_corpus)!r}, '--out', "
            f"{str(tmp_path / 'store')!r}, '--features', 'mfcc', '--device', 'cpu', "
            "'--quiet']); assert rc == 0, rc; assert 'ray' not in sys.modules, 'ray imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
