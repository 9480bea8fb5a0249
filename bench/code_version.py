"""The code version in every cell key: a hash of the source files a cell can run.

The files are found, not listed: starting from every module of ``bench`` and ``models``, the
import statements of each file (top-level and inside functions, read with ``ast`` so lazy
imports count too) are followed through ``bench``, ``models`` and ``featstore``, package
``__init__`` files included. A new module a model or view imports joins the hash by itself;
a featstore module no cell imports (the builder, the extractors) does not, since what it does
reaches a cell through the store, whose content is in the key already (``plan.store_key``).

Left out: the modules that only read finished records or parse the command line
(``NOT_IN_CELLS``); editing them changes no number, so it reruns nothing.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "models", "featstore")
ROOTS = ("bench", "models")
NOT_IN_CELLS = ("bench/cli.py", "bench/__main__.py", "bench/report.py", "bench/report_plots.py",
                "bench/compare.py", "bench/verification/report.py",
                "bench/verification/compare.py", "featstore/cli/", "featstore/perf/",
                "featstore/__main__.py")


def _excluded(rel: str) -> bool:
    return any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in NOT_IN_CELLS)


def _module_file(root: Path, module: str) -> Path | None:
    """The file of ``module`` (a.b.c) under ``root``: a.b.c.py or a/b/c/__init__.py."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(root: Path, path: Path) -> set[str]:
    """Modules of PACKAGES that ``path`` imports (with their parent packages)."""
    package = _module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # may be modules
    out = set()
    for name in found:
        parts = name.split(".")
        if parts[0] in PACKAGES:
            out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def cell_files(root: Path = ROOT) -> list[Path]:
    """Every source file a cell can run, sorted."""
    todo = [p for pkg in ROOTS for p in (root / pkg).rglob("*.py")]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        rel = path.relative_to(root).as_posix()
        if path in seen or _excluded(rel):
            continue
        seen.add(path)
        for module in _imports(root, path):
            target = _module_file(root, module)
            if target is not None and target not in seen:
                todo.append(target)
    return sorted(seen)


def code_version(root: Path = ROOT) -> str:
    """Hash of the files of ``cell_files`` (content and path). git commits would miss
    uncommitted edits."""
    h = hashlib.sha256()
    for path in cell_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]
