"""featstore perf: the JSON contract, the markdown table, and the audio it claims to measure.
Timings are only checked to be positive and finite: the machine running the tests is noisy."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path

import pytest
import soundfile as sf

from featstore.cli import main

TOP_KEYS = {"schema", "device", "device_name", "cpus", "torch_threads", "source", "scale", "files",
            "chunks", "audio_seconds", "repeat", "workers", "batch_size", "rows", "speedups",
            "peak_host_mb", "peak_gpu_mb", "versions"}
ROW_KEYS = {"id", "section", "name", "audio_seconds", "seconds", "rtf", "note", "batch_size",
            "runs"}
MFCC_ROWS = ["decode", "mfcc_classic", "mfcc_batched", "mfcc_build", "mfcc_build_e2e",
             "mfcc_classic_e2e"]
W2V_ROWS = ["wav2vec2_bare", "wav2vec2_unbatched", "wav2vec2_build"]
SOURCE = ["--source", "synthetic", "--speakers", "4", "--device", "cpu", "--quiet",
          "--repeat", "1"]


def _perf(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["perf", *SOURCE, *args])
    return rc, out.getvalue()


def _chunked_seconds(paths: list[str], chunk: int = 32000) -> float:
    """What the store holds of these 16 kHz files: whole chunks, or one padded short file."""
    total = 0
    for p in paths:
        n = sf.info(p).frames
        total += n if n < chunk else n // chunk * chunk
    return total / 16000


def _synthetic_root() -> Path:
    from featstore.sources import resolve_source

    return Path(resolve_source("synthetic", speakers=4).root)


def _selected_paths() -> list[str]:
    from featstore.sources import resolve_source, select_speakers

    corpus = select_speakers(resolve_source("synthetic", speakers=4), 4, 0)
    return [u.path for u in sorted(corpus.utterances, key=lambda u: u.utterance_id)]


@pytest.fixture(scope="module")
def result(tiny_wav2vec2) -> dict:
    rc, out = _perf("--features", "mfcc,wav2vec2", "--model", str(tiny_wav2vec2), "--json")
    assert rc == 0
    return json.loads(out)


def _rows(result: dict) -> dict[str, dict]:
    return {r["id"]: r for r in result["rows"]}


def test_json_has_the_documented_keys(result):
    assert TOP_KEYS | {"wav2vec2_load_seconds"} == set(result)
    assert [r["id"] for r in result["rows"]] == MFCC_ROWS + W2V_ROWS
    for row in result["rows"]:
        assert set(row) == ROW_KEYS
    assert set(result["speedups"]) == {
        "mfcc_in_process", "mfcc_extractor_only", "mfcc_end_to_end",
        "wav2vec2_pipeline_vs_bare", "wav2vec2_pipeline_vs_bare_excl_load",
        "wav2vec2_batched_vs_unbatched"}
    assert result["device"] == "cpu" and result["peak_gpu_mb"] is None
    assert result["cpus"] >= 1 and result["torch_threads"] >= 1 and result["repeat"] == 1
    assert result["batch_size"] == {"mfcc": 256, "wav2vec2": 16}
    assert {"self", "children", "mfcc_build_e2e", "mfcc_classic_e2e"} <= set(
        result["peak_host_mb"])
    assert all(v > 0 for v in result["peak_host_mb"].values())
    assert {"torch", "librosa", "featstore"} <= set(result["versions"])
    # the values behind the keys, recomputed from the files: whole chunks, a short file as one
    chunks = sum(max(1, sf.info(p).frames // 32000) for p in _selected_paths())
    assert result["chunks"] == chunks and result["scale"] == 1
    import torch

    assert result["torch_threads"] == torch.get_num_threads()


# each speed-up as documented in featstore/perf/__init__.py: the ratio of two rows' rtf
SPEEDUP_OF = {"mfcc_in_process": ("mfcc_build", "mfcc_classic"),
              "mfcc_extractor_only": ("mfcc_batched", "mfcc_classic"),
              "mfcc_end_to_end": ("mfcc_build_e2e", "mfcc_classic_e2e"),
              "wav2vec2_pipeline_vs_bare": ("wav2vec2_build", "wav2vec2_bare"),
              "wav2vec2_batched_vs_unbatched": ("wav2vec2_bare", "wav2vec2_unbatched")}


def test_timings_and_speedups_follow_from_the_runs(result):
    for row in result["rows"]:
        for key in ("seconds", "rtf"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["id"], key)
        assert len(row["runs"]) == 1 and row["seconds"] == row["runs"][0]
        assert row["rtf"] == pytest.approx(row["audio_seconds"] / row["seconds"])
    rows = _rows(result)
    for name, (num, den) in SPEEDUP_OF.items():
        assert result["speedups"][name] == pytest.approx(rows[num]["rtf"] / rows[den]["rtf"])
    steady = rows["wav2vec2_build"]["seconds"] - result["wav2vec2_load_seconds"]
    assert result["speedups"]["wav2vec2_pipeline_vs_bare_excl_load"] == pytest.approx(
        rows["wav2vec2_bare"]["seconds"] / steady)


def test_audio_seconds_are_the_files_as_chunked(result):
    paths = _selected_paths()
    expected = _chunked_seconds(paths)
    assert result["files"] == len(paths) == 16
    assert result["audio_seconds"] == pytest.approx(expected)
    rows = _rows(result)
    # every mfcc row and (below the 120 s CPU cap) every batched wav2vec2 row saw all of it,
    # the classic rows counting the samples librosa gave them
    for name in MFCC_ROWS + ["wav2vec2_bare", "wav2vec2_build"]:
        assert rows[name]["audio_seconds"] == pytest.approx(expected), name
    assert 0 < rows["wav2vec2_unbatched"]["audio_seconds"] <= 30 * 2.0


def test_markdown_table(result, tiny_wav2vec2):
    from featstore.perf.report import render_markdown

    text = render_markdown(result)
    assert "| what" in text and "x real time" in text and "|---" in text
    assert "mfcc classic (librosa, one file at a time)" in text and "| speed-up" in text

    # the CLI without --json, and --max-seconds: the first files totalling at least 5 s
    rc, out = _perf("--features", "wav2vec2", "--model", str(tiny_wav2vec2),
                    "--max-seconds", "5")
    assert rc == 0
    assert "| what" in out and "wav2vec2 bare forward" in out and "mfcc classic" not in out
    paths = _selected_paths()
    durations = [sf.info(p).duration for p in paths]
    k = next(i + 1 for i in range(len(paths)) if sum(durations[: i + 1]) >= 5)
    assert f": {k} files, {_chunked_seconds(paths[:k]):.1f} s of audio" in out


def test_classic_rows_are_skipped_without_librosa(monkeypatch, tmp_path):
    from featstore.extractors import ExtractContext
    from featstore.perf import classic

    monkeypatch.setitem(sys.modules, "librosa", None)  # import librosa -> ImportError
    assert classic.in_process([], ExtractContext()) is None
    assert classic.new_process([], ExtractContext(), tmp_path) is None
    rc, out = _perf("--json")
    assert rc == 0
    result = json.loads(out)
    rows = _rows(result)
    for name in ("mfcc_classic", "mfcc_classic_e2e"):
        assert rows[name]["rtf"] is None and "librosa" in rows[name]["note"]
    assert rows["mfcc_build"]["rtf"] > 0 and rows["mfcc_build_e2e"]["rtf"] > 0
    assert set(result["speedups"]) == set()


def test_scale_tiles_the_files_under_new_speakers(tmp_path):
    from featstore.perf.data import make_view
    from featstore.sources import scan_librispeech

    utts = sorted(scan_librispeech(_synthetic_root()).utterances, key=lambda u: u.utterance_id)
    view = make_view(tmp_path / "view", utts, copies=3)
    corpus = scan_librispeech(tmp_path / "view")
    assert corpus.problems == []
    assert [u.utterance_id for u in corpus.utterances] == [u.utterance_id for u in view]
    assert len(view) == 3 * len(utts) and len({u.utterance_id for u in view}) == len(view)
    speakers = {u.speaker_id for u in utts}
    tiled = {u.speaker_id for u in view}
    assert len(tiled) == 3 * len(speakers) and speakers < tiled  # copy 0 keeps the originals
    gender = {u.speaker_id: u.gender for u in utts}
    for u in corpus.utterances:  # each copy: same audio, same sex, a new speaker id
        original = Path(u.path).resolve()
        source = next(v for v in utts if Path(v.path).resolve() == original
                      and v.utterance_id.split("-")[1:] == u.utterance_id.split("-")[1:])
        assert u.gender == gender[source.speaker_id]


def test_scale_multiplies_the_audio(result):
    rc, out = _perf("--json", "--scale", "2")
    assert rc == 0
    scaled = json.loads(out)
    assert scaled["scale"] == 2 and scaled["files"] == 2 * result["files"]
    assert scaled["audio_seconds"] == pytest.approx(2 * result["audio_seconds"])
    assert _rows(scaled)["mfcc_classic"]["audio_seconds"] == pytest.approx(
        scaled["audio_seconds"])


def test_bad_section_is_a_one_line_user_error(capsys):
    assert main(["perf", "--features", "audio", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose from mfcc, wav2vec2" in err


def test_pitch_and_fbank_sections_time_ours_against_the_per_chunk_reference():
    rc, out = _perf("--features", "pitch,fbank", "--json")
    assert rc == 0
    result = json.loads(out)
    rows = _rows(result)
    assert [r["id"] for r in result["rows"]] == [
        "decode", "pitch_batched", "pitch_reference", "fbank_batched", "fbank_reference"]
    assert set(result["speedups"]) == {"pitch_batched_vs_reference",
                                       "fbank_batched_vs_reference"}
    assert set(result["batch_size"]) == {"pitch", "fbank"}
    for f in ("pitch", "fbank"):
        assert rows[f"{f}_batched"]["audio_seconds"] == pytest.approx(result["audio_seconds"])
        ref = rows[f"{f}_reference"]  # at most REFERENCE_CHUNKS chunks of 2 s
        assert 0 < ref["audio_seconds"] <= min(result["audio_seconds"], 200 * 2.0) + 1e-9
        assert ref["rtf"] > 0 and rows[f"{f}_batched"]["rtf"] > 0
    assert "librosa.yin" in rows["pitch_reference"]["note"]
    assert "kaldi.fbank" in rows["fbank_reference"]["note"]


def test_build_section_times_the_default_build_and_states_the_ceiling():
    rc, out = _perf("--features", "build", "--json")
    assert rc == 0
    result = json.loads(out)
    rows = _rows(result)
    assert [r["id"] for r in result["rows"]] == [
        "decode", "build_mfcc_e2e", "build_default_e2e", "mfcc_classic_file_e2e"]
    for key in ("build_mfcc_e2e", "build_default_e2e", "mfcc_classic_file_e2e"):
        assert rows[key]["audio_seconds"] == pytest.approx(result["audio_seconds"])
        assert rows[key]["rtf"] > 0
    assert "whole file" in rows["mfcc_classic_file_e2e"]["note"]
    sp = result["speedups"]
    assert set(sp) == {"default_build_wall_vs_mfcc_build", "mfcc_build_vs_classic_whole_file"}
    assert sp["default_build_wall_vs_mfcc_build"] == pytest.approx(
        rows["build_default_e2e"]["seconds"] / rows["build_mfcc_e2e"]["seconds"])
    c = result["ceiling"]
    per = c["core_seconds_per_audio_second"]
    assert set(per) == {"decode", "mfcc", "pitch", "fbank", "audio"}
    assert all(v > 0 and math.isfinite(v) for v in per.values())
    assert c["mfcc_rtf"] == pytest.approx(c["cores"] / (per["decode"] + per["mfcc"]))
    assert c["default_rtf"] == pytest.approx(c["cores"] / sum(per.values()))
    assert c["default_rtf"] < c["mfcc_rtf"]
    assert c["mfcc_build_share"] == pytest.approx(rows["build_mfcc_e2e"]["rtf"] / c["mfcc_rtf"])
    from featstore.perf import render_markdown

    text = render_markdown(result)
    assert "ceiling on" in text and "librosa once per whole file" in text


def test_dvector_and_named_upstream_sections(tmp_path):
    """The new extractors: batched against one chunk at a time (Resemblyzer's own embed for
    dvector, when importable), same chunks."""
    import importlib.util

    if importlib.util.find_spec("resemblyzer") is None:  # its weights (importing it may fail)
        pytest.skip("resemblyzer (its packaged weights) is not installed")
    from featstore.perf.wav2vec2 import save_random_upstream

    hubert = save_random_upstream(tmp_path / "tiny-hubert", "hubert")
    rc, out = _perf("--features", f"dvector,hubert={hubert}", "--json", "--max-seconds", "8")
    assert rc == 0
    res = json.loads(out)
    rows = {r["id"]: r for r in res["rows"]}
    for name in ("dvector", "hubert"):
        assert rows[f"{name}_batched"]["rtf"] > 0 and res["batch_size"][name] > 0
        one = rows[f"{name}_one_at_a_time"]
        assert one["rtf"] is None or one["rtf"] > 0
    assert "hubert_batched_vs_one_at_a_time" in res["speedups"]
    assert "Resemblyzer" in rows["dvector_one_at_a_time"]["note"] or \
        "not importable" in rows["dvector_one_at_a_time"]["note"]
