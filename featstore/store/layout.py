"""Where things live inside a store folder, and the atomic-write helpers every writer uses.

    STORE/plan.json            what the build will do (written first; resume checks it)
    STORE/shards/shard-NNNNN.h5 immutable shards, each written under a temporary name and renamed
    STORE/index.json           written last: shards with checksums, features, problems, provenance
    STORE/.lock                held (flock) by the one process allowed to write this store
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

from featstore.errors import DiskFull

FORMAT_VERSION = 1
PLAN = "plan.json"
INDEX = "index.json"
LOCK = ".lock"
SHARDS = "shards"
TMP_PREFIX = ".tmp-"
META_COLUMNS = ("utterance_id", "speaker_id", "gender", "chapter_id", "subset")
META_NUMERIC = {"start_sample": "int64", "n_samples": "int32"}


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.h5"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_write = os.write  # tests replace it to fail at a chosen byte
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def write_bytes_atomic(path: Path, data) -> None:
    """Write ``data`` (bytes or a buffer) to ``path`` crash-safely: under a temporary name,
    fsynced, then renamed. A full disk is a DiskFull naming ``path`` and the bytes it needs,
    found before the file is created where free space says so, and no temporary is left."""
    view = memoryview(data).cast("B")
    tmp = path.with_name(TMP_PREFIX + path.name)
    if shutil.disk_usage(path.parent).free < len(view):
        raise DiskFull(path, len(view))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        done = 0
        while done < len(view):
            done += _write(fd, view[done:])
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        if exc.errno in NO_SPACE:
            raise DiskFull(path, len(view)) from None
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: dict) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
