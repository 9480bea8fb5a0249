"""Shard writing: one HDF5 file per shard and feature group, plus the shard's metadata file,
each built in memory in batches, then written under a temporary name and published atomically;
a writer thread behind a bounded queue so extraction never waits on disk.

HDF5 builds the shard in memory (a ``memfile.MemoryFile``, reused per feature group) and our
code writes its bytes (``layout.write_bytes_atomic``): a full disk is then an error of a plain
``os.write`` (one line, no temporary left, ``--resume`` later), where HDF5 writing the file
itself fails inside its own close and crashes the process. It costs a shard's size in memory
(about 100 MB for 256 LibriSpeech utterances of MFCC + audio; more with wav2vec2 frame
states: lower ``--shard-size`` there), kept by the writer thread for the next shard.

HDF5 layout choices (see docs/store.md):
- a per-layer feature (wav2vec2's pooled states) is chunked one layer at a time (the rows of a
  ~1 MiB whole-row chunk, one layer each), so reading one layer reads ~1/L of the bytes;
- every dataset is row-aligned (row = one chunk) and resizable along rows only;
- chunks hold ~1 MiB of whole rows: the size of HDF5's default per-dataset chunk cache, so a
  sequential read decodes each chunk once and a random row costs at most 1 MiB of I/O;
- ``lzf`` with byte shuffle on metadata, which it shrinks several-fold; features are stored
  uncompressed: lzf saved 7% on MFCCs, nothing on float16 wav2vec2 states and 18% on int16
  audio, and it made this one writer thread (which holds the GIL while HDF5 works) ~3x slower,
  enough to hold back a GPU build; ``fletcher32`` on every dataset so corruption is caught on
  read;
- metadata strings are fixed-length UTF-8 (width in bytes), which (unlike variable-length
  strings) can carry the fletcher32 filter; stores written before hold ASCII, which reads the
  same.
"""

from __future__ import annotations

import fcntl
import json
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from featstore.errors import UserError
from featstore.extractors.base import FeatureSpec
from featstore.store.layout import (
    LOCK,
    META_COLUMNS,
    META_NUMERIC,
    write_bytes_atomic,
)
from featstore.store.memfile import memory_file

CHUNK_BYTES = 1 << 20


