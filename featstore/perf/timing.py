"""Timing and result rows: calls timed in this process, commands timed as new processes (with
their peak memory), measurements alternated so a busy machine slows both sides alike."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from featstore.errors import UserError

RSS_UNIT = 1024.0 * (1024.0 if sys.platform == "darwin" else 1.0)  # ru_maxrss: KiB (macOS: B)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: str = "cpu") -> float:
    """Wall seconds of one call of ``fn`` (GPU work included)."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def alternate(fns: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """``repeat`` rounds, each running every function once in turn; each returns its seconds.
    Alternating (rather than all runs of one, then the other) spreads a busy spell of the
    machine over both sides of a comparison."""
    runs: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            runs[key].append(fn())
    return runs


def make_row(row_id: str, section: str, name: str, audio_seconds: float, runs: list[float] | None,
             note: str, batch_size: int | None = None) -> dict:
    """A result row: the median of ``runs`` (None: skipped, note says why)."""
    seconds = statistics.median(runs) if runs else None
    rtf = audio_seconds / seconds if seconds else None
    return {"id": row_id, "section": section, "name": name, "audio_seconds": audio_seconds,
            "seconds": seconds, "rtf": rtf, "note": note, "batch_size": batch_size,
            "runs": list(runs or [])}


def ratio(rows: dict[str, dict], num: str, den: str) -> float | None:
    a, b = rows.get(num, {}).get("rtf"), rows.get(den, {}).get("rtf")
    return a / b if a and b else None


# Runs a command and reports its exit code, wall seconds and peak RSS (KiB, wait4). Started
# from this (large) process, a child's ru_maxrss would start at our own RSS: Linux carries the
# parent's high-water mark over at exec. This small launcher makes the child's numbers its own.
LAUNCHER = """
import json, os, subprocess, sys, time
with open(sys.argv[1], "w") as log:
    t0 = time.perf_counter()
    proc = subprocess.Popen(sys.argv[3:], stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[2], "w") as out:
    json.dump([proc.returncode, seconds, usage.ru_maxrss], out)
"""


def run_process(cmd: list[str], cwd: Path, what: str) -> tuple[float, float]:
    """Run ``cmd`` to completion in ``cwd``: (wall seconds from spawn to exit, peak resident
    memory in MB of it and its children). Raises UserError with its last line if it fails."""
    log, report = cwd / "process.log", cwd / "process.json"
    subprocess.run([sys.executable, "-c", LAUNCHER, str(log), str(report), *cmd], cwd=cwd,
                   check=True)
    code, seconds, maxrss = json.loads(report.read_text())
    if code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"{what} failed (exit {code}): {tail[0][:200]}")
    return seconds, maxrss / RSS_UNIT
