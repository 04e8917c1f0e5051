"""The mount's readdir entry point: readdirplus entries carry exactly getattr's attributes.

The mfusepy subclass is driven as libfuse drives it, with a real ``fuse_fill_dir_t`` callback
and ``fuse_file_info``, over the FUSE operations and a small fake core (no kernel).
"""

from __future__ import annotations

import ctypes
import stat
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from procorefs.adapters.fuse.library import load_mfusepy
from procorefs.adapters.fuse.operations import FuseOperations
from procorefs.adapters.fuse.runner import (
    FUSE_CAP_READDIRPLUS_AUTO,
    FUSE_CAP_SPLICE_WRITE,
    FUSE_FILL_DIR_PLUS,
    FUSE_READDIR_PLUS,
    _fuse_class,
)
from procorefs.core.types import DirEntry, EntryStat
from procorefs.errors import FsNotFound
from tests.unit.test_fuse_operations import GID, UID, _dir, _file

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libfuse 3 API")



@dataclass
class Core:
    """getattr and readdir of one flat folder, counting the listings asked for."""

    entries: dict[str, EntryStat] = field(default_factory=lambda: {
        "/": _dir(), "/a.pdf": _file(1000), "/locked.pdf": _file(5, read_only=True),
        "/Sub": _dir(), "/RO": _dir(read_only=True), "/big.dwg": _file(3 * 2**30)})
    listings: int = 0

    def getattr(self, path: str) -> EntryStat:
        try:
            return self.entries[path]
        except KeyError:
            raise FsNotFound("", path) from None

    def readdir(self, path: str) -> list[DirEntry]:
        if path != "/":
            raise FsNotFound("", path)
        self.listings += 1
        return [DirEntry(p[1:], s) for p, s in self.entries.items() if p != "/"]


