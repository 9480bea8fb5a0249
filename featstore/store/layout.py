"""Where things live inside a store folder, and the atomic-write helpers every writer uses.

    STORE/plan.json            what the build will do (written first; resume checks it)
    STORE/shards/shard-NNNNN.h5 immutable shards, each written under a temporary name and renamed
    STORE/index.json           written last: shards with checksums, features, problems, provenance
    STORE/.lock                held (flock) by the one process allowed to write this store
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

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


def publish(tmp: Path, final: Path) -> None:
    """Make a fully written temporary file visible under its final name, crash-safely."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(TMP_PREFIX + path.name)
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
    publish(tmp, path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
