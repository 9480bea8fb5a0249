"""The hf: source: Hugging Face datasets (save_to_disk folders, Parquet via load_dataset,
streamed splits) built into stores exactly like the same audio in the folder layout."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from featstore.cli import main
from featstore.errors import UserError
from featstore.sources import resolve_source, sample_path, select_speakers
from featstore.sources.hf import HfSpec, _larger_than, load_hf, parse_spec
from featstore.sources.librispeech import scan_librispeech

datasets = pytest.importorskip("datasets")


def records_of(root: Path, gender: bool = True) -> dict[str, list[dict]]:
    """split (subset) -> rows of a LibriSpeech-layout corpus, audio as encoded FLAC bytes, ids
    and numbers typed as on the hub (speaker_id and chapter_id are int64 there)."""
    splits: dict[str, list[dict]] = {}
    for u in scan_librispeech(root).utterances:
        row = {"audio": {"bytes": Path(u.path).read_bytes(), "path": None}, "id": u.utterance_id,
               "speaker_id": int(u.speaker_id), "chapter_id": int(u.chapter_id)}
        if gender:
            row["gender"] = {"F": "female", "M": "male"}.get(u.gender, "")
        splits.setdefault(u.subset, []).append(row)
    return splits


def to_dataset(rows: list[dict], audio: str = "audio"):
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    # bytes + path cast to Audio(decode=False): no audio decoder package involved
    return datasets.Dataset.from_dict(columns).cast_column(audio,
                                                           datasets.Audio(decode=False))


def save_dict(splits: dict[str, list[dict]], path: Path) -> Path:
    datasets.DatasetDict({s: to_dataset(r) for s, r in splits.items()}).save_to_disk(str(path))
    return path


def flac_bytes(seconds: float, sr: int = 16000, channels: int = 1, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32),
             sr, format="FLAC")
    return buf.getvalue()


def build(source: str, out: Path, *extra: str) -> int:
    return main(["build", "--source", source, "--out", str(out), "--features", "mfcc,audio",
                 "--device", "cpu", "--quiet", "--workers", "0", "--shard-size", "16", *extra])


def assert_same_store(a: Path, b: Path, subset=lambda s: s) -> None:
    import featstore

    with featstore.open(a) as x, featstore.open(b) as y:
        assert len(x) == len(y) > 0
        assert x.meta.assign(subset=x.meta["subset"].map(subset)).equals(y.meta)
        assert list(x.features) == list(y.features)
        for name in x.features:
            assert np.array_equal(x.load(name), y.load(name)), name


def test_hf_store_of_real_sample_equals_folder_store(tmp_path):
    """The embedded LibriSpeech sample as a DatasetDict shaped like the hub's LibriSpeech (no
    gender column: genders from SPEAKERS.TXT) gives the folder-built store row for row."""
    sample = sample_path()
    ds_path = save_dict(records_of(sample, gender=False), tmp_path / "ds")
    assert build("sample", tmp_path / "folder") == 0
    assert build(f"hf:{ds_path}", tmp_path / "hf", "--gender-map",
                 str(sample / "SPEAKERS.TXT")) == 0
    assert_same_store(tmp_path / "folder", tmp_path / "hf")
    import featstore

    with featstore.open(tmp_path / "hf") as store:
        assert set(store.meta["gender"]) == {"F", "M"}
        assert set(store.meta["subset"]) == {"test-other", "train-clean-100"}
        assert store.provenance["params"]["source_options"]["gender_map"].endswith("SPEAKERS.TXT")


def test_gender_column_mapping_flags_and_class_labels(tmp_path, synthetic_corpus):
    """Renamed columns through the flags; gender as a ClassLabel; no id or chapter column."""
    rows = records_of(synthetic_corpus)["synthetic"]
    renamed = [{"wav": r["audio"], "spk": str(r["speaker_id"]), "sex": r["gender"]}
               for r in rows]
    ds = to_dataset(renamed, audio="wav").cast_column(
        "sex", datasets.ClassLabel(names=["female", "male"]))
    ds.save_to_disk(str(tmp_path / "one"))
    corpus = resolve_source(f"hf:{tmp_path / 'one'}",
                            options={"audio": "wav", "speaker": "spk", "gender": "sex"})
    folder = scan_librispeech(synthetic_corpus)
    assert [(u.speaker_id, u.gender) for u in corpus.utterances] == \
        [(u.speaker_id, u.gender) for u in folder.utterances]
    assert corpus.utterances[0].utterance_id == "one-000000"  # no id column: from the row
    assert {u.chapter_id for u in corpus.utterances} == {""}
    assert {u.subset for u in corpus.utterances} == {"one"}  # a lone Dataset: its folder name
    assert not corpus.problems
    audio, _ = sf.read(corpus.reader(corpus.utterances[0]))
    expected, _ = sf.read(folder.utterances[0].path)
    assert np.array_equal(audio, expected)


def test_bad_records_are_recorded_never_fatal(tmp_path, synthetic_corpus, capsys):
    rows = records_of(synthetic_corpus)["synthetic"][:6]
    rows[1]["audio"] = {"bytes": b"not audio at all" * 10, "path": None}  # corrupt
    rows[2]["audio"] = {"bytes": flac_bytes(1.5, sr=8000, channels=2), "path": None}
    rows[3]["speaker_id"] = None  # no speaker: skipped
    rows[4]["id"] = rows[0]["id"]  # duplicate id: skipped
    rows[5]["gender"] = "other"  # this speaker's other records still say F/M
    rows.append({**rows[0], "id": "empty-1", "audio": None})
    rows.append({**rows[0], "id": "x-1", "speaker_id": 999, "gender": ""})
    save_dict({"train": rows}, tmp_path / "ds")
    assert build(f"hf:{tmp_path / 'ds'}", tmp_path / "store") == 0
    import featstore

    with featstore.open(tmp_path / "store") as store:
        reasons = "\n".join(f"{p['path']}: {p['reason']}" for p in store.problems)
        ids = set(store.meta["utterance_id"])
    corrupt = f"{tmp_path / 'ds'}/train/{rows[1]['speaker_id']}/{rows[1]['chapter_id']}/1"
    assert f"{corrupt}: cannot decode: Error opening '{corrupt}'" in reasons
    assert "resampled 8000 Hz to 16000 Hz" in reasons and "downmixed 2 channels" in reasons
    assert f"{tmp_path / 'ds'}/train/3: no speaker; skipped" in reasons
    assert f"duplicate utterance id {rows[0]['id']}; skipped" in reasons
    assert "/6: no audio in the record (skipped)" in reasons
    assert "/train/999: speaker 999 has no F/M gender; gender unknown" in reasons
    assert rows[1]["id"] not in ids and "empty-1" not in ids
    assert {rows[0]["id"], rows[2]["id"], rows[5]["id"], "x-1"} <= ids


def test_missing_or_wrong_column_is_one_line_exit_2(tmp_path, synthetic_corpus):
    rows = records_of(synthetic_corpus)["synthetic"][:2]
    save_dict({"train": rows}, tmp_path / "ds")
    cases = [
        ([], ""),
        (["--speaker-column", "spk"], "no speaker column 'spk' (set it with --speaker-column); "
         "its columns: audio, id, speaker_id, chapter_id, gender"),
        (["--chapter-column", "session"], "no chapter column 'session'"),
        (["--audio-column", "id"], "column 'id' is not audio"),
        (["--gender-map", str(tmp_path / "none.txt")], "--gender-map"),
        (["--gender-map", "x", "--gender-column", "gender"], "not both"),
    ]
    for i, (flags, needle) in enumerate(cases):
        proc = subprocess.run(
            [sys.executable, "-m", "featstore", "build", "--source", f"hf:{tmp_path / 'ds'}",
             "--out", str(tmp_path / f"s{i}"), "--features", "mfcc", "--device", "cpu",
             "--quiet", *flags], capture_output=True, text=True)
        if not needle:
            assert proc.returncode == 0, proc.stderr
            continue
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr


def test_hf_options_on_other_sources_and_bad_specs(tmp_path, capsys):
    with pytest.raises(UserError, match="--speaker-column: for hf: sources only"):
        resolve_source("sample", options={"speaker": "spk"})
    with pytest.raises(UserError, match="no such path, and not a hub id"):
        resolve_source(f"hf:{tmp_path}/missing")
    with pytest.raises(UserError, match="needs a dataset"):
        resolve_source("hf")
    assert main(["perf", "--source", f"hf:{tmp_path}"]) == 2  # perf times files, not records
    # Ray workers read files by path: refused before any cluster is started or joined
    assert main(["build", "--source", f"hf:{tmp_path}", "--out", str(tmp_path / "s"),
                 "--ray", "auto"]) == 2
    assert "--ray does not take an hf: source" in capsys.readouterr().err


def test_spec_forms(tmp_path):
    (tmp_path / "ds").mkdir()
    hub = HfSpec("openslr/librispeech_asr", "clean", "validation", local=False)
    assert parse_spec("openslr/librispeech_asr:clean:validation") == hub
    assert parse_spec("openslr/librispeech_asr") == HfSpec(hub.target, None, None, False)
    assert parse_spec("org/name::test") == HfSpec("org/name", None, "test", False)
    assert parse_spec(f"{tmp_path / 'ds'}:test") == HfSpec(str(tmp_path / "ds"), None, "test",
                                                           True)
    assert parse_spec(str(tmp_path / "ds")) == HfSpec(str(tmp_path / "ds"), None, None, True)
    with pytest.raises(UserError):
        parse_spec("a:b:c:d")


def test_splits_are_subsets(tmp_path):
    sample = sample_path()
    ds_path = save_dict(records_of(sample), tmp_path / "ds")
    both = resolve_source(f"hf:{ds_path}")
    assert {u.subset for u in both.utterances} == {"test-other", "train-clean-100"}
    assert len(both.utterances) == 52 and not both.problems
    one = resolve_source(f"hf:{ds_path}:test-other")
    assert {u.subset for u in one.utterances} == {"test-other"}
    assert len(resolve_source(f"hf:{ds_path}", subsets=["train-clean-100"]).utterances) == 12
    with pytest.raises(UserError, match="no split.*dev-clean; it has train-clean-100, test-"):
        resolve_source(f"hf:{ds_path}", subsets=["dev-clean"])
    picked = select_speakers(both, 4, seed=0)
    assert picked.reader is both.reader and len({u.speaker_id for u in picked.utterances}) == 4


def test_choosing_speakers_keeps_the_problems_of_kept_speakers(tmp_path):
    splits = records_of(sample_path(), gender=False)
    splits["test-other"][0]["speaker_id"] = None  # a record-level problem, no speaker
    save_dict(splits, tmp_path / "ds")
    table = (sample_path() / "SPEAKERS.TXT").read_text().splitlines()
    unlisted = {line.split("|")[0].strip() for line in table if "train-clean-100" in line}
    (tmp_path / "map.txt").write_text("\n".join(
        line for line in table if line.split("|")[0].strip() not in unlisted))
    corpus = resolve_source(f"hf:{tmp_path / 'ds'}", options={"gender_map": str(tmp_path /
                                                                           "map.txt")})
    about = {p.reason.split()[1] for p in corpus.problems if "not in --gender-map" in p.reason}
    assert about == unlisted
    picked = select_speakers(corpus, 4, seed=0)  # F and M suffice: no unlisted speaker
    assert not {u.speaker_id for u in picked.utterances} & unlisted
    assert [p.reason for p in picked.problems] == ["no speaker; skipped"]
    everyone = select_speakers(corpus, 22, seed=0)
    assert len(everyone.problems) == len(corpus.problems) == len(unlisted) + 1


def write_parquet_repo(tmp_path: Path) -> Path:
    """A folder laid out like a hub dataset repository: data/<split>-NNNNN.parquet."""
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    for subset, rows in records_of(sample_path()).items():  # split names allow no '-'
        split = subset.replace("-", "_")
        to_dataset(rows).to_parquet(str(repo / "data" / f"{split}-00000-of-00001.parquet"))
    return repo


def test_parquet_through_load_dataset_equals_folder_store(tmp_path):
    """A local path goes through the same load_dataset call as a hub id."""
    repo = write_parquet_repo(tmp_path)
    assert build("sample", tmp_path / "folder") == 0
    assert build(f"hf:{repo}", tmp_path / "hf", "--workers", "2") == 0  # forked readers
    assert_same_store(tmp_path / "folder", tmp_path / "hf", lambda s: s.replace("-", "_"))


def test_streamed_split_is_spooled_once(tmp_path):
    repo = write_parquet_repo(tmp_path)
    cache = tmp_path / "cache"
    streamed = load_hf(f"{repo}:test_other", None, cache, {}, streaming=True)
    direct = load_hf(f"{repo}:test_other", None, cache, {}, streaming=False)
    assert streamed.utterances == direct.utterances and len(direct.utterances) == 40
    for utt in direct.utterances[:3]:
        assert np.array_equal(sf.read(streamed.reader(utt))[0],
                              sf.read(direct.reader(utt))[0])
    spooled = list((cache / "hf" / "generator").rglob("*.arrow"))
    assert spooled
    again = load_hf(f"{repo}:test_other", None, cache, {}, streaming=True)
    assert list((cache / "hf" / "generator").rglob("*.arrow")) == spooled
    assert len(again.utterances) == len(direct.utterances)


def test_streaming_is_chosen_by_the_sizes_the_dataset_card_declares(tmp_path):
    repo = write_parquet_repo(tmp_path)
    kwargs = {"cache_dir": str(tmp_path / "cache")}
    assert not _larger_than(str(repo), None, None, kwargs, 0)  # no sizes declared
    (repo / "README.md").write_text(
        "---\ndataset_info:\n  splits:\n"
        "  - name: test_other\n    num_bytes: 5000\n    num_examples: 40\n"
        "  - name: train_clean_100\n    num_bytes: 20\n    num_examples: 12\n---\n")
    assert _larger_than(str(repo), None, ["test_other"], kwargs, 100)
    assert not _larger_than(str(repo), None, ["train_clean_100"], kwargs, 100)
    assert _larger_than(str(repo), None, None, kwargs, 5010)
    assert not _larger_than(str(repo), None, None, kwargs, 5020)


def test_audio_folder_without_decoder_is_one_line(tmp_path):
    """datasets encodes audio-folder files with torchcodec; without it, one clear line."""
    try:
        import torchcodec  # noqa: F401
        pytest.skip("torchcodec is installed: the audio folder loads")
    except ImportError:
        pass
    folder = tmp_path / "af" / "train"
    folder.mkdir(parents=True)
    (folder / "a.flac").write_bytes(flac_bytes(0.5))
    (folder / "metadata.csv").write_text("file_name,speaker_id\na.flac,5\n")
    with pytest.raises(UserError, match="torchcodec"):
        resolve_source(f"hf:{tmp_path / 'af'}", cache_dir=tmp_path / "cache")
