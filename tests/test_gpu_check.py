"""scripts/gpu-check.sh runs end to end: a small --device cpu dry run of the same code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_dry_run_on_cpu(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--device", "cpu",
                           "--dry-run", "--chunks", "4"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # stdout is the JSON summary alone
    # every computed extractor compared, each output judged
    assert {"mfcc", "wav2vec2"} <= set(summary["parity"])
    assert "audio" not in summary["parity"]
    for outputs in summary["parity"].values():
        assert outputs and all(v["ok"] for v in outputs.values())
    assert summary["parity"]["wav2vec2"]["wav2vec2/mean"]["min_cosine"] > 0.999
    # three batch sizes per feature, the default one first, each timed on the same audio
    for feature in ("mfcc", "wav2vec2"):
        rows = [r for r in summary["throughput"] if r["feature"] == feature]
        assert [r["default_batch"] for r in rows] == [True, False, False]
        sizes = [r["batch_size"] for r in rows]
        assert sizes[1] == max(1, sizes[0] // 2) and sizes[2] == 2 * sizes[0]
        assert all(r["x_real_time"] > 0 and r["audio_seconds"] > 60 for r in rows)
    cells = {(r["model"], r["features"]): r for r in summary["bench"]}
    assert set(cells) == {("xgboost", "mfcc"), ("mlp", "mfcc"), ("cnn", "mfcc-frames")}
    assert all(r["status"] == "ok" and 0 <= r["accuracy"] <= 1 for r in cells.values())
    assert summary["parity_ok"] and summary["bench_ok"]


def test_gpu_check_without_cuda_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU machine runs the real check instead")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--device", "cuda"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("gpu-check: no CUDA device here")
