"""The mount's read entry point: ``read_buf`` answers with the content cache's descriptor.

The mfusepy subclass is driven as libfuse drives it (a real ``struct fuse_bufvec **`` and
``fuse_file_info``) over the FUSE operations and a real ProcoreFS on the fake client; what
libfuse would then copy is read here from the descriptor range the answer names.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procorefs.adapters.fuse.library import load_mfusepy
from procorefs.adapters.fuse.operations import FuseOperations
from procorefs.adapters.fuse.runner import (
    FUSE_BUF_FD_RETRY,
    FUSE_BUF_FD_SEEK,
    FUSE_BUF_IS_FD,
    FUSE_CAP_SPLICE_WRITE,
    FuseBuf,
    FuseBufvec,
    _fuse_class,
    bufvec,
)
from procorefs.api import Scope
from procorefs.clock import ManualClock
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from tests.core.fakeclient import FakeClient

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libfuse 3 API")

MiB = 1 << 20
KiB = 1 << 10
S = Scope(10, 100)
FD_FLAGS = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY

_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient(ManualClock(), company_id=10, projects=(100,))


@pytest.fixture
def fs(tmp_path: Path, client: FakeClient) -> Iterator[ProcoreFS]:
    core = ProcoreFS(client, CoreConfig(Layout("project", 10, 100), tmp_path / "cache",
                                        small_file_bytes=2 * MiB, prefetch_bytes=8 * MiB),
                     clock=ManualClock())
    yield core
    core.close()


@pytest.fixture
def ops(fs: ProcoreFS) -> FuseOperations:
    return FuseOperations(fs, uid=1000, gid=1000)


@pytest.fixture
def fuse(ops: FuseOperations) -> Any:
    cls = _fuse_class()
    instance = cls.__new__(cls)   # no mount: only the attributes the callbacks use
    instance.operations = ops
    instance.raw_fi = True
    instance.encoding, instance.errors, instance.use_ns = "utf-8", "surrogateescape", True
    return instance


def _open(ops: FuseOperations, path: str, flags: int = os.O_RDONLY) -> Any:
    mfusepy, _ = load_mfusepy()
    fi = mfusepy.fuse_file_info(flags=flags)
    ops.open(path, fi)
    return ctypes.pointer(fi)


def _read_buf(fuse: Any, fip: Any, offset: int, size: int, path: bytes = b"/f.bin"
              ) -> tuple[int, FuseBuf | None, int]:
    """One read as libfuse makes it, through mfusepy's wrapper: (status, the answer's one
    buffer, the bufvec's address to free)."""
    slot = ctypes.c_void_p()
    mfusepy, _ = load_mfusepy()
    bufpp = ctypes.cast(ctypes.pointer(slot), mfusepy.fuse_bufvec_pp)
    status = fuse._wrapper(fuse.read_buf, path, bufpp, size, offset, fip)
    if not slot.value:
        return status, None, 0
    vec = FuseBufvec.from_address(slot.value)
    assert (vec.count, vec.idx, vec.off) == (1, 0, 0)
    return status, vec.buf[0], slot.value


def _free(address: int, buf: FuseBuf) -> None:
    """What libfuse's fuse_free_buf does after the reply."""
    if not buf.flags & FUSE_BUF_IS_FD:
        _libc.free(buf.mem)
    _libc.free(address)


def _bytes_of(buf: FuseBuf) -> bytes:
    """What libfuse copies (or splices) to the kernel for this buffer."""
    if buf.flags & FUSE_BUF_IS_FD:
        return os.pread(buf.fd, buf.size, buf.pos)
    return ctypes.string_at(buf.mem, buf.size) if buf.size else b""


def _read_through(fuse: Any, fip: Any, offset: int, size: int) -> bytes:
    status, buf, address = _read_buf(fuse, fip, offset, size)
    assert status == 0 and buf is not None
    try:
        return _bytes_of(buf)
    finally:
        _free(address, buf)


