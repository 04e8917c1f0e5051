"""The FUSE adapter's callbacks against a tiny in-memory fake of the core (no kernel)."""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from procorefs.adapters.fuse.library import load_mfusepy
from procorefs.adapters.fuse.operations import (
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    RENAME_WHITEOUT,
    FuseOperations,
)
from procorefs.core.types import DirEntry, EntryStat, StatFs
from procorefs.errors import FsAccessDenied, FsNotFound

UID, GID = 4321, 8765


def _file(size: int = 10, *, read_only: bool = False) -> EntryStat:
    return EntryStat(kind="file", size=size, mtime=1_700_000_000.25, ctime=1_600_000_000.5,
                     birthtime=1_600_000_000.5, read_only=read_only, remote_id=7, version=2)


def _dir(*, read_only: bool = False) -> EntryStat:
    return EntryStat(kind="dir", size=0, mtime=1_700_000_100.0, ctime=1_600_000_100.0,
                     birthtime=1_600_000_100.0, read_only=read_only, remote_id=3, version=None)


@dataclass
class FakeCore:
    """Just enough of ProcoreFS: a dict of paths, and a log of the calls made."""

    entries: dict[str, EntryStat] = field(default_factory=lambda: {
        "/": _dir(), "/a.pdf": _file(1000), "/locked.pdf": _file(5, read_only=True),
        "/Sub": _dir(), "/RO": _dir(read_only=True)})
    calls: list[tuple[object, ...]] = field(default_factory=list)
    keep: bool = True
    boom: Exception | None = None

    def _get(self, path: str) -> EntryStat:
        if self.boom is not None:
            raise self.boom
        try:
            return self.entries[path]
        except KeyError:
            raise FsNotFound("", path) from None

    def getattr(self, path: str) -> EntryStat:
        self.calls.append(("getattr", path))
        return self._get(path)

    def readdir(self, path: str) -> list[DirEntry]:
        self.calls.append(("readdir", path))
        prefix = path.rstrip("/") + "/"
        return [DirEntry(p[len(prefix):], s) for p, s in self.entries.items()
                if p.startswith(prefix) and "/" not in p[len(prefix):] and p != "/"]

    def open(self, path: str, flags: int) -> int:
        self.calls.append(("open", path, flags))
        if not flags & os.O_CREAT:
            self._get(path)
        if flags & (os.O_WRONLY | os.O_RDWR) and self.entries[path].read_only:
            raise FsAccessDenied("", path)
        return 42

    def create(self, path: str, flags: int) -> int:
        self.calls.append(("create", path, flags))
        self._get(path.rsplit("/", 1)[0] or "/")
        return 77

    def getattr_handle(self, handle: int) -> EntryStat:
        self.calls.append(("getattr_handle", handle))
        return _file(3)

    def read(self, handle: int, offset: int, size: int) -> bytes:
        self.calls.append(("read", handle, offset, size))
        return b"x" * size

    def read_extent(self, handle: int, offset: int, size: int) -> tuple[int, int, int]:
        self.calls.append(("read_extent", handle, offset, size))
        return (9, offset, size)

    def write(self, handle: int, offset: int, data: bytes) -> int:
        self.calls.append(("write", handle, offset, data))
        return len(data)

    def truncate(self, path: str, size: int, handle: int | None = None) -> None:
        self.calls.append(("truncate", path, size, handle))
        self._get(path) if handle is None else None

    def flush(self, handle: int) -> None:
        self.calls.append(("flush", handle))

    def fsync(self, handle: int) -> None:
        self.calls.append(("fsync", handle))

    def utimens(self, path: str, mtime: float | None) -> None:
        self.calls.append(("utimens", path, mtime))

    def release(self, handle: int) -> None:
        self.calls.append(("release", handle))

    def keep_kernel_cache(self, handle: int) -> bool:
        self.calls.append(("keep_kernel_cache", handle))
        return self.keep

    def mkdir(self, path: str) -> None:
        self.calls.append(("mkdir", path))

    def rmdir(self, path: str) -> None:
        self.calls.append(("rmdir", path))

    def unlink(self, path: str) -> None:
        self.calls.append(("unlink", path))

    def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        self.calls.append(("rename", old, new, replace))

    def statfs(self) -> StatFs:
        self.calls.append(("statfs",))
        return StatFs(block_size=4096, blocks=100, blocks_free=60, files=1000, files_free=900,
                      name_max=255)

    def getxattr(self, path: str, name: str) -> bytes:
        self.calls.append(("getxattr", path, name))
        return b"7"

    def listxattr(self, path: str) -> list[str]:
        self.calls.append(("listxattr", path))
        return ["user.procore.id"]


