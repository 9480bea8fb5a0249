"""Where things live inside a store folder, and the atomic-write helpers every writer uses.

    STORE/plan.json                    what the build will do (written first; resume checks it)
    STORE/shards/shard-NNNNN.h5        a shard's rows: metadata (and, in format 1 stores, the
                                       features built with it)
    STORE/groups/G/shard-NNNNN.h5      feature group G (one extractor's datasets) of that shard
    STORE/adding.json                  an unfinished ``featstore add`` (what --resume must match)
    STORE/index.json                   written last: shards and group files with checksums,
                                       features, problems, provenance
    STORE/.lock                        held (flock) by the one process allowed to write the store

Every file is written under a temporary name and renamed; none is ever rewritten, so a reader
holding an older index keeps finding the files it lists.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import threading
from pathlib import Path

import numpy as np

from featstore.errors import DiskFull
from featstore.store.memfile import PRIVATE, MemoryFile

FORMAT_VERSION = 2  # 1: features inside the shard files; 2: one file per shard and group
PLAN = "plan.json"
INDEX = "index.json"
LOCK = ".lock"
SHARDS = "shards"
GROUPS = "groups"
ADDING = "adding.json"
TMP_PREFIX = ".tmp-"
META_COLUMNS = ("utterance_id", "speaker_id", "gender", "chapter_id", "subset")
META_NUMERIC = {"start_sample": "int64", "n_samples": "int32"}


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.h5"


def group_file(group: str, i: int) -> str:
    """A group file's path relative to the store root."""
    return f"{GROUPS}/{group}/{shard_name(i)}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_write = os.write  # tests replace it to fail at a chosen byte
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux; elsewhere every write is buffered
DIRECT_MIN = 1 << 20  # files this large bypass the page cache where the filesystem allows
BLOCK = 4096  # O_DIRECT's alignment of buffer, offset and length (a page: every device's)
_local = threading.local()  # each writing thread's page-aligned buffer, grown and reused
_digests: dict[tuple, str] = {}  # file identity -> SHA-256 of the bytes this process wrote


def write_bytes_atomic(path: Path, data) -> None:
    """Write ``data`` (bytes or a buffer) to ``path`` crash-safely: under a temporary name,
    fsynced, then renamed. A full disk is a DiskFull naming ``path`` and the bytes it needs,
    found before the file is created where free space says so, and no temporary is left.

    Files of ``DIRECT_MIN`` bytes or more are written with O_DIRECT where the filesystem takes
    it: a shard is written once and not read back soon, and putting its bytes through the
    page cache cost the default build ~2.5 core-s of kernel time for its 963 MB at
    ``--scale 8`` on the 2-core VM (docs/speed.md). The SHA-256 of the bytes is kept for
    ``published_sha256``, so the index need not read the file back."""
    if isinstance(data, MemoryFile):  # already page-aligned: O_DIRECT takes it as it is
        blocks = data.padded(BLOCK)
        view = blocks[: data.size]
    else:
        blocks, view = None, memoryview(data).cast("B")
    tmp = path.with_name(TMP_PREFIX + path.name)
    if shutil.disk_usage(path.parent).free < len(view):
        raise DiskFull(path, len(view))
    digest = hashlib.sha256(view).hexdigest()  # hashlib releases the GIL on large buffers
    fd, direct = _create(tmp, len(view) >= DIRECT_MIN)
    try:
        if direct:
            _write_direct(fd, view, blocks)
        else:
            _write_all(fd, view)
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
    _digests[_identity(path)] = digest


def _create(tmp: Path, direct: bool) -> tuple[int, bool]:
    """A new file opened for writing, with O_DIRECT if asked and the filesystem takes it
    (tmpfs and some FUSE mounts refuse it: EINVAL)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if direct and O_DIRECT:
        try:
            return os.open(tmp, flags | O_DIRECT, 0o644), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    return os.open(tmp, flags, 0o644), False


def _write_all(fd: int, view: memoryview) -> None:
    done = 0
    while done < len(view):
        done += _write(fd, view[done:])


def _write_direct(fd: int, view: memoryview, blocks: memoryview | None) -> None:
    """``view`` through an O_DIRECT descriptor: from ``blocks`` (``view`` zero-padded to whole
    blocks at an aligned address) or else this thread's aligned buffer, then truncated to its
    length. A filesystem that opened the file with O_DIRECT and then refuses the write
    (EINVAL), or a short write that leaves an unaligned offset, gets the bytes written again
    without it."""
    try:
        _write_all(fd, _aligned(view) if blocks is None else blocks)
        os.ftruncate(fd, len(view))
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~O_DIRECT)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        _write_all(fd, view)


def _aligned(view: memoryview) -> memoryview:
    """``view`` copied into this thread's page-aligned buffer, zero-padded to whole blocks."""
    size = -(-len(view) // BLOCK) * BLOCK
    buf = getattr(_local, "buffer", None)
    if buf is None or len(buf) < size:
        buf = _local.buffer = mmap.mmap(-1, size, flags=PRIVATE)  # page-aligned
    out = np.frombuffer(buf, np.uint8, size)
    np.copyto(out[: len(view)], np.frombuffer(view, np.uint8))  # numpy drops the GIL here
    out[len(view) :] = 0
    return memoryview(buf)[:size]


def _identity(path: Path) -> tuple:
    """What changes when a file is replaced or modified (a rename changes ctime too)."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def published_sha256(path: Path) -> str:
    """The SHA-256 of ``path``: the digest of the bytes this process wrote there when the file
    is still the one it published, else read from the file (``sha256_file``)."""
    return _digests.get(_identity(path)) or sha256_file(path)


def write_json_atomic(path: Path, obj: dict) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
