"""scripts/gpu-check.sh: a dry run on the CPU (the device checked against itself) exercises
every section and the JSON summary; the parity check flags a device that disagrees."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_on_cpu(tmp_path):
    from featstore.extractors import NAMES

    res = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--device", "cpu", "--small", "--out",
         str(tmp_path / "summary.json")], capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHON": sys.executable}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])  # one JSON object on stdout
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] and summary["device"] == "cpu" and summary["missing_modules"] == []

    parity = summary["parity"]
    assert set(NAMES) <= set(parity)  # every registered extractor, whatever they are
    assert parity["chunks"] == 8  # --small
    for name in NAMES:
        assert parity[name]["ok"], (name, parity[name])
        compared = {k: v for k, v in parity[name].items() if isinstance(v, dict)}
        assert compared, name
        for key, v in compared.items():  # the device against itself: the same numbers, and
            # real ones (a comparison of empty or all-zero outputs would also "agree")
            assert v["max_abs_diff"] == 0.0 and v["close_fraction"] == 1.0, (name, key, v)
            assert v["max_abs_ref"] > 0, (name, key)
    assert parity["wav2vec2"]["min_cosine"] == pytest.approx(1.0, abs=1e-6)

    speed = summary["speed"]
    # the audio it timed, recomputed from the sample's files: tiles of whole 2 s chunks (a file
    # shorter than one chunk counts its own length), enough tiles for --small's 20 s
    import math

    import soundfile as sf

    from featstore.sources import resolve_source

    utts = resolve_source("sample").utterances
    frames = [sf.info(u.path).frames for u in utts]
    sample = sum(n if n < 32000 else n // 32000 * 32000 for n in frames) / 16000
    tiles = math.ceil(20.0 / sample)
    assert speed["tiles"] == tiles and speed["files"] == tiles * len(utts)
    assert speed["audio_seconds"] == pytest.approx(tiles * sample)
    assert speed["input_pipeline_rtf"] > 0
    assert speed["writer_wav2vec2_rtf"] > 0 and speed["mfcc"]["extractor_rtf"] > 0
    for section in ("mfcc", "wav2vec2"):
        rtfs = speed[section]["build_rtf"]
        assert len(rtfs) == 3 and str(speed[section]["default_batch_size"]) in rtfs
        assert all(v > 0 for v in rtfs.values())
    w2v = speed["wav2vec2"]
    assert w2v["bare_forward_rtf"] > 0 and "goal_rtf" not in w2v
    assert w2v["best_build_rtf"] == max(w2v["build_rtf"].values())
    assert w2v["slowest_stage"] in ("input pipeline", "writer", "model forward")

    cells = summary["bench"]["cells"]
    assert set(cells) == {"xgboost", "mlp", "cnn"}
    assert all(c["status"] == "ok" and c["device"] == "cpu" for c in cells.values())
    assert all(0.0 <= c["accuracy"] <= 1.0 for c in cells.values())


def test_parity_flags_a_device_that_disagrees(monkeypatch, tiny_wav2vec2):
    import featstore.extractors as fx

    real, made = fx.make_extractor, set()

    def skewed(entry, config=None, context=None):
        ext = real(entry, config, context)
        if entry in made:  # the device side: parity makes each CPU reference first
            extract = ext.extract
            ext.extract = lambda x, n: {k: v + 1 for k, v in extract(x, n).items()}
        made.add(entry)
        return ext

    monkeypatch.setattr(fx, "make_extractor", skewed)
    out = _script().parity("cpu", tiny_wav2vec2, 2)
    assert not out["ok"] and not out["mfcc"]["ok"] and not out["audio"]["ok"]
    assert out["mfcc"]["mfcc"]["max_abs_diff"] > 0.01


def test_no_cuda_is_a_usage_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device cuda is valid here")
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHON": sys.executable})
    assert res.returncode == 2 and "no CUDA GPU" in res.stderr