def _fi(flags: int = os.O_RDONLY) -> SimpleNamespace:
    return SimpleNamespace(flags=flags, fh=0, keep_cache=0, direct_io=0)


@pytest.fixture
def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
def ops(core: FakeCore) -> FuseOperations:
    return FuseOperations(core, uid=UID, gid=GID)


def _errno_of(excinfo: pytest.ExceptionInfo[OSError]) -> int | None:
    return excinfo.value.errno


def test_getattr_of_a_file_encodes_every_field(ops: FuseOperations) -> None:
    st = ops.getattr("/a.pdf")
    assert st["st_mode"] == stat.S_IFREG | 0o644
    assert st["st_size"] == 1000
    assert st["st_nlink"] == 1
    assert (st["st_uid"], st["st_gid"]) == (UID, GID)
    assert st["st_blocks"] == 2  # 512-byte blocks, rounded up
    assert st["st_mtime"] == 1_700_000_000_250_000_000  # nanoseconds (use_ns)
    assert st["st_atime"] == st["st_mtime"]
    assert st["st_ctime"] == 1_600_000_000_500_000_000
    assert st["st_birthtime"] == st["st_ctime"]


def test_read_only_items_lose_their_write_bits(ops: FuseOperations) -> None:
    assert ops.getattr("/locked.pdf")["st_mode"] == stat.S_IFREG | 0o444
    assert ops.getattr("/RO")["st_mode"] == stat.S_IFDIR | 0o555
    assert ops.getattr("/Sub")["st_mode"] == stat.S_IFDIR | 0o755
    assert ops.getattr("/Sub")["st_nlink"] == 2


def test_operations_ask_for_nanosecond_times() -> None:
    assert FuseOperations.use_ns is True


def test_core_errors_travel_with_their_errno(ops: FuseOperations) -> None:
    with pytest.raises(OSError) as excinfo:
        ops.getattr("/missing")
    assert _errno_of(excinfo) == errno.ENOENT


@pytest.mark.allow_log("internal error in getattr")
def test_a_bug_in_the_core_becomes_eio_and_is_logged(
        ops: FuseOperations, core: FakeCore, caplog: pytest.LogCaptureFixture) -> None:
    core.boom = KeyError("oops")
    with pytest.raises(OSError) as excinfo:
        ops.getattr("/a.pdf")
    assert _errno_of(excinfo) == errno.EIO
    assert any(r.levelno == logging.ERROR and "internal error in getattr" in r.getMessage()
               for r in caplog.records)


def test_readdir_lists_dot_entries_and_children_with_what_getattr_answers(
        ops: FuseOperations, core: FakeCore) -> None:
    listing = ops.readdir("/", 0)
    assert listing[:2] == [".", ".."]
    by_name = {item[0]: item[1] for item in listing[2:] if isinstance(item, tuple)}
    assert set(by_name) == {"a.pdf", "locked.pdf", "Sub", "RO"}
    # The kernel takes these as the entries' attributes (readdirplus): they must be exactly
    # getattr's, read-only files and folders included.
    for name, attrs in by_name.items():
        assert attrs == ops.getattr("/" + name), name
    assert by_name["Sub"]["st_mode"] == stat.S_IFDIR | 0o755
    assert by_name["RO"]["st_mode"] == stat.S_IFDIR | 0o555
    assert by_name["locked.pdf"]["st_mode"] == stat.S_IFREG | 0o444
    assert by_name["a.pdf"]["st_size"] == 1000
    assert by_name["a.pdf"]["st_mtime"] == 1_700_000_000_250_000_000
    assert ("readdir", "/") in core.calls


def test_each_open_directory_gets_its_own_handle(ops: FuseOperations) -> None:
    assert len({ops.opendir("/"), ops.opendir("/"), ops.opendir("/Sub")}) == 3


