"""``python -m`` from a folder with its own ``models/`` package: one line and exit 2, not a
traceback; the console scripts that avoid the problem are declared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_m(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # our packages, after the cwd
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("# the user's own models package\n")
    return tmp_path


@pytest.mark.parametrize("args", [("bench", "list"), ("featstore", "eda", "no-store")])
def test_python_m_shadowed_by_a_local_models_package(user_folder, args):
    res = _python_m(user_folder, *args)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str((user_folder / "models").resolve()) in lines[0]
    assert f"`{args[0]}` command" in lines[0]


def test_featstore_commands_without_models_still_run_there(user_folder):
    res = _python_m(user_folder, "featstore", "build", "--help")
    assert res.returncode == 0, res.stderr


def test_console_scripts_are_declared(tmp_path, capsys):
    import importlib

    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"featstore": "featstore.cli:main", "bench": "bench.cli:main"}
    # a generated script runs sys.exit(main()): each main must return the exit code
    entry = {name: getattr(importlib.import_module(target.split(":")[0]), target.split(":")[1])
             for name, target in scripts.items()}
    assert entry["bench"](["list"]) == 0
    assert entry["featstore"](["info", str(tmp_path)]) == 2
    assert "not a feature store" in capsys.readouterr().err
