"""featstore add --ray on a local Ray cluster: the same group files as a local add."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

import featstore
from featstore.cli import main
from featstore.store.verify import verify


def test_ray_add_equals_local_add(synthetic_corpus, tmp_path, ray_local):
    base = tmp_path / "base"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(base), "--features",
                 "mfcc", "--device", "cpu", "--quiet", "--workers", "0",
                 "--shard-size", "8"]) == 0
    local, remote = (Path(shutil.copytree(base, tmp_path / n)) for n in ("local", "ray"))
    add = ["--features", "pitch,audio", "--device", "cpu", "--quiet", "--workers", "0"]
    assert main(["add", str(local), *add]) == 0
    assert main(["add", str(remote), *add, "--ray"]) == 0
    a, b = featstore.open(local), featstore.open(remote)
    for name in ("pitch/f0", "pitch/periodicity", "audio", "mfcc"):
        np.testing.assert_array_equal(a.load(name), b.load(name))
    assert verify(remote) == []
    group = json.loads((remote / "index.json").read_text())["groups"]["pitch"]
    assert group["provenance"]["device"] == "cpu" and group["provenance"]["cluster"]["workers"]
    assert [f["sha256"] for f in group["files"]] == [
        f["sha256"] for f in json.loads((local / "index.json").read_text())["groups"]["pitch"][
            "files"]]


def test_ray_add_of_a_named_upstream(synthetic_corpus, tmp_path, ray_local, tiny_wav2vec2):
    """``add --ray --features NAME=MODEL``: the workers get the entry, not the bare name (a bare
    ``hubert`` is no extractor), and write what a local add writes (to float16 rounding: one
    torch thread per actor sums in another order)."""
    base = tmp_path / "base"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(base), "--features",
                 "mfcc", "--device", "cpu", "--quiet", "--workers", "0",
                 "--shard-size", "8"]) == 0
    local, remote = (Path(shutil.copytree(base, tmp_path / n)) for n in ("local", "ray"))
    add = ["--features", f"hubert={tiny_wav2vec2}", "--device", "cpu", "--quiet", "--workers",
           "0"]
    assert main(["add", str(local), *add]) == 0
    assert main(["add", str(remote), *add, "--ray"]) == 0
    a, b = featstore.open(local), featstore.open(remote)
    names = [n for n in a.features if n.startswith("hubert")]
    assert names and names == [n for n in b.features if n.startswith("hubert")]
    for name in names:  # one actor thread against two: float16 rounding steps at most
        np.testing.assert_allclose(a.load(name).astype(np.float32),
                                   b.load(name).astype(np.float32), rtol=2e-3, atol=1e-3)
    assert verify(remote) == []