def test_a_listing_read_in_several_requests_is_one_snapshot(
        ops: FuseOperations, core: FakeCore) -> None:
    fh = ops.opendir("/")
    first = ops.listing("/", fh, 0)
    core.entries["/new.pdf"] = _file(1)
    del core.entries["/a.pdf"]
    # Later requests of the same open directory continue the snapshot, without the core.
    assert ops.listing("/", fh, 3) is first
    assert [c for c in core.calls if c[0] == "readdir"] == [("readdir", "/")]
    # Position 0 (rewinddir, or a new listing) asks again.
    names = {item[0] for item in ops.listing("/", fh, 0) if isinstance(item, tuple)}
    assert "new.pdf" in names and "a.pdf" not in names


def test_releasedir_forgets_the_snapshot(ops: FuseOperations, core: FakeCore) -> None:
    fh = ops.opendir("/")
    ops.listing("/", fh, 0)
    assert ops.releasedir("/", fh) == 0
    ops.listing("/", fh, 3)
    assert [c for c in core.calls if c[0] == "readdir"] == [("readdir", "/")] * 2
    assert ops.releasedir(None, fh) == 0


def test_open_sets_the_handle_and_keep_cache_from_the_core(
        ops: FuseOperations, core: FakeCore) -> None:
    fi = _fi()
    assert ops.open("/a.pdf", fi) == 0
    assert (fi.fh, fi.keep_cache) == (42, 1)
    core.keep = False
    fi = _fi()
    ops.open("/a.pdf", fi)
    assert fi.keep_cache == 0


def test_read_and_release_use_the_handle_from_open(ops: FuseOperations, core: FakeCore) -> None:
    fi = _fi()
    ops.open("/a.pdf", fi)
    assert ops.read("/a.pdf", 4, 100, fi) == b"xxxx"
    assert ops.release("/a.pdf", fi) == 0
    assert ("read", 42, 100, 4) in core.calls
    assert ("release", 42) in core.calls


def test_read_buf_asks_the_core_where_the_bytes_lie(ops: FuseOperations,
                                                   core: FakeCore) -> None:
    fi = _fi()
    ops.open("/a.pdf", fi)
    assert ops.read_buf("/a.pdf", 4096, 100, fi) == (9, 100, 4096)
    assert ("read_extent", 42, 100, 4096) in core.calls


def test_create_opens_through_the_core_and_sets_the_handle(
        ops: FuseOperations, core: FakeCore) -> None:
    fi = _fi(os.O_WRONLY | os.O_EXCL)
    fi.keep_cache = 1
    assert ops.create("/Sub/new.txt", 0o644, fi) == 0
    assert (fi.fh, fi.keep_cache) == (77, 0)
    assert core.calls == [("create", "/Sub/new.txt", os.O_WRONLY | os.O_EXCL)]
    with pytest.raises(OSError) as excinfo:
        ops.create("/Nope/new.txt", 0o644, _fi(os.O_WRONLY))
    assert _errno_of(excinfo) == errno.ENOENT


def test_write_flush_fsync_release_go_to_the_handle(ops: FuseOperations,
                                                     core: FakeCore) -> None:
    fi = SimpleNamespace(fh=9)
    assert ops.write(None, b"abc", 5, fi) == 3      # no path: unlinked while open
    assert ops.flush("/a.pdf", fi) == 0
    assert ops.fsync("/a.pdf", 1, fi) == 0
    assert ops.release(None, fi) == 0
    assert core.calls == [("write", 9, 5, b"abc"), ("flush", 9), ("fsync", 9),
                          ("release", 9)]


def test_truncate_and_ftruncate(ops: FuseOperations, core: FakeCore) -> None:
    assert ops.truncate("/a.pdf", 3) == 0
    assert ops.truncate(None, 0, SimpleNamespace(fh=9)) == 0     # ftruncate of an unlinked file
    assert core.calls == [("truncate", "/a.pdf", 3, None), ("truncate", "", 0, 9)]
    with pytest.raises(OSError) as excinfo:
        ops.truncate("/missing", 0)
    assert _errno_of(excinfo) == errno.ENOENT


