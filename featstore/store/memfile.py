"""The in-memory file HDF5 builds a shard file in: page-aligned, grown when needed, and reused.

A fresh ``BytesIO`` per shard file touched every one of its pages anew (a page fault each, the
kernel zeroing it: ~0.6 core-s of the default build's 963 MB at ``--scale 8`` on the 2-core VM)
and its bytes had to be copied into an aligned buffer for O_DIRECT. A ``MemoryFile`` lives in
an anonymous mmap (page-aligned), so ``layout.write_bytes_atomic`` writes it with O_DIRECT as
it is; ``memory_file(key)`` hands back the one the calling thread released under ``key`` (the
writer passes the file's folder: one per feature group), so after the first shard a build
writes into pages it already has.

What h5py needs of a file object: ``readinto``/``read``, ``write``, ``seek``, ``tell``,
``truncate``, ``flush``. Bytes past the end that a write or ``truncate`` skips over read as
zeros, as in a file (a reused buffer holds an older file's bytes there, so they are cleared).
"""

from __future__ import annotations

import io
import mmap
import threading

PAGE = mmap.PAGESIZE
# private, not mmap's default shared anonymous map: that is a shmem file (dearer page faults)
# whose size mremap does not grow (touching the grown part is a SIGBUS)
PRIVATE = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
_free = threading.local()  # each thread's released MemoryFiles: key -> MemoryFile


class MemoryFile(io.RawIOBase):
    def __init__(self, capacity: int = 1 << 20) -> None:
        super().__init__()
        self._map = mmap.mmap(-1, _pages(capacity), flags=PRIVATE)
        self.size = 0  # the file's length
        self.pos = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, b) -> int:
        n = max(0, min(len(b), self.size - self.pos))
        with memoryview(self._map) as m:  # a view: slicing the map itself copies to bytes
            memoryview(b).cast("B")[:n] = m[self.pos : self.pos + n]
        self.pos += n
        return n

    def write(self, b) -> int:
        data = memoryview(b).cast("B")
        end = self.pos + len(data)
        self._extend(self.pos)
        self._reserve(end)
        self._map[self.pos : end] = data
        self.pos, self.size = end, max(self.size, end)
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        self._extend(size)
        self.size = size
        return size

    def flush(self) -> None:
        pass

    def view(self) -> memoryview:
        """The file's bytes (a view: valid until the next write or ``release``)."""
        return memoryview(self._map)[: self.size]

    def padded(self, block: int) -> memoryview:
        """The file's bytes zero-padded to whole ``block``s (a page divides ``block``), from a
        page-aligned address: what O_DIRECT takes."""
        end = -(-self.size // block) * block
        self._reserve(end)
        self._map[self.size : end] = bytes(end - self.size)
        return memoryview(self._map)[:end]

    def release(self, key: str) -> None:
        """Empty the file and keep its pages for this thread's next ``memory_file(key)``."""
        self.size = self.pos = 0
        _files()[key] = self

    def _extend(self, end: int) -> None:
        """Zeros from the file's end to ``end`` (bytes a write or truncate skips over)."""
        if end > self.size:
            self._reserve(end)
            self._map[self.size : end] = bytes(end - self.size)

    def _reserve(self, end: int) -> None:
        if end > len(self._map):  # mremap: the pages written so far move, none is copied
            self._map.resize(_pages(max(end, 2 * len(self._map))))


def _pages(n: int) -> int:
    return max(PAGE, -(-n // PAGE) * PAGE)


def _files() -> dict[str, MemoryFile]:
    if not hasattr(_free, "files"):
        _free.files = {}
    return _free.files


def memory_file(key: str) -> MemoryFile:
    """An empty MemoryFile: the one this thread released under ``key``, else a new one."""
    file = _files().pop(key, None)
    return MemoryFile() if file is None else file