def test_the_structures_have_libfuse_3s_layout() -> None:
    # struct fuse_buf { size_t size; enum flags; void *mem; int fd; off_t pos; } and
    # struct fuse_bufvec { size_t count, idx, off; struct fuse_buf buf[1]; } on LP64.
    assert ctypes.sizeof(FuseBuf) == 40
    assert [FuseBuf.size.offset, FuseBuf.flags.offset, FuseBuf.mem.offset,
            FuseBuf.fd.offset, FuseBuf.pos.offset] == [0, 8, 16, 24, 32]
    assert ctypes.sizeof(FuseBufvec) == 64 and FuseBufvec.buf.offset == 24


def test_an_extent_becomes_a_descriptor_buffer_and_bytes_a_malloced_copy() -> None:
    address = bufvec((17, 5 * MiB, 128 * KiB))
    buf = FuseBufvec.from_address(address).buf[0]
    assert (buf.fd, buf.pos, buf.size, buf.flags, buf.mem) == (17, 5 * MiB, 128 * KiB,
                                                               FD_FLAGS, None)
    _free(address, buf)
    address = bufvec(b"staged bytes")
    buf = FuseBufvec.from_address(address).buf[0]
    assert (buf.flags, buf.size, _bytes_of(buf)) == (0, 12, b"staged bytes")
    _free(address, buf)
    address = bufvec(b"")   # end of file: an empty reply
    buf = FuseBufvec.from_address(address).buf[0]
    assert (buf.flags, buf.size, buf.mem) == (0, 0, None)
    _free(address, buf)


def test_a_procore_file_is_answered_from_the_cache_file(fuse: Any, ops: FuseOperations,
                                                        fs: ProcoreFS,
                                                        client: FakeClient) -> None:
    data = _data(5 * MiB + 1234)
    client.add_file(S, "f.bin", data)
    fip = _open(ops, "/f.bin")
    status, buf, address = _read_buf(fuse, fip, 3 * MiB + 10, 128 * KiB)
    assert status == 0 and buf is not None
    # libfuse reads the bytes itself, from the version's data file at the read's offset.
    assert buf.flags == FD_FLAGS and (buf.pos, buf.size) == (3 * MiB + 10, 128 * KiB)
    assert _bytes_of(buf) == data[3 * MiB + 10:3 * MiB + 10 + 128 * KiB]
    assert os.readlink(f"/proc/self/fd/{buf.fd}").startswith(str(fs._blocks._data))
    _free(address, buf)
    # Short at the end of the file, empty past it.
    assert _read_through(fuse, fip, len(data) - 100, 128 * KiB) == data[-100:]
    assert _read_through(fuse, fip, len(data) + 5, 128 * KiB) == b""
    ops.release("/f.bin", fip.contents)


def test_read_buf_fetches_and_prefetches_what_read_would(
        tmp_path: Path, fuse: Any, ops: FuseOperations, client: FakeClient) -> None:
    data = _data(12 * MiB, seed=1)
    client.add_file(S, "f.bin", data)
    client.add_file(S, "g.bin", data)
    fip = _open(ops, "/f.bin")
    out = b"".join(_read_through(fuse, fip, offset, 128 * KiB)
                   for offset in range(0, len(data), 128 * KiB))
    assert out == data
    by_buf = sorted((o, n) for _, o, n, _ in client.ranges)
    client.ranges.clear()
    handle = ops._fs.open("/g.bin", os.O_RDONLY)
    assert b"".join(ops._fs.read(handle, offset, 128 * KiB)
                    for offset in range(0, len(data), 128 * KiB)) == data
    by_read = sorted((o, n) for _, o, n, _ in client.ranges)
    assert by_buf == by_read and len(by_buf) > 1   # the same blocks, the same prefetch


