"""The store's file writes (featstore.store.layout): large files through O_DIRECT where the
filesystem takes it, buffered otherwise, the same bytes either way; the SHA-256 of the bytes
written stands in for reading the file back only while the file is the one written."""

from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest

from featstore.store import layout


def _payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _recording_open(monkeypatch, refuse_direct: bool = False) -> list[int]:
    """Record the flags of every os.open in layout; optionally refuse O_DIRECT (EINVAL), as
    tmpfs and some FUSE mounts do."""
    flags_seen: list[int] = []
    real = os.open

    def fake(path, flags, *args):
        flags_seen.append(flags)
        if refuse_direct and layout.O_DIRECT and flags & layout.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(path, flags, *args)

    monkeypatch.setattr(layout.os, "open", fake)
    return flags_seen


@pytest.mark.parametrize("size", [layout.DIRECT_MIN + 1, 3 * layout.DIRECT_MIN + 4097])
def test_large_files_go_direct_and_keep_their_exact_bytes(tmp_path, monkeypatch, size):
    """A size that is not a whole number of blocks: padded for O_DIRECT, then truncated."""
    if not layout.O_DIRECT:
        pytest.skip("no O_DIRECT on this platform")
    flags = _recording_open(monkeypatch)
    data = _payload(size)
    path = tmp_path / "f.h5"
    layout.write_bytes_atomic(path, data)
    assert path.read_bytes() == data
    assert any(f & layout.O_DIRECT for f in flags)
    assert not list(tmp_path.glob(layout.TMP_PREFIX + "*"))


def test_small_files_are_buffered(tmp_path, monkeypatch):
    flags = _recording_open(monkeypatch)
    layout.write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert not any(layout.O_DIRECT and f & layout.O_DIRECT for f in flags)
    assert (tmp_path / "x.json").read_text().strip().startswith("{")


def test_a_filesystem_refusing_o_direct_gets_a_buffered_write(tmp_path, monkeypatch):
    flags = _recording_open(monkeypatch, refuse_direct=True)
    data = _payload(2 * layout.DIRECT_MIN + 5)
    layout.write_bytes_atomic(tmp_path / "f.h5", data)
    assert (tmp_path / "f.h5").read_bytes() == data
    assert len(flags) >= 1


def test_a_direct_write_refused_midway_is_written_again_buffered(tmp_path, monkeypatch):
    """A filesystem that opens with O_DIRECT and then refuses the write (EINVAL): the whole
    file is written again without it, no padding left behind."""
    if not layout.O_DIRECT:
        pytest.skip("no O_DIRECT on this platform")
    real = layout._write
    calls = {"n": 0}

    def write(fd, view):
        calls["n"] += 1
        if calls["n"] == 2:  # after a first partial block went through
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, view[: layout.BLOCK] if calls["n"] == 1 else view)

    monkeypatch.setattr(layout, "_write", write)
    data = _payload(layout.DIRECT_MIN + 123)
    layout.write_bytes_atomic(tmp_path / "f.h5", data)
    assert (tmp_path / "f.h5").read_bytes() == data
    assert calls["n"] >= 3


def test_published_digest_is_the_files_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "f.h5"
    data = _payload(layout.DIRECT_MIN + 7)
    layout.write_bytes_atomic(path, data)
    reads = []
    real = layout.sha256_file
    monkeypatch.setattr(layout, "sha256_file", lambda p: reads.append(p) or real(p))
    assert layout.published_sha256(path) == hashlib.sha256(data).hexdigest()
    assert reads == []  # from the bytes written, not read back
    # the same size, other bytes, written by someone else: read, not remembered
    spoilt = bytearray(data)
    spoilt[100] ^= 0xFF
    path.write_bytes(bytes(spoilt))
    assert layout.published_sha256(path) == hashlib.sha256(bytes(spoilt)).hexdigest()
    assert reads == [path]


def test_memory_file_reads_as_a_file_and_reuse_leaves_no_old_bytes():
    """Gaps a write or truncate skips over read as zeros even in a reused buffer that held an
    older, larger file; growth keeps what was written; a released file comes back by key."""
    from featstore.store.memfile import PAGE, memory_file

    f = memory_file("test-group")
    f.write(b"\xff" * (3 << 20))  # past the first capacity: grows
    f.seek(10)
    assert f.read(4) == b"\xff" * 4
    f.release("test-group")
    g = memory_file("test-group")
    assert g is f and g.size == 0 and g.tell() == 0
    g.seek(100)
    g.write(b"abc")  # skips 100 bytes of the old file
    g.truncate(200)  # and extends past what was written
    assert bytes(g.view()) == bytes(100) + b"abc" + bytes(97)
    blocks = g.padded(4096)
    assert len(blocks) == 4096 and bytes(blocks[200:]) == bytes(4096 - 200)
    assert np.frombuffer(blocks, np.uint8).ctypes.data % PAGE == 0  # what O_DIRECT needs
    g.release("test-group")
    assert memory_file("other") is not g


def test_hdf5_in_a_reused_memory_file_is_written_exactly(tmp_path):
    """A shard file built in a buffer that held a larger one: the bytes on disk are the file
    h5py made (it reads back), and the published digest is theirs."""
    import h5py

    from featstore.store.memfile import memory_file

    big = memory_file("group")
    with h5py.File(big, "w") as h:
        h["x"] = np.arange(1 << 20, dtype=np.int64)
    big.release("group")
    small = memory_file("group")
    assert small is big
    with h5py.File(small, "w") as h:
        h.create_dataset("y", data=np.arange(1000, dtype=np.float32), fletcher32=True,
                         chunks=(100,))
    path = tmp_path / "s.h5"
    size = small.size
    layout.write_bytes_atomic(path, small)
    assert path.stat().st_size == size
    with h5py.File(path, "r") as h:
        assert list(h) == ["y"]
        np.testing.assert_array_equal(h["y"][:], np.arange(1000, dtype=np.float32))
    assert layout.published_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
