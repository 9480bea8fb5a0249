"""Provenance recorded with every store and benchmark run: versions, git commit, host, time."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

PACKAGES = ("featstore", "torch", "torchaudio", "transformers", "h5py", "numpy", "soundfile",
            "scikit-learn", "xgboost", "pandas")


def versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Installed versions of the project's packages (plus ``extra``); None when absent."""
    out = {"python": platform.python_version()}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the code that ran (None outside a git checkout); '+dirty' if modified."""
    cwd = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=5)
        sha = head.stdout.strip() if head.returncode == 0 else ""
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not sha:
        return None
    return sha + ("+dirty" if dirty else "")


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record(device: str) -> dict:
    return {"versions": versions(), "git_commit": git_commit(), "created": now(),
            "command": " ".join(sys.argv), "host": platform.node(), "device": device,
            "device_name": device_name(device)}
