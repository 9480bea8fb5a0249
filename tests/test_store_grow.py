"""A store that grows: featstore add / drop, crash safety, readers during an add, format 1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import featstore
from featstore.cli import main
from featstore.store.layout import sha256_file

ROOT = Path(__file__).resolve().parents[1]
BUILD = ["--device", "cpu", "--quiet", "--workers", "0", "--shard-size", "8"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _hashes(root: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.glob(pattern))}


@pytest.fixture(scope="module")
def small(tmp_path_factory, synthetic_corpus) -> Path:
    """mfcc and audio only, with the synthetic_store's shards."""
    out = tmp_path_factory.mktemp("grow") / "small"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
                 "mfcc,audio", *BUILD]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def _same_values(a: Path, b: Path, names) -> None:
    sa, sb = featstore.open(a), featstore.open(b)
    for name in names:
        np.testing.assert_array_equal(sa.load(name), sb.load(name), err_msg=name)


def test_add_equals_one_build_and_leaves_the_rest_alone(small, synthetic_store, tmp_path,
                                                        capsys):
    store = _copy(small, tmp_path / "s")
    before = _hashes(store, "shards/*.h5") | _hashes(store, "groups/*/*.h5")
    assert main(["add", str(store), "--features", "pitch,fbank", "--device", "cpu",
                 "--quiet"]) == 0
    after = _hashes(store, "shards/*.h5") | _hashes(store, "groups/*/*.h5")
    assert {k: after[k] for k in before} == before  # nothing already there was rewritten
    _same_values(store, synthetic_store, ["mfcc", "audio", "pitch/f0", "pitch/periodicity",
                                          "fbank"])
    index = json.loads((store / "index.json").read_text())
    group = index["groups"]["pitch"]
    assert group["params"]["f0_min"] == 50.0 and group["added"] and group["bytes"] > 0
    assert group["provenance"]["device"] == "cpu"
    assert index["features"]["pitch/f0"]["group"] == "pitch"
    assert not (store / "adding.json").exists()
    capsys.readouterr()
    assert main(["verify", str(store)]) == 0
    # the same add again: one line, nothing written
    files = _hashes(store, "groups/*/*.h5")
    assert main(["add", str(store), "--features", "pitch", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "already has pitch with these parameters" in err and err.count("\n") == 1
    assert _hashes(store, "groups/*/*.h5") == files
    assert json.loads((store / "index.json").read_text()) == index
    # other parameters: refused, naming drop
    assert main(["add", str(store), "--features", "pitch", "--f0-min", "60",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "f0_min" in err and f"featstore drop {store} --features pitch" in err
    assert err.count("\n") == 1


def test_add_decodes_the_source_when_the_store_has_no_audio(synthetic_corpus, synthetic_store,
                                                            tmp_path, capsys):
    store = tmp_path / "noaudio"
    assert main(["build", "--source", str(synthetic_corpus), "--out", str(store),
                 "--features", "mfcc", *BUILD]) == 0
    assert main(["add", str(store), "--features", "pitch", "--device", "cpu", "--quiet",
                 "--workers", "0"]) == 0
    _same_values(store, synthetic_store, ["pitch/f0", "pitch/periodicity"])
    # the corpus moved: --source; the identity check refuses other audio
    moved = shutil.copytree(synthetic_corpus, tmp_path / "moved")
    assert main(["add", str(store), "--features", "fbank", "--device", "cpu", "--quiet",
                 "--source", str(moved)]) == 0
    _same_values(store, synthetic_store, ["fbank"])
    flac = sorted(moved.glob("*/*/*/*.flac"))[3]
    import soundfile as sf

    wav, rate = sf.read(str(flac), dtype="int16")
    sf.write(str(flac), np.concatenate([wav, wav]), rate)  # longer: not the stored audio
    capsys.readouterr()
    assert main(["add", str(store), "--features", "audio", "--device", "cpu", "--quiet",
                 "--source", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "is not the audio" in err and flac.stem in err
    assert "audio" not in featstore.open(store).features  # the failed add published nothing


_SLOW_ADD = """
import sys, time
import featstore.add_input as ai
from featstore.cli import main
orig = ai.StoredAudio.batches
def slow(self, shard, size):
    for b in orig(self, shard, size):
        time.sleep(0.3)
        yield b
ai.StoredAudio.batches = slow
sys.exit(main(sys.argv[1:]))
"""


def _start_slow_add(store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SLOW_ADD, "add", str(store), "--features",
                             "pitch,fbank", "--device", "cpu", "--quiet", "--batch-size", "4",
                             *extra], env=_env(), stderr=subprocess.PIPE)


def test_kill_during_add_then_resume_gives_the_same_bytes(small, tmp_path, capsys):
    clean = _copy(small, tmp_path / "clean")
    assert main(["add", str(clean), "--features", "pitch,fbank", "--device", "cpu", "--quiet",
                 "--batch-size", "4"]) == 0
    store = _copy(small, tmp_path / "killed")
    before = _hashes(store, "shards/*.h5") | _hashes(store, "groups/*/*.h5")
    index_before = (store / "index.json").read_bytes()
    proc = _start_slow_add(store)
    deadline = time.time() + 120
    while time.time() < deadline and not list((store / "groups" / "pitch").glob("shard-*.h5")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    published = list((store / "groups" / "pitch").glob("shard-*.h5"))
    assert 1 <= len(published) < 4, "the kill came after the add finished"
    assert (store / "index.json").read_bytes() == index_before  # still the old store
    assert (store / "adding.json").exists()
    assert featstore.open(store).load("mfcc").shape[0] == len(featstore.open(small))
    capsys.readouterr()
    assert main(["add", str(store), "--features", "pitch,fbank", "--device", "cpu",
                 "--quiet"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["add", str(store), "--features", "pitch,fbank", "--device", "cpu", "--quiet",
                 "--batch-size", "4", "--resume"]) == 0
    after = _hashes(store, "shards/*.h5") | _hashes(store, "groups/*/*.h5")
    assert {k: after[k] for k in before} == before
    clean_files = _hashes(clean, "groups/*/*.h5")
    assert {k: v for k, v in after.items() if k.startswith("groups/")} == clean_files
    assert main(["verify", str(store)]) == 0


def test_drop_frees_the_space_and_verify_passes(small, tmp_path, capsys):
    store = _copy(small, tmp_path / "s")
    assert main(["add", str(store), "--features", "fbank", "--device", "cpu", "--quiet"]) == 0
    size = sum(p.stat().st_size for p in (store / "groups" / "fbank").glob("*.h5"))
    mfcc = _hashes(store, "groups/mfcc/*.h5")
    capsys.readouterr()
    assert main(["drop", str(store), "--features", "fbank"]) == 0
    assert f"{size / 1e6:.1f} MB freed" in capsys.readouterr().err
    assert not (store / "groups" / "fbank").exists()
    assert "fbank" not in featstore.open(store).features
    assert _hashes(store, "groups/mfcc/*.h5") == mfcc
    assert main(["verify", str(store)]) == 0
    assert main(["drop", str(store), "--features", "fbank"]) == 2  # no such feature now
    assert "no feature 'fbank'" in capsys.readouterr().err
    # a feature name drops its whole group; dropped, the same add works again
    assert main(["add", str(store), "--features", "fbank", "--device", "cpu", "--quiet"]) == 0
    _same_values(store, small, ["mfcc"])


_READER = """
import json, sys, time
import numpy as np
import featstore
path, stop = sys.argv[1], sys.argv[2]
old = featstore.open(path)
want = old.load("mfcc")
seen, n = set(), 0
import os
while not os.path.exists(stop) or n < 5:
    assert np.array_equal(old.load("mfcc"), want)  # the store opened before keeps reading
    fresh = featstore.open(path)  # opened now: the old index or the new one, never half
    seen.add(tuple(sorted(fresh.features)))
    for name in fresh.features:
        fresh.load(name, [0, len(fresh) - 1])
    fresh.close()
    n += 1
print(json.dumps({"reads": n, "seen": sorted(seen)}))
"""


def test_readers_are_not_broken_by_an_add(small, tmp_path):
    store = _copy(small, tmp_path / "s")
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(store), str(stop)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    time.sleep(1.0)
    assert main(["add", str(store), "--features", "pitch", "--device", "cpu", "--quiet"]) == 0
    time.sleep(0.5)
    stop.touch()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    result = json.loads(out)
    old = sorted(featstore.open(small).features)
    new = sorted(featstore.open(store).features)
    assert [list(s) for s in result["seen"]] in ([old, new], [new])
    assert result["reads"] >= 5


def _to_format_1(src: Path, dst: Path) -> Path:
    """The same store as the previous version wrote it: features inside the shard files."""
    out = _copy(src, dst)
    index = json.loads((out / "index.json").read_text())
    for i, shard in enumerate(index["shards"]):
        with h5py.File(out / "shards" / shard["file"], "a") as f:
            for entry in index["groups"].values():
                with h5py.File(out / entry["files"][i]["file"], "r") as g:
                    for name in g["features"]:
                        g.copy(f"features/{name}", f, name=f"features/{name}")
        shard["sha256"] = sha256_file(out / "shards" / shard["file"])
    shutil.rmtree(out / "groups")
    del index["groups"]
    index["format_version"] = 1
    for f in index["features"].values():
        del f["group"]
    (out / "index.json").write_text(json.dumps(index))
    return out


def test_format_1_stores_open_read_and_grow(small, synthetic_store, tmp_path, capsys):
    old = _to_format_1(small, tmp_path / "v1")
    assert main(["verify", str(old)]) == 0
    _same_values(old, small, ["mfcc", "audio"])
    assert main(["add", str(old), "--features", "pitch", "--device", "cpu", "--quiet"]) == 0
    _same_values(old, synthetic_store, ["mfcc", "pitch/f0"])
    assert main(["verify", str(old)]) == 0
    capsys.readouterr()
    assert main(["drop", str(old), "--features", "mfcc"]) == 2
    assert "format 1" in capsys.readouterr().err
    assert main(["drop", str(old), "--features", "pitch", "--quiet"]) == 0
    assert main(["verify", str(old)]) == 0


def test_bench_cell_keys_of_other_views_survive_an_add(small, tmp_path):
    import yaml

    from bench import config as bench_config
    from bench import plan

    store = _copy(small, tmp_path / "s")
    cfg_path = tmp_path / "bench.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "store": str(store), "device": "cpu", "seeds": 1, "bootstrap": 10,
        "tasks": {"gender": {"features": ["mfcc", "mfcc+pitch", "pitch", "fbank"],
                             "models": ["logreg"]}}}))
    cfg = bench_config.load(cfg_path)

    def keys() -> dict[str, str]:
        return {c.features: c.key for c in plan.plan(cfg, featstore.open(store), "cpu")}

    before = keys()
    assert main(["add", str(store), "--features", "pitch", "--device", "cpu", "--quiet"]) == 0
    after = keys()
    assert after["mfcc"] == before["mfcc"] and after["fbank"] == before["fbank"]
    assert after["pitch"] != before["pitch"] and after["mfcc+pitch"] != before["mfcc+pitch"]
    assert main(["drop", str(store), "--features", "pitch", "--quiet"]) == 0
    assert keys() == before


def test_info_lists_each_feature_with_size_params_and_added_time(small, tmp_path, capsys):
    store = _copy(small, tmp_path / "s")
    assert main(["add", str(store), "--features", "pitch", "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(store), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    f0 = out["features"]["pitch/f0"]
    group = json.loads((store / "index.json").read_text())["groups"]["pitch"]
    assert f0["group"] == "pitch" and f0["added"] == group["added"]
    assert f0["group_bytes"] == group["bytes"] > 0 and f0["params"]["f0_min"] == 50.0
    assert main(["info", str(store)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("pitch/f0"))
    assert "MB" in line and group["added"][:10] in line
