"""The store folder before a build: what is there, whether the build may use it, clearing it
for ``--overwrite``, and making sure it can be written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from featstore.errors import UserError
from featstore.store.layout import INDEX, LOCK, PLAN, SHARDS, TMP_PREFIX, fsync_dir


def check_folder(out: Path, *, resume: bool, overwrite: bool) -> list[Path]:
    """What is already in ``out``; refuses unless ``resume`` or ``overwrite`` says what to do."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    existing = [p for p in out.iterdir() if p.name != LOCK] if out.exists() else []
    if existing and not (resume or overwrite):
        raise UserError(f"{out} already exists: pass --resume to finish it or --overwrite "
                        "to replace it")
    if existing and overwrite and not ((out / PLAN).exists() or (out / INDEX).exists()):
        raise UserError(f"refusing to --overwrite {out}: it is not a feature store")
    parent = out.absolute()
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write to {out}: {parent} is not writable")
    return existing


def clear_store(out: Path, existing: list[Path]) -> None:
    """Remove an old store for --overwrite. The index goes first (and durably), so an
    interrupted removal leaves a store that reads as incomplete, never an index describing
    deleted shards; the plan goes last, so a retried --overwrite still recognises the store."""
    rank = {INDEX: 0, PLAN: 2}
    for p in sorted(existing, key=lambda p: rank.get(p.name, 1)):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
        if p.name == INDEX:
            fsync_dir(out)  # gone on disk before any shard is
    (out / SHARDS).mkdir(exist_ok=True)


def make_folder(out: Path) -> None:
    """Create ``out`` and its shard folder, and prove a file can be written there and renamed
    over another (how every shard and index is published)."""
    try:
        (out / SHARDS).mkdir(parents=True, exist_ok=True)
        renamed = rename_replaces(out / SHARDS)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror}") from None
    if not renamed:
        raise UserError(NO_RENAME.format(out))


NO_RENAME = ("renaming a file over another in {} does not replace it: a store needs atomic "
             "rename; put it on a local disk or a shared filesystem that has it (NFS, Lustre, "
             "CephFS)")


def rename_replaces(folder: Path, tag: str = "") -> bool:
    """Whether a file renamed over another in ``folder`` replaces it (probe files, removed).
    ``tag`` keeps probes of several processes (Ray workers) apart."""
    probe, other = (folder / f"{TMP_PREFIX}probe{tag}-{k}" for k in "ab")
    probe.write_text("old")
    other.write_text("new")
    os.replace(other, probe)
    ok = probe.read_text() == "new" and not other.exists()
    probe.unlink()
    return ok
