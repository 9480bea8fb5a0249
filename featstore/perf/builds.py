"""The real build, timed: ``build()`` in this process, and ``python -m featstore build`` as a
new process (start-up, imports and writing the store included)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from featstore.build import BuildConfig, build
from featstore.extractors.configs import Wav2Vec2Config
from featstore.perf.config import PerfConfig
from featstore.perf.timing import run_process, timed


def in_process(view: Path, feature: str, cfg: PerfConfig, device: str, tmp: Path,
               batch_size: int | None = None) -> Callable[[], float]:
    """A timed ``build()`` of one feature of ``view``, into a fresh store each time (removed
    once timed)."""

    def run() -> float:
        out = Path(tempfile.mkdtemp(prefix=f"{feature}-store-", dir=tmp))
        try:
            return timed(lambda: build(BuildConfig(
                out=out, source=str(view), features=[feature],
                chunk_seconds=cfg.chunk_seconds, batch_size=batch_size or cfg.batch_size,
                workers=cfg.workers, quiet=True,
                device=device, configs={"wav2vec2": Wav2Vec2Config(model=cfg.model)},
            )), device)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    return run


def new_process(view: Path, feature: str, cfg: PerfConfig, device: str, tmp: Path
                ) -> tuple[Callable[[], float], list[float]]:
    """A timed ``python -m featstore build`` of one feature of ``view``, and a list that
    receives each run's peak memory (MB)."""
    extra = [] if cfg.batch_size is None else ["--batch-size", str(cfg.batch_size)]
    extra += [] if cfg.workers is None else ["--workers", str(cfg.workers)]
    peaks: list[float] = []

    def run() -> float:
        out = Path(tempfile.mkdtemp(prefix=f"{feature}-e2e-", dir=tmp))
        try:
            seconds, peak = run_process(
                [sys.executable, "-m", "featstore", "build", "--source", str(view), "--out",
                 str(out), "--features", feature, "--device", device, "--chunk-seconds",
                 str(cfg.chunk_seconds), "--model", cfg.model, "--quiet", *extra],
                tmp, "python -m featstore build")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        peaks.append(peak)
        return seconds

    return run, peaks
