"""featstore export / Store.to_hf: a store as a datasets.Dataset (Arrow) or Parquet, read back
bit for bit with datasets.load_from_disk, load_dataset and pandas.read_parquet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import featstore
from featstore.cli import main
from featstore.errors import UserError
from featstore.store import export as export_mod

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def w2v_store(tmp_path_factory, synthetic_corpus, tiny_wav2vec2) -> Path:
    """MFCC (float32, 2-D), audio (int16, 1-D) and wav2vec2 (float16, 2-D) in several shards."""
    out = tmp_path_factory.mktemp("stores") / "w2v"
    rc = main(["build", "--source", str(synthetic_corpus), "--out", str(out), "--features",
               "mfcc,audio,wav2vec2", "--model", str(tiny_wav2vec2), "--device", "cpu",
               "--quiet", "--workers", "0", "--shard-size", "8"])
    assert rc == 0
    return out


def as_numpy(ds) -> dict:
    """All columns as numpy, keeping stored dtypes (the plain numpy format casts them)."""
    return ds.with_format("numpy", dtype=None)[:]


def assert_rows_equal(table: dict, store, rows: np.ndarray, names: list[str]) -> None:
    assert np.array_equal(table["row"], rows)
    meta = store.meta.iloc[rows]
    for col in ("utterance_id", "speaker_id", "gender", "chapter_id", "subset"):
        assert list(table[col]) == meta[col].tolist(), col
    for col in ("start_sample", "n_samples"):
        assert np.array_equal(table[col], meta[col].to_numpy()), col
        assert table[col].dtype == meta[col].dtype
    for name in names:
        expected = store.load(name, rows)
        got = np.asarray(table[name])
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        assert np.array_equal(got, expected), name


def test_to_hf_in_memory_round_trip(w2v_store):
    with featstore.open(w2v_store) as store:
        ds = store.to_hf()
        names = list(store.features)
        assert {"mfcc", "audio", "wav2vec2/mean", "wav2vec2/std"} <= set(names)
        assert isinstance(ds.features["mfcc"], datasets.Array2D)
        assert ds.features["wav2vec2/mean"].dtype == "float16"
        assert ds.features["audio"] == datasets.List(datasets.Value("int16"),
                                                     length=store.features["audio"].shape[0])
        assert_rows_equal(as_numpy(ds), store, np.arange(len(store)), names)
        info = json.loads(ds.info.description)
        assert info["features"]["mfcc"]["params"] == store.features["mfcc"].params
        # rows in any order, with features and meta filters
        rows = np.array([5, 0, 3])
        sub = store.to_hf(features=["mfcc"], rows=rows)
        assert sub.column_names[-1] == "mfcc" and "audio" not in sub.column_names
        assert_rows_equal(as_numpy(sub), store, rows, ["mfcc"])
        female = store.to_hf(features=["audio"], where={"gender": ["F"]})
        assert set(female["gender"]) == {"F"}
        assert len(female) == int((store.meta["gender"] == "F").sum())
        with pytest.raises(UserError, match="no feature.*nope"):
            store.to_hf(features=["nope"])
        with pytest.raises(UserError, match="no meta column 'sex'"):
            store.to_hf(where={"sex": ["F"]})


def test_export_hf_round_trip_with_load_from_disk(w2v_store, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "PART_BYTES", 1)  # one row per piece: the joining path
    out = tmp_path / "hf"
    rc = main(["export", str(w2v_store), str(out), "--format", "hf", "--rows", "2:9",
               "--features", "wav2vec2/mean,audio"])
    assert rc == 0
    ds = datasets.load_from_disk(str(out))
    assert len(ds) == 7 and not list(tmp_path.glob(".tmp-*"))
    with featstore.open(w2v_store) as store:
        assert_rows_equal(as_numpy(ds), store, np.arange(2, 9), ["wav2vec2/mean", "audio"])
    assert "mfcc" not in ds.column_names


def test_export_parquet_round_trip_with_pandas_and_load_dataset(w2v_store, tmp_path):
    out = tmp_path / "pq"
    assert main(["export", str(w2v_store), str(out), "--format", "parquet",
                 "--where", "gender=M", "--features", "mfcc,wav2vec2/std"]) == 0
    with featstore.open(w2v_store) as store:
        rows = np.flatnonzero(store.meta["gender"].to_numpy() == "M")
        df = pd.read_parquet(out)  # the whole folder, as pandas users read it
        table = {c: df[c].to_numpy() for c in df.columns}
        for name in ("mfcc", "wav2vec2/std"):  # nested arrays per row: stack them
            table[name] = np.stack([np.stack(list(v)) for v in df[name]])
        assert_rows_equal(table, store, rows, ["mfcc", "wav2vec2/std"])
        ds = datasets.load_dataset("parquet", data_files=sorted(map(str, out.glob("*.parquet"))),
                                   split="train", cache_dir=str(tmp_path / "cache"))
        assert isinstance(ds.features["wav2vec2/std"], datasets.Array2D)
        assert_rows_equal(as_numpy(ds), store, rows, ["mfcc", "wav2vec2/std"])
    assert json.loads((out / "_featstore.json").read_text())["provenance"]


def test_export_user_errors(synthetic_store, tmp_path):
    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "featstore", "export", *args],
                              capture_output=True, text=True)
        return proc.returncode, proc.stderr

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    cases = [
        ((str(tmp_path / "none"), str(tmp_path / "o1")), "does not exist"),
        ((str(synthetic_store), str(tmp_path / "o2"), "--features", "nope"), "no feature"),
        ((str(synthetic_store), str(tmp_path / "o3"), "--rows", "a:b"), "START:STOP"),
        ((str(synthetic_store), str(tmp_path / "o4"), "--where", "gender"), "COLUMN=VALUE"),
        ((str(synthetic_store), str(tmp_path / "o5"), "--where", "gender=X"), "no rows"),
        ((str(synthetic_store), str(tmp_path / "o6"), "--rows", "0,99999"), "out of range"),
        ((str(synthetic_store), str(tmp_path / "taken")), "--overwrite"),
        ((str(synthetic_store), str(tmp_path / "taken"), "--overwrite"), "not an export"),
        ((str(synthetic_store), str(tmp_path / "o7"), "--format", "csv"), "invalid choice"),
    ]
    for args, needle in cases:
        rc, err = run(*args)
        assert rc == 2 and err.count("\n") == 1 and needle in err, (args, err)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_export_overwrites_an_export(synthetic_store, tmp_path):
    out = tmp_path / "pq"
    assert main(["export", str(synthetic_store), str(out), "--format", "parquet",
                 "--rows", "0-3"]) == 0
    assert main(["export", str(synthetic_store), str(out), "--format", "parquet",
                 "--rows", "4", "--overwrite"]) == 0
    assert pd.read_parquet(out)["row"].tolist() == [4]
