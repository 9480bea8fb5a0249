"""What the store's safety rests on, checked where it can be: flock and atomic rename on the
store folder (a mounted bucket may have neither), and a Ray actor's threads sized from its own
CPU share, not the node's cores."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from featstore import machine
from featstore.build_ray import ShardBuilder
from featstore.build_setup import BuildConfig
from featstore.cli import main
from featstore.extractors import ExtractContext
from featstore.store import folder, writer
from featstore.store.layout import PLAN, sha256_file


def build(corpus, out, *extra) -> int:
    return main(["build", "--source", str(corpus), "--out", str(out), "--features", "mfcc",
                 "--device", "cpu", "--quiet", "--workers", "0", "--shard-size", "8", *extra])


def test_a_filesystem_that_ignores_flock_is_refused(synthetic_corpus, tmp_path, monkeypatch,
                                                    capsys):
    monkeypatch.setattr(writer.fcntl, "flock", lambda fd, op: None)  # every lock "granted"
    capsys.readouterr()
    assert build(synthetic_corpus, tmp_path / "s") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not enforce flock" in err
    assert not list((tmp_path / "s" / "shards").glob("*.h5"))


def test_a_rename_that_does_not_replace_is_refused(synthetic_corpus, tmp_path, monkeypatch,
                                                   capsys):
    monkeypatch.setattr(folder.os, "replace", shutil.copyfile)  # copy, source left behind
    capsys.readouterr()
    assert build(synthetic_corpus, tmp_path / "s") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "atomic rename" in err


def test_storage_checks_pass_on_a_local_disk(synthetic_corpus, tmp_path):
    assert build(synthetic_corpus, tmp_path / "s") == 0
    assert not [p for p in (tmp_path / "s" / "shards").iterdir() if p.name.startswith(".tmp")]


@pytest.fixture
def many_cores(monkeypatch):
    """A 16-core node, whatever this machine has."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    yield
    machine.set_cpu_share(None)


def test_a_ray_actor_sizes_its_threads_from_its_cpu_share(synthetic_corpus, tmp_path,
                                                          many_cores, monkeypatch):
    """A CPU actor granted one CPU (``num_cpus=1``) of a 16-core node decodes on one thread and
    runs one MFCC block thread, where it started 8 and 16."""
    from featstore.extractors import blocks

    pools: list[int] = []
    real_pool = blocks.pool
    monkeypatch.setattr(blocks, "pool", lambda n: pools.append(n) or real_pool(n))
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1)  # a block per chunk: batches use the pool
    out = tmp_path / "s"
    assert build(synthetic_corpus, out) == 0
    cfg = BuildConfig(out=out, source=str(synthetic_corpus), features=["mfcc"], device="cpu")
    assert machine.decode_threads("cpu") == 8  # the node, without a share
    actor = ShardBuilder(str(out), sha256_file(out / PLAN), str(synthetic_corpus), cfg,
                         ExtractContext("cpu", 16000, 32000), None, cpus=1)
    assert isinstance(actor.check(), int), actor.check()
    assert actor.settings.decode_threads == 1 and machine.cores() == 1
    assert pools and set(pools) == {16}  # the build above, without a share: the node's cores
    pools.clear()
    report = actor.build(0)  # and it builds: the same shard, byte for byte
    assert pools and set(pools) == {1}  # MFCC blocks ran on a pool of one thread
    index = json.loads((out / "index.json").read_text())
    assert report["sha256"] == index["shards"][0]["sha256"]