def test_getattr_without_a_path_answers_from_the_handle(ops: FuseOperations,
                                                        core: FakeCore) -> None:
    # What libfuse sends for fstat() of an open file that was unlinked meanwhile.
    assert ops.getattr(None, SimpleNamespace(fh=42))["st_size"] == 3
    assert core.calls == [("getattr_handle", 42)]
    with pytest.raises(OSError) as excinfo:
        ops.getattr(None, None)
    assert _errno_of(excinfo) == errno.ESTALE


def test_open_for_writing_answers_what_the_core_says(ops: FuseOperations) -> None:
    with pytest.raises(OSError) as excinfo:
        ops.open("/locked.pdf", _fi(os.O_WRONLY | os.O_TRUNC))
    assert _errno_of(excinfo) == errno.EACCES


@pytest.mark.parametrize("name", ["security.capability", "security.selinux",
                                  "system.posix_acl_access", "system.posix_acl_default",
                                  "trusted.overlay.opaque"])
def test_non_user_xattrs_are_enodata_without_asking_the_core(
        ops: FuseOperations, core: FakeCore, name: str) -> None:
    with pytest.raises(OSError) as excinfo:
        ops.getxattr("/a.pdf", name)
    assert _errno_of(excinfo) in (errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA))
    assert core.calls == []


def test_user_xattrs_come_from_the_core(ops: FuseOperations, core: FakeCore) -> None:
    assert ops.getxattr("/a.pdf", "user.procore.id") == b"7"
    assert ops.listxattr("/a.pdf") == ["user.procore.id"]
    assert core.calls == [("getxattr", "/a.pdf", "user.procore.id"), ("listxattr", "/a.pdf")]


def test_setting_or_removing_xattrs_is_not_supported(ops: FuseOperations) -> None:
    with pytest.raises(OSError) as excinfo:
        ops.setxattr("/a.pdf", "user.x", b"1", 0)
    assert _errno_of(excinfo) == errno.ENOTSUP
    with pytest.raises(OSError) as excinfo:
        ops.removexattr("/a.pdf", "user.procore.id")
    assert _errno_of(excinfo) == errno.ENOTSUP


@pytest.mark.parametrize("flags", [RENAME_EXCHANGE, RENAME_WHITEOUT,
                                   RENAME_EXCHANGE | RENAME_NOREPLACE, 1 << 7])
def test_rename_flags_not_implemented_are_einval(
        ops: FuseOperations, core: FakeCore, flags: int) -> None:
    with pytest.raises(OSError) as excinfo:
        ops.rename("/a.pdf", "/b.pdf", flags)
    assert _errno_of(excinfo) == errno.EINVAL
    assert core.calls == []


def test_rename_noreplace_asks_the_core_not_to_replace(
        ops: FuseOperations, core: FakeCore) -> None:
    assert ops.rename("/a.pdf", "/b.pdf", RENAME_NOREPLACE) == 0
    assert ops.rename("/a.pdf", "/c.pdf", 0) == 0
    assert ops.rename("/a.pdf", "/d.pdf") == 0
    assert core.calls == [("rename", "/a.pdf", "/b.pdf", False),
                          ("rename", "/a.pdf", "/c.pdf", True),
                          ("rename", "/a.pdf", "/d.pdf", True)]


def test_namespace_calls_pass_straight_through(ops: FuseOperations, core: FakeCore) -> None:
    assert ops.mkdir("/New", 0o755) == 0
    assert ops.rmdir("/Sub") == 0
    assert ops.unlink("/a.pdf") == 0
    assert core.calls == [("mkdir", "/New"), ("rmdir", "/Sub"), ("unlink", "/a.pdf")]


@pytest.mark.parametrize("call", [
    lambda o: o.link("/hard", "/a.pdf"),
    lambda o: o.symlink("/soft", "a.pdf"),
    lambda o: o.mknod("/fifo", stat.S_IFIFO | 0o644, 0),
])
def test_links_symlinks_and_special_files_are_eperm(
        ops: FuseOperations, core: FakeCore, call: object) -> None:
    with pytest.raises(OSError) as excinfo:
        call(ops)  # type: ignore[operator]
    assert _errno_of(excinfo) == errno.EPERM
    assert core.calls == []


