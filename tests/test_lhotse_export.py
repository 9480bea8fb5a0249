"""featstore export --format lhotse: a CutSet whose arrays give back the stored values bit for bit,
with each chunk's recording, span, channel and labels."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import featstore
from featstore.cli import main
from featstore.store.export_lhotse import CUTS, INFO, load_cut_arrays

lhotse = pytest.importorskip("lhotse")
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet  # noqa: E402

SR = 16000


def export(store: Path, out: Path, *extra: str) -> int:
    return main(["export", str(store), str(out), "--format", "lhotse", *extra])


def test_round_trip_is_bit_exact_with_recordings_and_labels(synthetic_store, tmp_path):
    out = tmp_path / "cuts"
    assert export(synthetic_store, out) == 0
    cuts = list(CutSet.from_file(out / CUTS))
    plan = json.loads((synthetic_store / "plan.json").read_text())
    files = {u["utterance_id"]: u["path"] for u in plan["utterances"]}
    with featstore.open(synthetic_store) as store:
        assert len(cuts) == len(store) and len({c.id for c in cuts}) == len(cuts)
        assert {"fbank", "mfcc", "pitch/f0", "audio"} <= set(store.features)
        for name in store.features:  # float16 fbank, float32 mfcc and pitch, int16 audio
            values = load_cut_arrays(out, name)
            assert values.dtype == store.load(name).dtype
            assert np.array_equal(values, store.load(name)), name
        meta = store.meta
        audio = store.load("audio")
    for row, cut in enumerate(cuts):
        m = meta.iloc[row]
        assert cut.custom["store_row"] == row
        assert cut.recording.sources[0].source == files[m.utterance_id]
        assert (cut.start, cut.duration) == (m.start_sample / SR, m.n_samples / SR)
        (s,) = cut.supervisions
        assert (s.speaker, s.gender, s.custom["chapter_id"], s.custom["subset"]) == (
            m.speaker_id, m.gender, m.chapter_id, m.subset)
    # the cut's own audio, read by lhotse from the recording, is the chunk's (to 1 int16 step)
    for row in (0, 5, len(cuts) - 1):
        got = cuts[row].load_audio()[0]
        assert np.abs(np.round(got * 32767) - audio[row][: len(got)]).max() <= 1


def test_segments_keep_their_offset_channel_and_recording(tmp_path):
    data = np.stack([np.sin(np.arange(6 * SR) / 40), np.cos(np.arange(6 * SR) / 25)], 1) * 0.3
    path = tmp_path / "two.wav"
    sf.write(path, data.astype(np.float32), SR, subtype="PCM_16")
    rec = Recording.from_file(path, recording_id="session-7")
    sups = [SupervisionSegment("u1", rec.id, 1.5, 4.0, speaker="s", gender="M")]
    RecordingSet.from_recordings([rec]).to_file(tmp_path / "c_recordings_eval.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(tmp_path / "c_supervisions_eval.jsonl.gz")
    store = tmp_path / "store"
    assert main(["build", "--source", f"lhotse:{tmp_path}", "--out", str(store), "--features",
                 "audio,mfcc", "--channel", "1", "--device", "cpu", "--quiet",
                 "--workers", "0"]) == 0
    out = tmp_path / "export"
    assert export(store, out) == 0
    cuts = list(CutSet.from_file(out / CUTS))
    assert [(c.start, c.duration, c.channel, c.recording.id) for c in cuts] == [
        (1.5, 2.0, 1, "session-7"), (3.5, 2.0, 1, "session-7")]
    assert cuts[0].supervisions[0].custom["chapter_id"] == "session-7"
    with featstore.open(store) as s:
        for cut, row in zip(cuts, s.load("audio"), strict=True):
            assert np.abs(np.round(cut.load_audio()[0] * 32767) - row).max() <= 1
        assert np.array_equal(load_cut_arrays(out, "mfcc"), s.load("mfcc"))


def test_selection_overwrite_and_a_missing_file(synthetic_store, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(synthetic_store, store)
    out = tmp_path / "x"
    assert export(store, out, "--features", "mfcc", "--where", "gender=F") == 0
    cuts = list(CutSet.from_file(out / CUTS))
    assert {c.supervisions[0].gender for c in cuts} == {"F"}
    assert set(cuts[0].custom) == {"store_row", "start_sample", "n_samples", "mfcc"}
    assert export(store, out) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    assert export(store, tmp_path / "other", "--overwrite") == 2  # not an export: kept
    assert "not a lhotse export" in capsys.readouterr().err
    # an audio file gone since the build: its cuts have no recording, the features are there
    plan = json.loads((store / "plan.json").read_text())
    first = plan["utterances"][0]
    moved = Path(first["path"])
    moved.rename(moved.with_suffix(".gone"))
    try:
        assert export(store, out, "--overwrite", "--features", "mfcc") == 0
    finally:
        moved.with_suffix(".gone").rename(moved)
    cuts = list(CutSet.from_file(out / CUTS))
    lost = [c for c in cuts if c.custom["store_row"] == 0][0]
    assert not lost.has_recording and lost.supervisions[0].custom["utterance_id"] == first[
        "utterance_id"]
    assert json.loads((out / INFO).read_text())["cuts_without_recording"] > 0
    with featstore.open(store) as s:
        assert np.array_equal(load_cut_arrays(out, "mfcc"), s.load("mfcc"))


def test_missing_lhotse_is_one_line(synthetic_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lhotse", None)
    assert export(synthetic_store, tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "featstore[lhotse]"' in err
    assert not (tmp_path / "x").exists()
