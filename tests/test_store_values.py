"""What a store gives back: non-ASCII ids kept apart, ``rows=`` masks read the rows they
select (anything else refused in one line), and 16-bit audio stored bit for bit."""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

import featstore
from featstore.audio import decode
from featstore.cli import main
from featstore.errors import UserError
from featstore.extractors import ExtractContext, make_extractor
from featstore.store.layout import INDEX, SHARDS
from models.inputs import audio_to_float

SR = 16000


def _flac(seconds: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR,
             format="FLAC")
    return buf.getvalue()


def test_non_ascii_ids_stay_distinct(tmp_path, capsys):
    """"José" and "Josè" (an hf: source: Common Voice style ids) are two speakers with two
    utterances each, in the shards and through Store.meta, not one "Jos?"."""
    datasets = pytest.importorskip("datasets")
    speakers = ["José", "Josè", "Zoë", "Zoe"]
    rows = [{"audio": {"bytes": _flac(2.5, i), "path": None}, "id": f"{s}-{k}",
             "speaker_id": s, "gender": "female" if s.startswith("Z") else "male"}
            for i, (s, k) in enumerate((s, k) for s in speakers for k in range(2))]
    columns = {key: [r[key] for r in rows] for key in rows[0]}
    ds = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "store"
    assert main(["build", "--source", f"hf:{tmp_path / 'ds'}", "--out", str(out), "--features",
                 "mfcc", "--device", "cpu", "--quiet", "--workers", "0", "--shard-size",
                 "3"]) == 0
    meta = featstore.open(out).meta
    assert sorted(meta.speaker_id.unique()) == sorted(speakers)
    assert meta.groupby("speaker_id").utterance_id.nunique().to_dict() == dict.fromkeys(
        speakers, 2)
    assert sorted(meta.utterance_id.unique()) == sorted(r["id"] for r in rows)
    with h5py.File(out / SHARDS / "shard-00000.h5") as f:  # tagged UTF-8 for other readers
        assert h5py.check_string_dtype(f["meta/speaker_id"].dtype).encoding == "utf-8"
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_speakers"] == 4
    assert main(["build", "--source", f"hf:{tmp_path / 'ds'}", "--out", str(out), "--features",
                 "mfcc", "--device", "cpu", "--quiet", "--workers", "0", "--shard-size", "3",
                 "--resume"]) == 0  # its own shards pass the resume check


def test_ascii_stores_written_before_still_read(synthetic_store, tmp_path):
    """Shards of earlier versions hold plain ASCII ("S") columns: they read as before."""
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(synthetic_store, copy)
    before = featstore.open(synthetic_store).meta
    for shard in json.loads((copy / INDEX).read_text())["shards"]:
        with h5py.File(copy / SHARDS / shard["file"], "a") as f:
            for col in ("utterance_id", "speaker_id"):
                values = f[f"meta/{col}"][()]
                del f[f"meta/{col}"]
                f.create_dataset(f"meta/{col}", data=values.astype(f"S{values.dtype.itemsize}"))
    assert featstore.open(copy).meta.equals(before)


def test_a_mask_selects_rows_in_load_and_torch_dataset(synthetic_store):
    store = featstore.open(synthetic_store)
    mask = (store.meta.gender == "F").to_numpy()
    assert 2 < mask.sum() < len(store) - 2
    want = store.load("mfcc")[mask]
    np.testing.assert_array_equal(store.load("mfcc", mask), want)
    ds = store.torch_dataset("mfcc", label="gender", rows=mask)
    assert len(ds) == mask.sum()  # was 2: the mask read as the indices 0 and 1
    got = torch.stack([ds[i]["mfcc"] for i in range(len(ds))]).numpy()
    np.testing.assert_array_equal(got, want)
    assert {ds[i]["label"] for i in range(len(ds))} == {"F"}


@pytest.mark.parametrize("rows, needle", [
    (np.ones(5, dtype=bool), "one entry per row"),  # too short
    ("too long", "one entry per row"),
    (np.array([0.0, 1.0]), "row indices or a boolean mask"),  # floats
    (np.array(["0", "1"]), "row indices or a boolean mask"),
    (np.array([[0, 1]]), "row indices or a boolean mask"),
    (np.array([0, 10**6]), "out of range"),
])
def test_other_rows_are_refused_in_one_line(synthetic_store, rows, needle):
    store = featstore.open(synthetic_store)
    if isinstance(rows, str):
        rows = np.ones(len(store) + 1, dtype=bool)
    for read in (lambda: store.load("mfcc", rows),
                 lambda: store.torch_dataset("mfcc", rows=rows)):
        with pytest.raises(UserError, match=needle) as info:
            read()
        assert "\n" not in str(info.value)


def test_16_bit_audio_round_trips_to_the_last_bit(tmp_path):
    """Every int16 value, full scale included, through decode -> the audio feature -> the
    models' reading: the stored PCM is the file's exactly (one LSB off fails), and the model
    sees the decoder's floats exactly."""
    pcm = np.concatenate([np.arange(-32768, 32768, dtype=np.int32),
                          [32767, -32768, 16384, -16385, 1, -1]]).astype(np.int16)
    pcm = pcm[: len(pcm) // 32000 * 32000]
    path = tmp_path / "full-scale.flac"
    sf.write(str(path), pcm, SR, subtype="PCM_16")
    floats = decode(str(path), SR).samples
    ext = make_extractor("audio", None, ExtractContext(chunk_samples=32000))
    chunks = torch.from_numpy(floats.reshape(-1, 32000))
    stored = ext.extract(chunks, torch.full((len(chunks),), 32000))["audio"].reshape(-1)
    np.testing.assert_array_equal(stored, pcm)
    np.testing.assert_array_equal(audio_to_float(stored), floats)
    assert ext.params()["scale"] == 32768


def test_audio_kernel_matches_the_torch_ops():
    """The CPU's one-pass int16 kernel gives the torch ops' values (CUDA's path): rounding
    half to even, +1.0 and beyond clipped, -1.0 exact."""
    from featstore.extractors import ExtractContext
    from featstore.extractors.audio import AudioExtractor
    from featstore.extractors.configs import AudioConfig

    rng = np.random.default_rng(3)
    x = rng.uniform(-1.2, 1.2, (5, 32000)).astype(np.float32)
    x[0, :6] = [1.0, -1.0, 0.5 / 32768, 1.5 / 32768, -2.5 / 32768, 32767.5 / 32768]
    fused = AudioExtractor(AudioConfig(), ExtractContext())
    ops = AudioExtractor(AudioConfig(), ExtractContext(), backend="torch")
    assert fused.kernels is not None and ops.kernels is None
    n = torch.full((5,), 32000)
    a = fused.extract(torch.from_numpy(x), n)["audio"]
    b = ops.extract(torch.from_numpy(x), n)["audio"]
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int16
    assert a[0, :6].tolist() == [32767, -32768, 0, 2, -2, 32767]