def test_the_descriptor_stays_open_while_any_handle_holds_the_version(
        fuse: Any, ops: FuseOperations, client: FakeClient) -> None:
    data = _data(3 * MiB, seed=2)
    client.add_file(S, "f.bin", data)
    first, second = _open(ops, "/f.bin"), _open(ops, "/f.bin")
    status, buf, address = _read_buf(fuse, first, 0, 64 * KiB)
    assert status == 0 and buf is not None
    fd = buf.fd
    _free(address, buf)
    ops.release("/f.bin", first.contents)
    os.fstat(fd)   # the other handle's pin keeps it open
    assert _read_through(fuse, second, MiB, MiB) == data[MiB:2 * MiB]
    ops.release("/f.bin", second.contents)
    # Closed once nothing holds the version (a prefetch still landing holds it too).
    deadline = time.monotonic() + 10
    while _is_open(fd):
        assert time.monotonic() < deadline, "the cache file stayed open after release"
        time.sleep(0.005)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return False
    return True


def test_bytes_being_written_are_answered_as_bytes(fuse: Any, ops: FuseOperations,
                                                   client: FakeClient) -> None:
    client.add_file(S, "f.bin", b"old content")
    mfusepy, _ = load_mfusepy()
    fi = mfusepy.fuse_file_info(flags=os.O_RDWR)
    ops.open("/f.bin", fi)
    ops.write("/f.bin", b"NEW", 0, fi)
    status, buf, address = _read_buf(fuse, ctypes.pointer(fi), 0, 100)
    assert status == 0 and buf is not None
    assert buf.flags == 0 and _bytes_of(buf) == b"NEW content"
    _free(address, buf)
    # Another handle opened while the file is being written reads the staged bytes.
    reader = _open(ops, "/f.bin")
    assert _read_through(fuse, reader, 0, 100) == b"NEW content"
    ops.release("/f.bin", reader.contents)
    ops.release("/f.bin", fi)


def test_an_error_answers_its_errno_and_no_buffer(fuse: Any) -> None:
    mfusepy, _ = load_mfusepy()
    stale = ctypes.pointer(mfusepy.fuse_file_info(fh=987654))
    status, buf, _ = _read_buf(fuse, stale, 0, 4096)
    assert status == -errno.EINVAL and buf is None   # libfuse frees nothing, replies -errno


def test_concurrent_readers_each_get_their_bytes(fuse: Any, ops: FuseOperations,
                                                 client: FakeClient) -> None:
    data = _data(10 * MiB, seed=3)
    client.add_file(S, "f.bin", data)
    failures: list[str] = []

    def reader(seed: int, piece: int) -> None:
        fip = _open(ops, "/f.bin")
        offsets = list(range(0, len(data), piece))
        if seed:
            random.Random(seed).shuffle(offsets)
        for offset in offsets:
            if _read_through(fuse, fip, offset, piece) != data[offset:offset + piece]:
                failures.append(f"reader {seed} at {offset}")
        ops.release("/f.bin", fip.contents)

    threads = [threading.Thread(target=reader, args=(n, piece))
               for n, piece in enumerate((128 * KiB, MiB, 4 * KiB + 3, 300 * KiB))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_init_asks_libfuse_to_splice_replies_when_the_kernel_can(fuse: Any) -> None:
    mfusepy, _ = load_mfusepy()
    conn = mfusepy.fuse_conn_info(capable=0x79FFFDB, want=0x14F819)
    fuse.init_fuse_3(ctypes.pointer(conn), None)
    assert conn.want & FUSE_CAP_SPLICE_WRITE
    # Asking for what the kernel cannot do makes libfuse refuse the mount (EPROTO).
    conn = mfusepy.fuse_conn_info(capable=0x79FFFDB & ~FUSE_CAP_SPLICE_WRITE, want=0x14F819)
    fuse.init_fuse_3(ctypes.pointer(conn), None)
    assert not conn.want & FUSE_CAP_SPLICE_WRITE
