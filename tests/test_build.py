"""End-to-end builds through the CLI: chunk counts, store format, resume, bad input, exit codes."""

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
import soundfile as sf

import featstore
from featstore.cli import main
from featstore.sources.synthetic import make_synthetic

ROOT = Path(__file__).resolve().parents[1]


def build(*args: str) -> int:
    return main(["build", "--device", "cpu", "--quiet", "--workers", "0", *args])


def info(store: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["info", str(store), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_chunk_counts_and_labels(synthetic_store, synthetic_corpus):
    store = featstore.open(synthetic_store)
    meta = store.meta
    expected = 0
    for flac in sorted(synthetic_corpus.glob("*/*/*/*.flac")):
        n = sf.info(str(flac)).frames
        expected += max(1, n // 32000)
        rows = meta[meta.utterance_id == flac.stem]
        assert len(rows) == max(1, n // 32000)
        assert rows.start_sample.tolist() == [32000 * i for i in range(len(rows))]
    assert len(store) == expected
    speakers = (synthetic_corpus / "SPEAKERS.TXT").read_text()
    for spk, gender in meta[["speaker_id", "gender"]].drop_duplicates().itertuples(index=False):
        assert f"{spk} " in speakers and f"| {gender} |" in speakers.split(f"\n{spk}")[1][:12]
    assert store.features["mfcc"].shape == (63, 13)
    assert store.features["audio"].shape == (32000,)


def test_audio_rows_match_the_corpus(synthetic_store):
    store = featstore.open(synthetic_store)
    meta = store.meta
    row = int(np.flatnonzero(meta.start_sample.to_numpy() == 32000)[0])
    utt = meta.iloc[row]
    plan = json.loads((synthetic_store / "plan.json").read_text())
    path = next(u["path"] for u in plan["utterances"] if u["utterance_id"] == utt.utterance_id)
    pcm, _ = sf.read(str(path), dtype="int16")  # a 16-bit file: stored bit for bit
    np.testing.assert_array_equal(store.load("audio", [row])[0], pcm[32000:64000])


def test_store_format(synthetic_store):
    index = json.loads((synthetic_store / "index.json").read_text())
    assert len(index["shards"]) > 1  # shard-size 8 over 32 utterances
    for i, shard in enumerate(index["shards"]):
        files = {"shards/" + shard["file"]: ("meta/utterance_id", "meta/n_samples")}
        for group, names in (("mfcc", ["features/mfcc"]), ("audio", ["features/audio"])):
            entry = index["groups"][group]["files"][i]
            assert entry["file"] == f"groups/{group}/{shard['file']}"
            assert entry["rows"] == shard["rows"]
            files[entry["file"]] = names
        for rel, names in files.items():
            with h5py.File(synthetic_store / rel) as f:
                assert "features" not in f or rel.startswith("groups/")  # features apart
                for name in names:
                    ds = f[name]
                    assert ds.fletcher32 and ds.chunks and ds.shape[0] == shard["rows"]
    prov = index["provenance"]
    assert prov["params"]["extractors"]["mfcc"]["n_fft"] == 2048
    assert prov["versions"]["torch"] and prov["versions"]["h5py"]
    assert prov["created"] and prov["params"]["chunk_policy"]
    assert not list((synthetic_store / "shards").glob(".tmp-*"))


def test_reader_rows_and_order(synthetic_store):
    store = featstore.open(synthetic_store)
    everything = store.load("mfcc")
    rows = np.array([len(store) - 1, 0, 5, 5, 17])
    np.testing.assert_array_equal(store.load("mfcc", rows), everything[rows])
    mask = (store.meta.gender == "F").to_numpy()
    np.testing.assert_array_equal(store.load("mfcc", mask), everything[mask])
    with pytest.raises(KeyError, match="no feature"):
        store.load("wav2vec2/mean")


def test_reader_in_dataloader_workers(synthetic_store):
    import torch

    store = featstore.open(synthetic_store)
    _ = store.load("mfcc", [0])  # parent opens handles before the fork
    ds = store.torch_dataset("mfcc", label="gender")
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2,
                                         multiprocessing_context="fork")
    got = torch.cat([b["mfcc"] for b in loader]).numpy()
    np.testing.assert_array_equal(got, store.load("mfcc"))


def test_info_json(synthetic_store, capsys):
    out = info(synthetic_store, capsys)
    assert out["num_utterances"] == 32 and out["num_speakers"] == 8
    assert out["speakers_by_gender"] == {"F": 4, "M": 4}
    assert out["features"]["mfcc"]["shape"] == [63, 13]
    assert out["num_chunks"] == len(featstore.open(synthetic_store))
    assert out["hours"] > 0 and out["problems"] == []


def test_verify_detects_corruption(synthetic_store, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_store, copy)
    assert main(["verify", str(copy)]) == 0
    shard = sorted((copy / "groups" / "mfcc").glob("*.h5"))[0]
    with h5py.File(shard) as f:  # where the first MFCC rows lie in the file
        at = f["features/mfcc"].id.get_chunk_info(0).byte_offset + 1000
    data = bytearray(shard.read_bytes())
    for i in range(at, at + 64):
        data[i] ^= 0xFF
    shard.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "sha256 does not match" in err
    assert "checksum" in err or "unreadable" in err  # fletcher32 catches it too
    shard.unlink()
    assert main(["verify", str(copy)]) == 1
    assert "missing" in capsys.readouterr().err


def test_verify_detects_nan(synthetic_store, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(synthetic_store, copy)
    shard = sorted((copy / "groups" / "mfcc").glob("*.h5"))[0]
    with h5py.File(shard, "a") as f:
        f["features/mfcc"][0, 0, 0] = np.nan
    capsys.readouterr()
    assert main(["verify", str(copy)]) == 1
    assert "non-finite" in capsys.readouterr().err


def test_existing_store_needs_resume_or_overwrite(synthetic_corpus, tmp_path, capsys):
    out = tmp_path / "s"
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc") == 0
    capsys.readouterr()
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc") == 2
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "--overwrite" in err and len(err.splitlines()) == 1
    # resume of a finished build is a no-op that keeps the same index rows
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--resume") == 0
    # a different build cannot resume this one
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--n-mfcc", "20", "--resume") == 2
    assert "differs" in capsys.readouterr().err
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--n-mfcc", "20", "--overwrite") == 0
    assert featstore.open(out).features["mfcc"].shape == (63, 20)


def test_overwrite_refuses_non_store(tmp_path, synthetic_corpus, capsys):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.tex").write_text("do not delete")
    assert build("--source", str(synthetic_corpus), "--out", str(folder), "--overwrite") == 2
    assert (folder / "thesis.tex").exists()


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "featstore", *args], capture_output=True,
                          text=True, cwd=ROOT, **kw)


@pytest.mark.parametrize("args, needle", [
    (["build", "--source", "/no/such/corpus", "--out", "{tmp}/x"], "does not exist"),
    (["build", "--chunk-seconds", "-1"], "positive"),
    (["build", "--features", "mfcc,spectrogram", "--source", "synthetic", "--out", "{tmp}/x"],
     "unknown feature"),
    (["build", "--device", "tpu", "--out", "{tmp}/x"], "--device"),
    (["build", "--source", "synthetic", "--features", "mfcc", "--out", "/proc/forbidden/x"],
     "cannot write"),
    (["build", "--batch-size", "lots"], "whole number"),
    (["info", "/no/such/store"], "does not exist"),
    (["verify", "/no/such/store"], "does not exist"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_are_one_line_exit_2(args, needle, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = _cli(*args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr


def _write_bad_corpus(root: Path, good: Path) -> dict[str, str]:
    """A LibriSpeech-layout corpus with one file per kind of bad input, plus good files."""
    shutil.copytree(good, root)
    spk_dir = sorted((root / "synthetic").iterdir())[0]
    chapter = next(spk_dir.iterdir())
    spk = spk_dir.name
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(3 * sr) / sr)).astype(np.float32)
    good_flac = sorted(chapter.glob("*.flac"))[0]
    bad = {
        "corrupt": f"{spk}-{chapter.name}-9001",
        "truncated": f"{spk}-{chapter.name}-9002",
        "empty": f"{spk}-{chapter.name}-9003",
        "notaudio": f"{spk}-{chapter.name}-9004",
        "silent": f"{spk}-{chapter.name}-9005",
        "rate8k": f"{spk}-{chapter.name}-9006",
        "stereo": f"{spk}-{chapter.name}-9007",
    }
    (chapter / f"{bad['corrupt']}.flac").write_bytes(b"fLaC" + os.urandom(4000))
    blob = good_flac.read_bytes()
    (chapter / f"{bad['truncated']}.flac").write_bytes(blob[: len(blob) // 3])
    (chapter / f"{bad['empty']}.flac").write_bytes(b"")
    (chapter / f"{bad['notaudio']}.flac").write_text("hello, I am a text file\n" * 50)
    sf.write(chapter / f"{bad['silent']}.flac", np.zeros(3 * sr), sr)
    sf.write(chapter / f"{bad['rate8k']}.flac", tone[::2], 8000)
    sf.write(chapter / f"{bad['stereo']}.flac", np.stack([tone, tone], 1), sr)
    ghost = root / "synthetic" / "777" / "1"  # a speaker missing from SPEAKERS.TXT
    ghost.mkdir(parents=True)
    sf.write(ghost / "777-1-0000.flac", tone, sr)
    bad["unlabelled"] = "777-1-0000"
    return bad


def test_bad_input_never_kills_the_build(tmp_path, synthetic_corpus, capsys):
    corpus = tmp_path / "bad"
    bad = _write_bad_corpus(corpus, synthetic_corpus)
    out = tmp_path / "store"
    capsys.readouterr()
    assert main(["build", "--device", "cpu", "--workers", "0", "--source", str(corpus),
                 "--out", str(out), "--features", "mfcc"]) == 0
    summary = capsys.readouterr().err
    assert "problem(s) recorded" in summary
    report = info(out, capsys)
    reasons = {}
    for p in report["problems"]:
        reasons.setdefault(Path(p["path"]).stem, []).append(p["reason"])
    meta = featstore.open(out).meta
    kept = set(meta.utterance_id)
    for kind in ("corrupt", "empty", "notaudio"):
        assert bad[kind] not in kept and bad[kind] in reasons, kind
    # truncated FLAC: whatever decodes is kept, or it is reported; never silently lost
    assert bad["truncated"] in kept or bad["truncated"] in reasons
    for kind in ("silent", "rate8k", "stereo", "unlabelled"):
        assert bad[kind] in kept, kind
    assert any("silence" in r for r in reasons[bad["silent"]])
    assert any("resampled 8000" in r for r in reasons[bad["rate8k"]])
    assert any("downmixed" in r for r in reasons[bad["stereo"]])
    assert any("777" in p["reason"] for p in report["problems"])
    assert meta[meta.utterance_id == bad["unlabelled"]].gender.unique().tolist() == ["U"]
    assert len(meta[meta.utterance_id == bad["rate8k"]]) == 1  # 3 s at 16 kHz after resampling
    # every good synthetic utterance survives
    good = {p.stem for p in synthetic_corpus.glob("*/*/*/*.flac")}
    assert good <= kept
    assert np.isfinite(featstore.open(out).load("mfcc")).all()
    assert main(["verify", str(out)]) == 0


def test_resume_after_sigkill(tmp_path):
    corpus = make_synthetic(tmp_path / "corpus", n_speakers=16, utterances_per_speaker=6,
                            seed=3)
    args = ["build", "--source", str(corpus), "--features", "mfcc,audio", "--device", "cpu",
            "--quiet", "--workers", "0", "--shard-size", "2"]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "featstore", *args, "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "shards").glob("shard-*.h5"))) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "index.json").exists(), "the build finished before it could be killed"
    done = len(list((out / "shards").glob("shard-*.h5")))
    assert 0 < done < 48
    with pytest.raises(featstore.errors.UserError, match="incomplete"):
        featstore.open(out)
    res = _cli(*args, "--out", str(out), "--resume")
    assert res.returncode == 0, res.stderr
    ref = tmp_path / "clean"
    assert _cli(*args, "--out", str(ref)).returncode == 0
    a, b = featstore.open(out), featstore.open(ref)
    assert a.meta.equals(b.meta)
    assert a.meta.duplicated(["utterance_id", "start_sample"]).sum() == 0
    np.testing.assert_array_equal(a.load("mfcc"), b.load("mfcc"))
    np.testing.assert_array_equal(a.load("audio"), b.load("audio"))
    assert main(["verify", str(out)]) == 0


def test_one_writer_per_store(tmp_path, synthetic_corpus):
    from featstore.errors import UserError
    from featstore.store.writer import StoreLock

    out = tmp_path / "locked"
    out.mkdir()
    with StoreLock(out):
        res = _cli("build", "--source", str(synthetic_corpus), "--out", str(out), "--device",
                   "cpu", "--features", "mfcc", "--quiet")
        assert res.returncode == 2 and "another process" in res.stderr
        with pytest.raises(UserError):
            StoreLock(out).__enter__()


def test_speakers_selection_is_balanced(tmp_path, synthetic_corpus, capsys):
    out = tmp_path / "four"
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--speakers", "4", "--seed", "1", "--workers", "2") == 0  # two decode threads
    assert info(out, capsys)["speakers_by_gender"] == {"F": 2, "M": 2}


def test_real_sample_end_to_end(real_data, tmp_path, capsys):
    out = tmp_path / "real"
    assert main(["build", "--source", str(real_data), "--out", str(out), "--features", "mfcc",
                 "--device", "cpu", "--quiet"]) == 0
    report = info(out, capsys)
    assert report["num_utterances"] == 251 and report["num_speakers"] == 161
    assert report["speakers_by_gender"] == {"F": 80, "M": 81}
    assert report["padded_chunks"] == 1 and len(report["problems"]) == 1
    assert main(["verify", str(out)]) == 0


def test_overwrite_into_new_folder(tmp_path, synthetic_corpus):
    out = tmp_path / "fresh"
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--overwrite") == 0
    assert main(["verify", str(out)]) == 0


def test_resume_with_nothing_to_do_keeps_index_bytes(synthetic_corpus, tmp_path, monkeypatch):
    args = ("--source", str(synthetic_corpus), "--out", str(tmp_path / "s"), "--features",
            "mfcc", "--shard-size", "16")
    assert build(*args) == 0
    index = tmp_path / "s" / "index.json"
    before = index.read_bytes()
    # a later resume runs at another time, from another command line
    monkeypatch.setattr(featstore.provenance, "now", lambda: "2999-01-01T00:00:00+00:00")
    monkeypatch.setattr(sys, "argv", ["featstore", "build", "--resume", "(later)"])
    assert build(*args, "--resume") == 0
    assert index.read_bytes() == before


@pytest.mark.parametrize("listing", [sorted, lambda paths: sorted(paths, reverse=True)])
def test_interrupted_overwrite_leaves_an_incomplete_store(synthetic_corpus, tmp_path, monkeypatch,
                                                          listing):
    """Whatever order the folder lists in, index.json goes before any shard, so a removal cut
    short leaves a store that reads as incomplete, never an index of deleted shards."""
    out = tmp_path / "s"
    args = ("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
            "--shard-size", "16")
    assert build(*args) == 0
    iterdir, rmtree = Path.iterdir, shutil.rmtree

    def interrupted(path, *a, **k):
        if Path(path).name == "shards":
            assert not (out / "index.json").exists(), "shards removed while the index stood"
            raise OSError("interrupted")
        return rmtree(path, *a, **k)

    monkeypatch.setattr(Path, "iterdir", lambda self: iter(listing(list(iterdir(self)))))
    monkeypatch.setattr(shutil, "rmtree", interrupted)
    with pytest.raises(OSError, match="interrupted"):
        build(*args, "--overwrite")
    monkeypatch.undo()
    with pytest.raises(featstore.errors.UserError, match="incomplete"):
        featstore.open(out)
    assert build(*args, "--overwrite") == 0  # still recognised as a store: overwrite again
    assert main(["verify", str(out)]) == 0


def test_provenance_records_the_batch_size_used(synthetic_corpus, tmp_path):
    from featstore.extractors import make_extractor
    from featstore.machine import default_batch_size

    out = tmp_path / "s"
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--shard-size", "16") == 0  # no --batch-size: the default is used
    used = featstore.open(out).provenance["batch_size"]
    assert isinstance(used, int) and used > 0
    assert used == default_batch_size([make_extractor("mfcc")], "cpu")
    assert build("--source", str(synthetic_corpus), "--out", str(out), "--features", "mfcc",
                 "--shard-size", "16", "--batch-size", "7", "--overwrite") == 0
    assert featstore.open(out).provenance["batch_size"] == 7


def test_resume_that_rebuilds_a_shard_drops_the_old_index_first(synthetic_corpus, tmp_path,
                                                                 monkeypatch):
    import featstore.build as fbuild

    args = ("--source", str(synthetic_corpus), "--out", str(tmp_path / "s"), "--features",
            "mfcc", "--shard-size", "16")
    assert build(*args) == 0
    (tmp_path / "s" / "shards" / "shard-00001.h5").unlink()

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(fbuild, "build_shards", killed)
    assert build(*args, "--resume") == 130
    with pytest.raises(featstore.errors.UserError, match="incomplete"):
        featstore.open(tmp_path / "s")  # not an index naming a shard that is not there
    monkeypatch.undo()
    assert build(*args, "--resume") == 0
    assert main(["verify", str(tmp_path / "s")]) == 0


def test_mfcc_build_imports_only_what_mfcc_needs(tmp_path, synthetic_corpus):
    """A new process building MFCCs never imports transformers, pandas or scikit-learn (seconds
    of start-up each), nor librosa or scipy: the modules it ends with are checked."""
    code = (
        "import sys\n"
        "from featstore.cli import main\n"
        f"rc = main(['build', '--source', {str(synthetic_corpus)!r}, '--out', "
        f"{str(tmp_path / 's')!r}, '--features', 'mfcc', '--device', 'cpu', '--quiet'])\n"
        "heavy = ('transformers', 'pandas', 'sklearn', 'librosa', 'scipy', 'xgboost')\n"
        "print(rc, sorted(m for m in heavy if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "[]"]
    assert (tmp_path / "s" / "index.json").exists()  # it did build


def test_cache_share_reads_the_last_level_from_sysfs(tmp_path):
    from featstore.machine import cache_share

    for level, size, shared in (("index0", "48K", "0"), ("index2", "2048K", "0"),
                                ("index3", "32768K", "0-3,8-11")):
        (tmp_path / level).mkdir()
        (tmp_path / level / "size").write_text(size + "\n")
        (tmp_path / level / "shared_cpu_list").write_text(shared + "\n")
    (tmp_path / "uevent").write_text("")
    assert cache_share(base=str(tmp_path)) == (32 << 20) // 8
    (tmp_path / "index3" / "size").write_text("garbage\n")
    assert cache_share(default=123, base=str(tmp_path)) == 123
    assert cache_share(default=456, base=str(tmp_path / "missing")) == 456
