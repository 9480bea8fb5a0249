"""The README's walk-through runs as written, on the embedded sample (a doctest for the shell)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SECTION = "## Five minutes with the sample"


def walkthrough_commands(readme: str) -> str:
    """The bash block(s) of the walk-through section, joined."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end > 0 else None]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, f"no bash block under {SECTION!r}"
    return "\n".join(blocks)


def test_readme_walkthrough_runs(tmp_path):
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    shutil.copy(ROOT / "benchmarks.yaml", tmp_path / "benchmarks.yaml")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"],
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    board = (tmp_path / "runs" / "a" / "leaderboard.md").read_text()
    assert "mfcc+pitch" in board and "logreg" in board
    # compare paired the cells of the two runs (same task, views, models, seeds)
    assert "gender" in proc.stdout and "logreg" in proc.stdout
