"""featstore perf: the JSON contract, the markdown table, and the audio it claims to measure.
Timings are only checked to be positive and finite: the machine running the tests is noisy."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys

import pytest
import soundfile as sf

from featstore.cli import main

TOP_KEYS = {"schema", "device", "device_name", "cpus", "torch_threads", "source", "files",
            "chunks", "audio_seconds", "repeat", "workers", "batch_size", "rows", "speedups",
            "peak_host_mb", "peak_gpu_mb", "versions"}
ROW_KEYS = {"id", "section", "name", "audio_seconds", "seconds", "rtf", "note", "batch_size",
            "runs"}
MFCC_ROWS = ["decode", "mfcc_classic", "mfcc_batched", "mfcc_build", "mfcc_build_e2e",
             "mfcc_classic_e2e"]
W2V_ROWS = ["wav2vec2_bare", "wav2vec2_unbatched", "wav2vec2_build"]
SOURCE = ["--source", "synthetic", "--speakers", "4", "--device", "cpu", "--quiet"]


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


def test_timings_are_positive_and_finite(result):
    for row in result["rows"]:
        for key in ("seconds", "rtf"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["id"], key)
        assert len(row["runs"]) == 1 and row["seconds"] == row["runs"][0]
        assert row["rtf"] == pytest.approx(row["audio_seconds"] / row["seconds"])
    for name, value in result["speedups"].items():
        assert math.isfinite(value) and value > 0, name


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
    from featstore.perf import render_markdown

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
    from featstore.extractors import ExtractorOptions
    from featstore.perf import measure_classic_process, measure_mfcc_classic

    monkeypatch.setitem(sys.modules, "librosa", None)  # import librosa -> ImportError
    row = measure_mfcc_classic([], ExtractorOptions(), 1)
    assert row["seconds"] is None and row["rtf"] is None and "librosa" in row["note"]
    row, peak = measure_classic_process([], ExtractorOptions(), 1.0, 1, tmp_path)
    assert row["rtf"] is None and peak is None


def test_bad_section_is_a_one_line_user_error(capsys):
    assert main(["perf", "--features", "audio", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose from mfcc, wav2vec2" in err