def test_chmod_chown_are_accepted_as_logged_no_ops(
        ops: FuseOperations, core: FakeCore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="procorefs.adapters.fuse.operations")
    assert ops.chmod("/a.pdf", 0o600) == 0
    assert ops.chown("/a.pdf", -1, 100) == 0
    assert core.calls == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("ignored" in m for m in messages) == 2


def test_utimens_decodes_utime_omit_and_utime_now(ops: FuseOperations, core: FakeCore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    utime_omit, utime_now = (1 << 30) - 2, (1 << 30) - 1   # as mfusepy hands them in ns mode
    monkeypatch.setattr("procorefs.adapters.fuse.operations.time.time", lambda: 1234.5)
    assert ops.utimens("/a.pdf", (utime_omit, 1_700_000_000_500_000_000)) == 0
    assert ops.utimens("/a.pdf", (0, utime_omit)) == 0          # mtime omitted: nothing
    assert ops.utimens("/a.pdf", (utime_now, utime_now)) == 0
    assert ops.utimens("/a.pdf", None) == 0                     # utime(path, NULL): now
    assert ops.utimens(None, (0, 0)) == 0
    assert core.calls == [("utimens", "/a.pdf", 1_700_000_000.5),
                          ("utimens", "/a.pdf", 1234.5), ("utimens", "/a.pdf", 1234.5)]


def test_access_mirrors_the_mode_bits(ops: FuseOperations) -> None:
    assert ops.access("/a.pdf", os.R_OK | os.W_OK) == 0
    assert ops.access("/Sub", os.R_OK | os.W_OK | os.X_OK) == 0
    for path, mode in [("/locked.pdf", os.W_OK), ("/RO", os.W_OK), ("/a.pdf", os.X_OK)]:
        with pytest.raises(OSError) as excinfo:
            ops.access(path, mode)
        assert _errno_of(excinfo) == errno.EACCES
    with pytest.raises(OSError) as excinfo:
        ops.access("/missing", os.F_OK)
    assert _errno_of(excinfo) == errno.ENOENT


def test_statfs_comes_from_the_core(ops: FuseOperations) -> None:
    assert ops.statfs("/") == {
        "f_bsize": 4096, "f_frsize": 4096, "f_blocks": 100, "f_bfree": 60, "f_bavail": 60,
        "f_files": 1000, "f_ffree": 900, "f_favail": 900, "f_namemax": 255}


def test_init_reports_the_mount_is_live(core: FakeCore) -> None:
    seen: list[bool] = []
    ops = FuseOperations(core, uid=UID, gid=GID, on_mounted=lambda: seen.append(True))
    ops.init("/")
    assert seen == [True]


# mfusepy registers every attribute whose name is a libfuse operation: a stray attribute named
# ``lock`` or ``flush`` would silently claim the operation (and, for ``lock``, break fcntl
# locking). This is the complete list of what the adapter answers.
EXPECTED_CALLBACKS = {
    "init", "getattr", "access", "opendir", "readdir", "releasedir", "statfs", "open", "create",
    "read", "read_buf", "release",
    "mkdir", "rmdir", "unlink", "rename", "link", "symlink", "mknod", "chmod", "chown",
    "utimens", "getxattr", "listxattr", "setxattr", "removexattr", "truncate", "write",
    "flush", "fsync",
}


def _operation_names() -> set[str]:
    mfusepy, _ = load_mfusepy()
    names = {field[0] for field in mfusepy.fuse_operations._fields_}
    # Names mfusepy maps onto operations too (fgetattr -> getattr and the like).
    return names | {"readdir_with_offset", "init_with_config", "flag_nopath",
                    "flag_nullpath_ok", "ftruncate", "fgetattr"}


def test_only_intended_callbacks_carry_operation_names(ops: FuseOperations) -> None:
    operation_names = _operation_names()
    class_names = {n for n in dir(FuseOperations) if n in operation_names}
    assert class_names == EXPECTED_CALLBACKS
    assert not set(vars(ops)) & operation_names
    # No lock/flock: the kernel then keeps POSIX and flock locks itself.
    assert "lock" not in class_names and "flock" not in class_names
    # nullpath_ok stays off: mfusepy only sets it when both flags are present.
    assert not hasattr(ops, "flag_nullpath_ok") and not hasattr(ops, "flag_nopath")