def rows_per_chunk(shape: tuple[int, ...], dtype: str) -> int:
    row_bytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return max(1, CHUNK_BYTES // max(row_bytes, 1))


def _layer_axis(spec: FeatureSpec) -> bool:
    """A per-layer feature ([layers, dim] rows, "layers" in its params) is chunked one layer
    at a time."""
    layers = spec.params.get("layers")
    return len(spec.shape) == 2 and isinstance(layers, list) and len(layers) == spec.shape[0] > 1


def _create(f: h5py.File, name: str, shape: tuple[int, ...], dtype, compress: bool,
            by_layer: bool = False) -> None:
    # per layer: as many rows per chunk as whole rows would have (a chunk is 1/L of the size),
    # so a shard's last, partly filled chunks allocate no more than whole-row chunks would
    chunk_shape = (1, *shape[1:]) if by_layer else shape
    f.create_dataset(
        name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
        chunks=(rows_per_chunk(shape, np.dtype(dtype).str), *chunk_shape),
        compression="lzf" if compress else None, shuffle=compress, fletcher32=True,
    )


@dataclass(frozen=True)
class ShardPart:
    """One file of a shard: the metadata file (``meta_widths`` given) or a feature group's."""

    path: Path
    specs: list[FeatureSpec]
    meta_widths: dict[str, int] | None = None


class ShardWriter:
    """Writes one file of a shard. Nothing is on disk until ``close``, which writes it under a
    temporary name and publishes it."""

    def __init__(self, path: Path, specs: list[FeatureSpec], meta_widths: dict[str, int] | None,
                 attrs: dict):
        self.path = path
        self.specs = specs
        self.meta = meta_widths is not None
        self.rows = 0
        self.pending: dict[str, list[np.ndarray]] = {}  # metadata columns, written at close
        self.key = str(path.parent)  # the buffer of the same group's last shard file
        self.buffer = memory_file(self.key)
        self.file = h5py.File(self.buffer, "w")
        if self.meta:
            for col in META_COLUMNS:
                _create(self.file, f"meta/{col}", (),
                        h5py.string_dtype("utf-8", max(1, meta_widths[col])), True)
            for col, dtype in META_NUMERIC.items():
                _create(self.file, f"meta/{col}", (), dtype, True)
        for spec in specs:
            _create(self.file, f"features/{spec.name}", spec.shape, spec.dtype, False,
                    _layer_axis(spec))
        for key, value in attrs.items():
            self.file.attrs[key] = value

    def append(self, meta: dict[str, np.ndarray] | None, features: dict[str, np.ndarray]) -> None:
        """Features are written as they come; metadata columns are kept and written whole at
        ``close``: each lzf chunk of theirs holds a whole shard's rows, which every append
        would otherwise decompress, extend and compress again."""
        names = [f"features/{s.name}" for s in self.specs]
        values = [features[s.name] for s in self.specs]
        if self.meta:
            names += [f"meta/{c}" for c in (*META_COLUMNS, *META_NUMERIC)]
            values += [meta[c] for c in (*META_COLUMNS, *META_NUMERIC)]
        if not names:
            return
        n = len(values[0])
        for name, value in zip(names, values, strict=True):
            if len(value) != n:
                raise ValueError(f"{name}: {len(value)} rows, expected {n}")
            if name.startswith("meta/"):
                self.pending.setdefault(name, []).append(value)
            else:
                self._write(name, self.rows, value)
        self.rows += n

    def _write(self, name: str, start: int, value: np.ndarray) -> None:
        ds = self.file[name]
        ds.resize(start + len(value), axis=0)
        # a string column is copied: that keeps h5py's UTF-8 tag on the dtype (numpy drops it
        # when copy=False finds the plain bytes dtype equal)
        ds[start:] = np.asarray(value).astype(ds.dtype, copy=ds.dtype.kind == "S")

    def close(self, problems: list[dict]) -> int:
        for name, parts in self.pending.items():
            self._write(name, 0, np.concatenate(parts))
        self.file.attrs["num_rows"] = self.rows
        self.file.attrs["problems"] = json.dumps(problems)
        self.file.close()
        buffer, self.buffer = self.buffer, None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_bytes_atomic(self.path, buffer)
        finally:
            buffer.release(self.key)
        return self.rows

    def abort(self) -> None:
        self.file.close()
        self.buffer.release(self.key)
        self.buffer = None


class ShardSetWriter:
    """The files of one shard, written together. ``close`` publishes the group files first and
    the metadata file last: a shard whose metadata file exists is complete."""

    def __init__(self, parts: list[ShardPart], attrs: dict):
        self.writers: list[ShardWriter] = []
        try:
            for part in sorted(parts, key=lambda p: p.meta_widths is not None):
                self.writers.append(ShardWriter(part.path, part.specs, part.meta_widths, attrs))
        except BaseException:
            self.abort()
            raise
        self.path = self.writers[-1].path

    def append(self, meta: dict[str, np.ndarray] | None, features: dict[str, np.ndarray]) -> None:
        for w in self.writers:
            w.append(meta, features)

    def close(self, problems: list[dict]) -> int:
        rows = [w.close(problems) for w in self.writers]
        return rows[-1]

    def abort(self) -> None:
        for w in self.writers:
            if w.buffer is not None:
                w.abort()


class ShardSink:
    """Runs ShardWriters on a background thread fed by a bounded queue (back-pressure: when the
    disk is slower than extraction, ``put`` blocks instead of letting memory grow)."""

    def __init__(self, maxsize: int = 8):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self.written: list[tuple[Path, int]] = []
        self.thread = threading.Thread(target=self._run, name="shard-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        writer = None
        while True:
            op, *args = self.queue.get()
            if op == "stop":
                if writer is not None:  # a shard opened and never closed: it never appears
                    writer.abort()
                return
            if self.error is not None:
                continue  # drain after a failure so producers never block forever
            try:
                if op == "open":
                    writer = ShardSetWriter(*args)
                elif op == "rows":
                    writer.append(*args)
                elif op == "close":
                    self.written.append((writer.path, writer.close(*args)))
                    writer = None
            except BaseException as exc:  # surfaced to the producer by _check
                self.error = exc
                if writer is not None:
                    writer.abort()
                    writer = None

    def _put(self, *msg) -> None:
        self._check()
        self.queue.put(msg)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def open(self, parts: list[ShardPart], attrs: dict) -> None:
        self._put("open", parts, attrs)

    def rows(self, meta: dict[str, np.ndarray] | None, features: dict[str, np.ndarray]) -> None:
        self._put("rows", meta, features)

    def close_shard(self, problems: list[dict]) -> None:
        self._put("close", problems)

    def finish(self) -> None:
        self.queue.put(("stop",))
        self.thread.join()
        self._check()


class StoreLock:
    """An exclusive flock on STORE/.lock: one writer process per store, ever."""

    def __init__(self, root: Path):
        self.path = root / LOCK
        self.fd = None

    def __enter__(self) -> StoreLock:
        self.fd = open(self.path, "w")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fd.close()
            raise UserError(f"another process is writing to {self.path.parent}") from None
        self._check_enforced()
        return self

    def _check_enforced(self) -> None:
        """A second lock on the held one must be refused: some mounted buckets (FUSE) accept
        every flock, and then nothing keeps two builds out of one store."""
        with open(self.path, "w") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return
            fcntl.flock(other, fcntl.LOCK_UN)
        self.__exit__()
        raise UserError(f"the filesystem of {self.path.parent} does not enforce flock (a mounted "
                        "bucket?): a store needs flock and atomic rename; put it on a local "
                        "disk or a shared filesystem that has both (NFS, Lustre, CephFS)")

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.fd.close()
