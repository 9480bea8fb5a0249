"""Faults: damaged stores (one line from info, verify, build --resume, bench run), bad shards
that --resume rebuilds, shards without a plan, and a full disk (one line, exit 1, nothing
left behind, then --resume to the clean build)."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

import featstore
from bench.cli import main as bench_main
from featstore.cli import main
from featstore.store import layout
from featstore.store.layout import INDEX, PLAN, SHARDS, TMP_PREFIX, shard_name

ROOT = Path(__file__).resolve().parents[1]
FEATURES = "mfcc,audio"


def build_args(corpus: Path, out: Path) -> list[str]:
    return ["build", "--source", str(corpus), "--out", str(out), "--features", FEATURES,
            "--device", "cpu", "--quiet", "--workers", "0", "--shard-size", "8"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory, synthetic_corpus) -> Path:
    out = tmp_path_factory.mktemp("clean") / "store"
    assert main(build_args(synthetic_corpus, out)) == 0
    return out


@pytest.fixture
def copy(clean, tmp_path) -> Path:
    out = tmp_path / "store"
    shutil.copytree(clean, out)
    return out


def assert_same_store(a: Path, b: Path) -> None:
    with featstore.open(a) as x, featstore.open(b) as y:
        assert len(x) == len(y) > 0
        assert x.meta.equals(y.meta)
        for name in ("mfcc", "audio"):
            np.testing.assert_array_equal(x.load(name), y.load(name))
    assert main(["verify", str(a)]) == 0


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def damage(store: Path, kind: str) -> str:
    """Damage ``store``; returns the file name the message must name."""
    if kind == "index":
        (store / INDEX).write_text('{"shards": [')
        return INDEX
    if kind == "plan":
        (store / PLAN).write_text("{not json")
        return PLAN
    (store / SHARDS / shard_name(1)).unlink()
    return shard_name(1)


@pytest.mark.parametrize("kind", ["index", "shard", "plan"])
def test_damaged_store_info_and_verify_are_one_line(copy, kind, capsys):
    name = damage(copy, kind)
    capsys.readouterr()
    rc = main(["info", str(copy)])
    err = capsys.readouterr().err
    if kind == "plan":  # the store reads without its plan
        assert rc == 0 and err == ""
    else:
        assert rc == 2 and name in one_line(err)
    assert main(["verify", str(copy)]) == 1
    fails = capsys.readouterr().err.strip().splitlines()
    assert fails and all(line.startswith("FAIL ") for line in fails)
    assert any(name in line for line in fails)


@pytest.mark.parametrize("kind", ["index", "shard"])
def test_resume_repairs_a_lost_index_or_shard(copy, clean, synthetic_corpus, kind, capsys):
    damage(copy, kind)
    assert main([*build_args(synthetic_corpus, copy), "--resume"]) == 0
    assert_same_store(copy, clean)


def test_resume_on_a_damaged_plan_is_one_line(copy, synthetic_corpus, capsys):
    damage(copy, "plan")
    capsys.readouterr()
    assert main([*build_args(synthetic_corpus, copy), "--resume"]) == 2
    line = one_line(capsys.readouterr().err)
    assert PLAN in line and "--overwrite" in line


@pytest.mark.parametrize("kind", ["index", "shard"])
def test_bench_run_on_a_damaged_store_is_one_line(copy, kind, tmp_path, capsys):
    name = damage(copy, kind)
    cfg = tmp_path / "bench.yaml"
    cfg.write_text(yaml.safe_dump({"store": str(copy), "device": "cpu", "seeds": 1,
                                   "tasks": {"gender": {"features": ["mfcc"],
                                                        "models": ["majority"]}}}))
    capsys.readouterr()
    assert bench_main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert name in one_line(capsys.readouterr().err)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _other_shard(path: Path) -> None:
    shutil.copyfile(path.with_name(shard_name(2)), path)


def _other_plan(path: Path) -> None:
    with h5py.File(path, "a") as f:
        f.attrs["plan_sha256"] = "0" * 64


def _other_utterances(path: Path) -> None:
    with h5py.File(path, "a") as f:
        del f.attrs["plan_sha256"]  # as a shard written before fingerprints
        ids = f["meta/utterance_id"]
        ids[0] = b"someone-else"


@pytest.mark.parametrize("spoil", [_truncate, _other_shard, _other_plan, _other_utterances])
def test_resume_rebuilds_a_bad_shard_instead_of_looping(copy, clean, synthetic_corpus, spoil,
                                                        capsys):
    (copy / INDEX).unlink()  # as after a killed build
    spoil(copy / SHARDS / shard_name(1))
    capsys.readouterr()
    assert main([*build_args(synthetic_corpus, copy), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{shard_name(1)} is not the planned shard" in err and "building it again" in err
    assert_same_store(copy, clean)


def test_resume_refuses_shards_without_a_plan(copy, synthetic_corpus, capsys):
    (copy / PLAN).unlink()
    (copy / INDEX).unlink()
    capsys.readouterr()
    assert main([*build_args(synthetic_corpus, copy), "--resume"]) == 2
    assert "no plan.json" in one_line(capsys.readouterr().err)
    assert not (copy / PLAN).exists()  # no fresh plan adopting the old shards


def _assert_full_disk_stop(rc: int, err: str, out: Path) -> None:
    line = one_line(err)
    assert rc == 1, err
    assert "no space left" in line and "shard-0000" in line and "--resume" in line
    assert " MB" in line  # how much space is needed
    assert not list((out / SHARDS).glob(TMP_PREFIX + "*"))
    assert not (out / INDEX).exists()


def test_full_disk_from_a_failing_write_stops_in_one_line(synthetic_corpus, clean, tmp_path,
                                                          monkeypatch, capsys):
    """A write that fails with ENOSPC partway through the second shard (past the free-space
    check, as when another process fills the disk meanwhile)."""
    out = tmp_path / "store"
    budget = {"left": int(1.5 * (clean / SHARDS / shard_name(0)).stat().st_size)}
    real = layout._write

    def write(fd, data):
        if len(data) > budget["left"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        budget["left"] -= len(data)
        return real(fd, data)

    monkeypatch.setattr(layout, "_write", write)
    capsys.readouterr()
    rc = main(build_args(synthetic_corpus, out))
    _assert_full_disk_stop(rc, capsys.readouterr().err, out)
    assert (out / SHARDS / shard_name(0)).exists()
    monkeypatch.undo()
    assert main([*build_args(synthetic_corpus, out), "--resume"]) == 0
    assert_same_store(out, clean)


@pytest.fixture
def small_disk(tmp_path):
    """A 5 MB tmpfs (room for two of the four shards), or a skip where mounting is not
    allowed (not root, or in a container without the capability)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", f"h17-{uuid.uuid4().hex[:6]}",
                          str(disk)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()[:100]}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_for_real_stops_in_one_line_and_resumes(synthetic_corpus, clean, small_disk):
    """The build as a new process into a filesystem that fills up: one line, exit 1 (it was a
    segmentation fault from h5py's deallocator, exit 139), then --resume once there is room."""
    out = small_disk / "store"
    cmd = [sys.executable, "-m", "featstore", *build_args(synthetic_corpus, out)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    _assert_full_disk_stop(res.returncode, res.stderr, out)
    subprocess.run(["mount", "-o", "remount,size=40m", str(small_disk)], check=True)
    res = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert_same_store(out, clean)
    index = json.loads((out / INDEX).read_text())
    assert len(index["shards"]) == 4