@dataclass
class Filler:
    """libfuse's filler: takes ``room`` entries, then answers 1 (buffer full)."""

    room: int = 1000
    taken: list[tuple[str, bytes, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        mfusepy, _ = load_mfusepy()
        self.c = mfusepy.fuse_fill_dir_t(self._fill)

    def _fill(self, buf: Any, name: bytes, st: Any, off: int, flags: int) -> int:
        if self.room == 0:
            return 1
        self.room -= 1
        self.taken.append((name.decode(), ctypes.string_at(st, ctypes.sizeof(st.contents)),
                           off, flags))
        return 0


@pytest.fixture
def core() -> Core:
    return Core()


@pytest.fixture
def ops(core: Core) -> FuseOperations:
    return FuseOperations(core, uid=UID, gid=GID)  # type: ignore[arg-type]


@pytest.fixture
def fuse(ops: FuseOperations) -> Any:
    cls = _fuse_class()
    instance = cls.__new__(cls)   # no mount: only the attributes the callbacks use
    instance.operations = ops
    instance.encoding, instance.errors, instance.use_ns = "utf-8", "surrogateescape", True
    return instance


def _fip(fh: int) -> Any:
    mfusepy, _ = load_mfusepy()
    return ctypes.pointer(mfusepy.fuse_file_info(fh=fh))


def _as_getattr_answers(ops: FuseOperations, path: str) -> bytes:
    """The struct stat mfusepy builds from getattr for ``path`` (its fgetattr does this)."""
    mfusepy, _ = load_mfusepy()
    st = mfusepy.c_stat()
    mfusepy.set_st_attrs(st, ops.getattr(path), use_ns=True)
    return bytes(st)


def _read_all(fuse: Any, fh: int, flags: int, room: int) -> list[tuple[str, bytes, int, int]]:
    """Read a listing as the kernel does: request after request, each from the offset of the
    last entry taken, until a request adds nothing."""
    taken: list[tuple[str, bytes, int, int]] = []
    offset = 0
    for _ in range(100):
        filler = Filler(room)
        assert fuse.readdir_fuse_3(b"/", None, filler.c, offset, _fip(fh), flags) == 0
        if not filler.taken:
            return taken
        taken += filler.taken
        assert filler.taken[-1][2] > offset, "an offset that does not move on"
        offset = filler.taken[-1][2]
    raise AssertionError("the listing never ended")


def test_readdirplus_fills_every_entry_with_getattrs_attributes(
        fuse: Any, ops: FuseOperations, core: Core) -> None:
    fh = ops.opendir("/")
    filler = Filler()
    assert fuse.readdir_fuse_3(b"/", None, filler.c, 0, _fip(fh), FUSE_READDIR_PLUS) == 0
    names = [name for name, *_ in filler.taken]
    assert names == [".", "..", "a.pdf", "locked.pdf", "Sub", "RO", "big.dwg"]
    for name, st, _, flags in filler.taken[2:]:
        assert flags == FUSE_FILL_DIR_PLUS, name
        assert st == _as_getattr_answers(ops, "/" + name), name
    mfusepy, _ = load_mfusepy()
    by_name = {name: mfusepy.c_stat.from_buffer_copy(st) for name, st, *_ in filler.taken}
    assert by_name["RO"].st_mode == stat.S_IFDIR | 0o555
    assert by_name["locked.pdf"].st_mode == stat.S_IFREG | 0o444
    assert by_name["big.dwg"].st_size == 3 * 2**30
    assert by_name["a.pdf"].st_mtimespec.tv_nsec == 250_000_000
    # The dot entries stay plain (libfuse looks up neither) but say they are folders.
    for name, _, _, flags in filler.taken[:2]:
        assert flags == 0 and stat.S_ISDIR(by_name[name].st_mode)
    # libfuse 3.14 throws readdirplus attributes of offset-0 entries away: none has one.
    assert [off for *_, off, _ in filler.taken] == list(range(1, 8))
    assert core.listings == 1


@pytest.mark.parametrize("room", [1, 2, 3, 5])
def test_a_listing_bigger_than_the_buffer_resumes_at_the_kernels_offset(
        fuse: Any, ops: FuseOperations, core: Core, room: int) -> None:
    fh = ops.opendir("/")
    taken = _read_all(fuse, fh, FUSE_READDIR_PLUS, room)
    assert [name for name, *_ in taken] == [".", "..", "a.pdf", "locked.pdf", "Sub", "RO",
                                            "big.dwg"]
    assert all(st == _as_getattr_answers(ops, "/" + name) for name, st, *_ in taken[2:])
    assert core.listings == 1   # one snapshot for all the requests of this open directory


def test_a_change_between_two_requests_neither_skips_nor_repeats(
        fuse: Any, ops: FuseOperations, core: Core) -> None:
    fh = ops.opendir("/")
    first = Filler(room=4)
    fuse.readdir_fuse_3(b"/", None, first.c, 0, _fip(fh), FUSE_READDIR_PLUS)
    del core.entries["/a.pdf"]          # before the cursor: shifts every later entry
    core.entries["/0 new.pdf"] = _file(1)
    rest = Filler()
    fuse.readdir_fuse_3(b"/", None, rest.c, first.taken[-1][2], _fip(fh), FUSE_READDIR_PLUS)
    names = [name for name, *_ in first.taken + rest.taken]
    assert names == [".", "..", "a.pdf", "locked.pdf", "Sub", "RO", "big.dwg"]


def test_plain_readdir_asks_for_no_attributes(fuse: Any, ops: FuseOperations) -> None:
    taken = _read_all(fuse, ops.opendir("/"), 0, room=3)
    assert len(taken) == 7
    assert {flags for *_, flags in taken} == {0}


def test_a_missing_folder_is_enoent(fuse: Any, ops: FuseOperations) -> None:
    # mfusepy's wrapper answers the errno the core's error carries.
    with pytest.raises(FsNotFound):
        fuse.readdir_fuse_3(b"/gone", None, Filler().c, 0, _fip(ops.opendir("/gone")),
                            FUSE_READDIR_PLUS)


def test_the_mount_asks_the_kernel_for_readdirplus_on_every_request(fuse: Any) -> None:
    mounted: list[bool] = []
    fuse.operations = FuseOperations(Core(), uid=UID, gid=GID,  # type: ignore[arg-type]
                                     on_mounted=lambda: mounted.append(True))
    mfusepy, _ = load_mfusepy()
    # What libfuse 3.14 offers and wants by default against this kernel.
    conn = mfusepy.fuse_conn_info(capable=0x79FFFDB, want=0x14F819)
    fuse.init_fuse_3(ctypes.pointer(conn), None)
    # (and splice replies: tests/unit/test_fuse_read_buf.py)
    assert conn.want & ~FUSE_CAP_SPLICE_WRITE == 0x14F819 & ~FUSE_CAP_READDIRPLUS_AUTO
    assert conn.want & (1 << 13)   # FUSE_CAP_READDIRPLUS itself stays on
    assert mounted == [True]       # and the operations' own init still ran
