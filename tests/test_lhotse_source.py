"""The lhotse: source: manifests built with lhotse's own API give the folder source's store for
whole-file segments, and the right spans, channels and problems for the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import featstore
from featstore.cli import main
from featstore.errors import UserError
from featstore.pcm import PCM_MAX, PCM_MIN, PCM_SCALE
from featstore.sources import resolve_source
from featstore.sources.librispeech import scan_librispeech
from featstore.sources.segments import Segment, parse_segment, segment_path

lhotse = pytest.importorskip("lhotse")
from lhotse import (  # noqa: E402
    CutSet,
    Recording,
    RecordingSet,
    SupervisionSegment,
    SupervisionSet,
)

SR = 16000
CHUNK = 2 * SR  # the build's default 2 s chunks


def build(source: str, out: Path, *extra: str, features: str = "mfcc,audio") -> int:
    return main(["build", "--source", source, "--out", str(out), "--features", features,
                 "--device", "cpu", "--quiet", "--workers", "0", "--shard-size", "64", *extra])


def sup(rec: Recording, sup_id: str, speaker: str | None, start: float = 0.0,
        duration: float | None = None, **kw) -> SupervisionSegment:
    return SupervisionSegment(id=sup_id, recording_id=rec.id, start=start,
                              duration=rec.duration - start if duration is None else duration,
                              speaker=speaker, **kw)


def write_pair(folder: Path, split: str, recs: list, sups: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    RecordingSet.from_recordings(recs).to_file(folder / f"corpus_recordings_{split}.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(folder / f"corpus_supervisions_{split}.jsonl.gz")


def pcm(samples: np.ndarray) -> np.ndarray:
    """What the audio feature stores for float samples."""
    return np.clip(np.round(samples * PCM_SCALE), PCM_MIN, PCM_MAX).astype(np.int16)


# -- the real sample ---------------------------------------------------------------------------

PARTIAL = {  # supervision id -> (a file over 8 s, start s, duration s); ids sort after the files'
    "zz-part-a": (0, 2.0, 4.0),  # exactly chunks 1 and 2 of the whole file
    "zz-part-b": (1, 1.3, 2.5),  # one chunk from 1.3 s, tail dropped
    "zz-part-c": (2, 3.1, 0.5),  # shorter than a chunk: one zero-padded chunk
}


@pytest.fixture(scope="module")
def real_manifests(real_data, tmp_path_factory) -> tuple[Path, list]:
    """One recordings + supervisions pair per subset of the real sample, built with lhotse's API:
    a whole-file supervision per file (speaker, gender, chapter as a custom field), and the
    PARTIAL segments in test-other."""
    folder = tmp_path_factory.mktemp("lhotse") / "manifests"
    utts = scan_librispeech(real_data).utterances
    by_split: dict[str, tuple[list, list]] = {}
    for u in utts:
        rec = Recording.from_file(u.path)
        recs, sups = by_split.setdefault(u.subset, ([], []))
        recs.append(rec)
        sups.append(sup(rec, u.utterance_id, u.speaker_id, gender=u.gender,
                        custom={"chapter": u.chapter_id}))
    other = [u for u in utts if u.subset == "test-other" and sf.info(u.path).duration > 8]
    recs, sups = by_split["test-other"]
    for sup_id, (i, start, duration) in PARTIAL.items():
        rec = next(r for r in recs if r.sources[0].source == other[i].path)
        sups.append(sup(rec, sup_id, other[i].speaker_id, start, duration,
                        gender=other[i].gender, custom={"chapter": other[i].chapter_id}))
    for split, (recs, sups) in by_split.items():
        write_pair(folder, split, recs, sups)
    return folder, other


@pytest.fixture(scope="module")
def real_stores(real_data, real_manifests, tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("stores")
    assert build(str(real_data), out / "folder") == 0
    assert build(f"lhotse:{real_manifests[0]}", out / "lhotse", "--chapter-column", "chapter") == 0
    return out / "folder", out / "lhotse"


def test_whole_file_segments_give_the_folder_store(real_stores):
    with featstore.open(real_stores[0]) as a, featstore.open(real_stores[1]) as b:
        whole = ~b.meta["utterance_id"].str.startswith("zz-part").to_numpy()
        assert len(a) == whole.sum() > 0
        assert a.meta.equals(b.meta[whole].reset_index(drop=True))  # ids, labels, subsets, spans
        assert set(a.meta["subset"]) == {"test-other", "train-clean-100"}
        for name in ("mfcc", "audio"):
            assert np.array_equal(a.load(name), b.load(name, np.flatnonzero(whole))), name
        partial = [p for p in b.problems if "#" in p["path"]]
        assert [p for p in b.problems if p not in partial] == a.problems
        assert len(partial) == 1 and "zero-padded" in partial[0]["reason"]  # zz-part-c


def test_partial_segments_give_their_spans(real_stores, real_manifests):
    _, other = real_manifests
    with featstore.open(real_stores[0]) as a, featstore.open(real_stores[1]) as b:
        rows = {k: np.flatnonzero(b.meta["utterance_id"] == k) for k in PARTIAL}
        assert [len(rows[k]) for k in PARTIAL] == [2, 1, 1]
        # a: the whole file's chunks 1 and 2, MFCC and all
        whole = np.flatnonzero(a.meta["utterance_id"] == other[0].utterance_id)[1:3]
        for name in ("mfcc", "audio"):
            assert np.array_equal(b.load(name, rows["zz-part-a"]), a.load(name, whole))
        assert list(b.meta["start_sample"][rows["zz-part-a"]]) == [0, CHUNK]  # in the segment
        # b and c: the file's samples from the segment's start (c padded past its 0.5 s)
        for key in ("zz-part-b", "zz-part-c"):
            i, start, duration = PARTIAL[key]
            samples, _ = sf.read(other[i].path, dtype="float32")
            n = min(CHUNK, round(duration * SR))
            expected = np.zeros(CHUNK, np.int16)
            expected[:n] = pcm(samples[round(start * SR):][:n])
            assert np.array_equal(b.load("audio", rows[key])[0], expected), key
            assert b.meta["n_samples"][rows[key][0]] == n
        labels = b.meta.iloc[rows["zz-part-b"][0]]
        assert (labels.speaker_id, labels.chapter_id, labels.gender) == (
            other[1].speaker_id, other[1].chapter_id, other[1].gender)
        plan = json.loads((real_stores[1] / "plan.json").read_text())
        seg = parse_segment(next(u["path"] for u in plan["utterances"]
                                 if u["utterance_id"] == "zz-part-b"))
        assert (seg.file, seg.offset, seg.duration) == (other[1].path, 1.3, 2.5)


# -- synthetic audio: no shared data needed ----------------------------------------------------

def tone(seconds: float, freq: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    cols = [0.3 * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


@pytest.fixture
def synthetic(tmp_path) -> dict:
    """Three files (one stereo, one at 8 kHz) and their lhotse recordings."""
    files = {"mono": (tone(5.0, 220), SR), "stereo": (tone(4.5, 330, channels=2), SR),
             "narrow": (tone(3.0, 440, sr=8000), 8000)}
    recs = {}
    for name, (data, sr) in files.items():
        path = tmp_path / "audio" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, data, sr, subtype="PCM_16")
        recs[name] = Recording.from_file(path)
    return {"recs": recs, "dir": tmp_path}


def decoded(path: str) -> np.ndarray:
    """A file as the build decodes it, before down-mixing and resampling: int16 / 32768."""
    data, _ = sf.read(path, dtype="int16", always_2d=True)
    return data.astype(np.float32) * np.float32(1 / 32768)


def test_segments_channels_and_labels_on_synthetic_audio(synthetic, tmp_path):
    r = synthetic["recs"]
    sups = [sup(r["mono"], "a-whole", "s1", gender="female"),
            sup(r["mono"], "b-mid", "s1", 1.25, 2.5, gender="F"),
            sup(r["stereo"], "c-stereo", "s2", 0.5, 2.0, custom={"session": "day2"}),
            sup(r["narrow"], "d-narrow", "s2", 0.0, 2.0)]
    write_pair(tmp_path / "m", "dev", list(r.values()), sups)
    gender_map = tmp_path / "genders.txt"
    gender_map.write_text("s1,M\ns2,M\n")  # s1 has genders in its supervisions: those win
    out = tmp_path / "store"
    assert build(f"lhotse:{tmp_path / 'm'}", out, "--gender-map", str(gender_map),
                 "--chapter-column", "session", features="audio") == 0
    with featstore.open(out) as store:
        meta = store.meta
        assert list(dict.fromkeys(meta["utterance_id"])) == ["a-whole", "b-mid", "c-stereo",
                                                            "d-narrow"]
        assert set(meta["subset"]) == {"dev"}
        by_utt = meta.groupby("utterance_id").first()
        assert list(by_utt["gender"]) == ["F", "F", "M", "M"]
        # chapter: the custom field where set, else the recording id (one problem says so)
        assert list(by_utt["chapter_id"]) == ["mono", "mono", "day2", "narrow"]
        assert any("custom field 'session'" in p["reason"] for p in store.problems)
        audio = {u: store.load("audio", np.flatnonzero(meta["utterance_id"] == u))
                 for u in by_utt.index}
    mono = decoded(r["mono"].sources[0].source)[:, 0]
    assert np.array_equal(audio["a-whole"].reshape(-1), pcm(mono[: 2 * CHUNK]))
    assert np.array_equal(audio["b-mid"][0], pcm(mono[20000:20000 + CHUNK]))
    stereo = decoded(r["stereo"].sources[0].source).mean(axis=1)  # down-mixed as decode does
    assert np.array_equal(audio["c-stereo"][0], pcm(stereo[8000:8000 + CHUNK]))
    assert audio["d-narrow"].shape == (1, CHUNK)  # 2 s at 8 kHz, resampled to one 16 kHz chunk

    # --channel 1: the right channel alone, for whole files and segments alike
    out1 = tmp_path / "ch1"
    assert build(f"lhotse:{tmp_path / 'm'}", out1, "--channel", "1", "--subsets", "dev",
                 features="audio") == 0
    with featstore.open(out1) as store:
        rows = np.flatnonzero(store.meta["utterance_id"] == "c-stereo")
        right = decoded(r["stereo"].sources[0].source)[:, 1]
        assert np.array_equal(store.load("audio", rows)[0], pcm(right[8000:8000 + CHUNK]))
        # the mono files have no channel 1: recorded, not fatal
        assert sum("no --channel 1" in p["reason"] for p in store.problems) == 3
        assert set(store.meta["utterance_id"]) == {"c-stereo"}


def test_cut_manifest_gives_the_same_store(synthetic, tmp_path):
    r = synthetic["recs"]
    sups = [sup(r["mono"], "a", "s1", 0.5, 3.0, gender="M"),
            sup(r["stereo"], "b", "s2", 0.0, 4.5, gender="F")]
    write_pair(tmp_path / "m", "train", [r["mono"], r["stereo"]], sups)
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings([r["mono"], r["stereo"]]),
                                 supervisions=SupervisionSet.from_segments(sups))
    (tmp_path / "c").mkdir()
    cuts.to_file(tmp_path / "c" / "corpus_cuts_train.jsonl.gz")
    trimmed = cuts.trim_to_supervisions(keep_overlapping=False)  # cuts that start mid-file
    trimmed.to_file(tmp_path / "trimmed_cuts_train.jsonl.gz")
    assert build(f"lhotse:{tmp_path / 'm'}", tmp_path / "pair", features="audio") == 0
    assert build(f"lhotse:{tmp_path / 'c'}", tmp_path / "cuts", features="audio") == 0
    assert build(f"lhotse:{tmp_path / 'trimmed_cuts_train.jsonl.gz'}", tmp_path / "trim",
                 features="audio") == 0
    with featstore.open(tmp_path / "pair") as a, featstore.open(tmp_path / "cuts") as b, \
            featstore.open(tmp_path / "trim") as c:
        assert len(a) == 3
        for other in (b, c):
            assert a.meta.drop(columns="chapter_id").equals(other.meta.drop(columns="chapter_id"))
        assert list(a.meta["subset"].unique()) == ["train"]
        # the whole-recording cuts of from_manifests (a MultiCut for the stereo file): the
        # pair's store; trim_to_supervisions keeps the supervision's channel 0 alone
        assert np.array_equal(a.load("audio"), b.load("audio"))
        trimmed = c.load("audio")
        left = decoded(r["stereo"].sources[0].source)[:, 0]
        assert np.array_equal(trimmed[0], a.load("audio", [0])[0])
        assert np.array_equal(trimmed[1:].reshape(-1), pcm(left[: 2 * CHUNK]))


def test_bad_inputs_are_problems_never_a_crash(synthetic, tmp_path):
    r = synthetic["recs"]
    gone = Recording.from_file(r["mono"].sources[0].source, recording_id="gone")
    gone.sources[0].source = str(tmp_path / "audio" / "gone.wav")
    broken = tmp_path / "audio" / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav file")
    bad = Recording(id="broken", sources=[lhotse.audio.AudioSource("file", [0], str(broken))],
                    sampling_rate=SR, num_samples=SR * 3, duration=3.0)
    sups = [sup(r["mono"], "ok", "s1", gender="F"),
            sup(gone, "missing-file", "s1"),
            sup(r["mono"], "past-end", "s1", 4.0, 2.0),
            sup(r["mono"], "no-speaker", None, 0.0, 1.0),
            sup(r["mono"], "ok", "s1", 0.0, 1.0),  # duplicate id
            sup(bad, "undecodable", "s2", 0.0, 1.0),
            SupervisionSegment("orphan", "no-such-recording", 0.0, 1.0, speaker="s3")]
    write_pair(tmp_path / "m", "dev", [r["mono"], gone, bad], sups)
    out = tmp_path / "store"
    assert build(f"lhotse:{tmp_path / 'm'}", out, features="audio") == 0
    with featstore.open(out) as store:
        assert set(store.meta["utterance_id"]) == {"ok"}
        reasons = " | ".join(f"{p['path']}: {p['reason']}" for p in store.problems)
    for needle in ("audio file of recording gone is missing; 1 segment(s) skipped",
                   "outside recording mono", "no speaker; skipped", "duplicate supervision id ok",
                   "cannot decode", "recording no-such-recording is not in",
                   "speaker s2 has no gender"):
        assert needle in reasons, (needle, reasons)


def test_spec_errors_are_one_line_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    SupervisionSet.from_segments([SupervisionSegment("s", "r", 0.0, 1.0, speaker="x")]).to_file(
        tmp_path / "x_supervisions_dev.jsonl")
    cases = [(f"lhotse:{tmp_path}/missing", "does not exist"),
             (f"lhotse:{tmp_path / 'empty'}", "no *_recordings_*"),
             (f"lhotse:{tmp_path}", "has no recordings manifest for split dev"),
             (f"lhotse:{tmp_path / 'x_supervisions_dev.jsonl'}", "not a CutSet"),
             ("lhotse", "needs manifests")]
    for i, (source, needle) in enumerate(cases):
        proc = subprocess.run([sys.executable, "-m", "featstore", "build", "--source", source,
                               "--out", str(tmp_path / f"s{i}"), "--features", "audio",
                               "--device", "cpu", "--quiet"], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and needle in proc.stderr, (needle, proc.stderr)
    with pytest.raises(UserError, match="--audio-column: not for lhotse"):
        resolve_source(f"lhotse:{tmp_path}", options={"audio": "a"})
    with pytest.raises(UserError, match="--channel: for hf: sources only"):
        resolve_source("sample", options={"channel": "1"})


def test_missing_lhotse_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lhotse", None)  # import lhotse raises ImportError
    (tmp_path / "c_cuts_dev.jsonl").write_text("")
    assert build(f"lhotse:{tmp_path}", tmp_path / "s") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "featstore[lhotse]"' in err


def test_segment_paths_round_trip():
    seg = Segment("/data/a b/x.flac", 1.5, 0.1 + 0.2, (1,), "rec/1&2")
    path = segment_path(seg)
    assert "/" not in path.rpartition("#")[2]  # a segment's parent folder is its file's
    assert parse_segment(path) == seg
    assert parse_segment("/data/x.flac") == Segment("/data/x.flac")
    assert parse_segment("/data/odd#name.flac") == Segment("/data/odd#name.flac")
    assert segment_path(Segment("/d/x.flac", recording="x")) == "/d/x.flac"


def test_ray_workers_read_segments_by_path(synthetic, tmp_path, ray_local):
    """--ray: workers get the segment reader and read each span from its file, as a local build
    does (the shards are the same)."""
    r = synthetic["recs"]
    sups = [sup(r["mono"], f"m{i}", "s1", 0.25 * i, 2.5, gender="F") for i in range(4)]
    sups += [sup(r["stereo"], "st", "s2", 0.7, 3.0, gender="M")]
    write_pair(tmp_path / "m", "dev", [r["mono"], r["stereo"]], sups)
    extra = ("--shard-size", "2", "--channel", "0")
    assert build(f"lhotse:{tmp_path / 'm'}", tmp_path / "local", *extra) == 0
    assert build(f"lhotse:{tmp_path / 'm'}", tmp_path / "ray", *extra, "--ray", "auto") == 0
    with featstore.open(tmp_path / "local") as a, featstore.open(tmp_path / "ray") as b:
        assert len(a) == 5 and len(b.shards) == 3
        assert a.meta.equals(b.meta)
        for name in ("mfcc", "audio"):
            assert np.array_equal(a.load(name), b.load(name)), name
        starts = [round(0.25 * i * SR) for i in range(4)]
        mono = decoded(r["mono"].sources[0].source)[:, 0]
        assert all(np.array_equal(b.load("audio", [i])[0], pcm(mono[s:s + CHUNK]))
                   for i, s in enumerate(starts))
