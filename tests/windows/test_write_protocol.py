"""The adapter's half of writing, against a small in-memory core that has the write surface.

What WinFsp asks of a write (write-to-end, constrained I/O, overwrite, allocation and end of
file, flush and write-through) is protocol, not policy: these tests pin down which core call
each callback makes, with the shape the adapter is written against (``corefs.WritableCore``).
The same sequences against the real core and Procore are in ``test_saves.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from procorefs.adapters.winfsp import fileinfo as fi
from procorefs.adapters.winfsp import ntstatus
from procorefs.adapters.winfsp.corefs import WritableCore
from procorefs.core.types import DirEntry, EntryStat, StatFs
from procorefs.errors import FsExists, FsInvalid, FsNoSpace, FsNotFound
from tests.windows import fakewinfspy
from tests.windows.conftest import USER_SID
from tests.windows.driver import READ, WRITE, Windows

ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR  # os.O_ACCMODE does not exist on Windows


@dataclass
class MemoryCore:
    """Files in a dict; every call is recorded as (method, path-or-handle, ...)."""

    files: dict[str, bytearray] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    handles: dict[int, str] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def _stat(self, path: str) -> EntryStat:
        if path in self.dirs:
            return EntryStat("dir", 0, 1.0, 1.0, 1.0, False, None, None)
        if path in self.files:
            return EntryStat("file", len(self.files[path]), 1.0, 1.0, 1.0, False, 7, 1)
        raise FsNotFound("", path)

    def getattr(self, path: str) -> EntryStat:
        return self._stat(path)

    def readdir(self, path: str) -> list[DirEntry]:
        prefix = path.rstrip("/") + "/"
        return [DirEntry(p[len(prefix):], self._stat(p)) for p in [*self.files, *self.dirs]
                if p.startswith(prefix) and "/" not in p[len(prefix):] and p != path]

    def open(self, path: str, flags: int) -> int:
        self._stat(path)
        self.calls.append(("open", path, flags & ACCMODE))
        handle = len(self.handles) + 1
        self.handles[handle] = path
        return handle

    def read(self, handle: int, offset: int, size: int) -> bytes:
        return bytes(self.files[self.handles[handle]][offset:offset + size])

    def release(self, handle: int) -> None:
        self.calls.append(("release", self.handles.pop(handle)))

    def mkdir(self, path: str) -> None:
        self.dirs.add(path)

    def rmdir(self, path: str) -> None:
        self.dirs.discard(path)

    def unlink(self, path: str) -> None:
        self.calls.append(("unlink", path))
        del self.files[path]

    def rename(self, old: str, new: str, *, replace: bool = True) -> None:
        if new in self.files and not replace:
            raise FsExists("", new)
        self.files[new] = self.files.pop(old)
        for handle, path in self.handles.items():
            if path == old:
                self.handles[handle] = new

    def statfs(self) -> StatFs:
        return StatFs(4096, 1000, 1000, 100, 100, 255)

    # -- the write surface ---------------------------------------------------------------
    def create(self, path: str, flags: int) -> int:
        if path in self.files:
            raise FsExists("", path)
        self.calls.append(("create", path, flags & (os.O_CREAT | os.O_EXCL | ACCMODE)))
        self.files[path] = bytearray()
        handle = len(self.handles) + 1
        self.handles[handle] = path
        return handle

    def write(self, handle: int, offset: int, data: bytes) -> int:
        content = self.files[self.handles[handle]]
        if offset > len(content):
            content.extend(bytes(offset - len(content)))
        content[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path: str, size: int, handle: int | None = None) -> None:
        if handle is not None and self.handles.get(handle) != path:
            raise FsInvalid("the handle is not open on that path", path)
        self.calls.append(("truncate", path, size))
        content = self.files[path]
        del content[size:]
        content.extend(bytes(size - len(content)))

    def flush(self, handle: int) -> None:
        self.calls.append(("flush", self.handles[handle]))

    def fsync(self, handle: int) -> None:
        self.calls.append(("fsync", self.handles[handle]))


@pytest.fixture
def memory(fake_winfspy: ModuleType) -> tuple[MemoryCore, Windows]:
    core = MemoryCore()
    assert isinstance(core, WritableCore)
    ops = fake_winfspy.ProcoreOperations(core, label="Procore – Test",
                                         sddl=f"O:{USER_SID}G:{USER_SID}D:P")
    return core, Windows(ops, fakewinfspy.NTStatusError)


def test_create_writes_and_close(memory: tuple[MemoryCore, Windows]) -> None:
    core, windows = memory
    context = windows.create("a.txt")
    assert core.calls[-1] == ("create", "/a.txt", os.O_CREAT | os.O_EXCL | os.O_RDWR)
    windows.write_all(context, b"hello")
    assert windows.call("write", context, b"!", 999, True, False) == 1
    assert windows.call("get_file_info", context)["file_size"] == 6
    windows.close(context)
    assert core.files["/a.txt"] == b"hello!"
    assert core.calls[-1:] == [("release", "/a.txt")]


def test_constrained_io_never_extends(memory: tuple[MemoryCore, Windows]) -> None:
    core, windows = memory
    core.files["/b.bin"] = bytearray(b"0123456789")
    context = windows.open("b.bin", READ | WRITE)
    assert windows.call("write", context, b"ABCDE", 8, False, True) == 2
    assert windows.call("write", context, b"Z", 10, False, True) == 0
    assert windows.call("write", context, b"xy", 12, False, False) == 2
    windows.close(context)
    assert core.files["/b.bin"] == b"01234567AB\x00\x00xy"


def test_overwrite_and_end_of_file(memory: tuple[MemoryCore, Windows]) -> None:
    core, windows = memory
    core.files["/c.bin"] = bytearray(b"0123456789")
    context = windows.open("c.bin", READ | WRITE)
    assert ("open", "/c.bin", os.O_RDWR) in core.calls
    windows.call("overwrite", context, fi.FILE_ATTRIBUTE_ARCHIVE, False, 0)
    assert core.calls[-1] == ("truncate", "/c.bin", 0)
    windows.write_all(context, b"abcdef")
    windows.call("set_file_size", context, 100, True)  # allocation only: no call
    assert core.calls[-1] == ("truncate", "/c.bin", 0)
    windows.call("set_file_size", context, 3, True)  # an allocation below the size cuts
    windows.call("set_file_size", context, 5, False)  # end of file: zero-filled
    windows.close(context)
    assert core.files["/c.bin"] == b"abc\x00\x00"


def test_flush_is_local_unless_write_through(memory: tuple[MemoryCore, Windows]) -> None:
    core, windows = memory
    plain = windows.create("d.txt")
    through = windows.create("e.txt", options=fi.FILE_WRITE_THROUGH)
    windows.call("flush", plain)
    windows.call("flush", through)
    windows.call("flush", None)  # the volume: nothing to do
    assert [c for c in core.calls if c[0] in ("flush", "fsync")] == [
        ("flush", "/d.txt"), ("fsync", "/e.txt")]
    reader = windows.open("d.txt", READ)
    windows.call("flush", reader)  # a read-only handle has nothing to flush
    assert len([c for c in core.calls if c[0] in ("flush", "fsync")]) == 2
    for context in (plain, through, reader):
        windows.close(context)


def test_a_handle_survives_the_rename_of_its_file(memory: tuple[MemoryCore, Windows]) -> None:
    core, windows = memory
    context = windows.create("~WRD0000.tmp")
    windows.write_all(context, b"new document")
    windows.call("rename", context, "\\~WRD0000.tmp", "\\Report.docx", True)
    assert windows.call("get_file_info", context)["file_size"] == 12
    assert windows.call("write", context, b"!", 0, True, False) == 1
    windows.close(context)
    assert core.files == {"/Report.docx": bytearray(b"new document!")}


def test_delete_on_cleanup_then_release(memory: tuple[MemoryCore, Windows]) -> None:
    core, windows = memory
    context = windows.create("~$port.docx", options=fi.FILE_DELETE_ON_CLOSE)
    windows.write_all(context, b"owner")
    windows.call("can_delete", context, "\\~$port.docx")
    windows.close(context, delete_as="~$port.docx")
    assert [c[0] for c in core.calls[-2:]] == ["unlink", "release"]
    assert core.files == {}
    # The deleted context answered its last information until it closed.
    assert context.deleted and context.info is not None and context.info["file_size"] == 5


@pytest.mark.allow_log("internal error in get_volume_info")
def test_an_unexpected_core_exception_is_internal_error_and_logged(
        memory: tuple[MemoryCore, Windows], caplog: pytest.LogCaptureFixture) -> None:
    core, windows = memory

    def broken() -> StatFs:
        raise RuntimeError("bug")

    core.statfs = broken  # type: ignore[method-assign]
    with pytest.raises(Exception) as excinfo:
        windows.call("get_volume_info")
    assert getattr(excinfo.value, "status", None) == ntstatus.STATUS_INTERNAL_ERROR
    assert "internal error in get_volume_info" in caplog.text


@pytest.mark.allow_log("closing /f.txt failed")
def test_a_failure_at_close_is_logged(memory: tuple[MemoryCore, Windows],
                                      caplog: pytest.LogCaptureFixture) -> None:
    core, windows = memory
    context = windows.create("f.txt")

    def full(handle: int) -> None:
        raise FsNoSpace("the staging area is full", "/f.txt")

    core.release = full  # type: ignore[method-assign]
    windows.close(context)  # Windows does not look at what Close answers
    assert "closing /f.txt failed: [Errno 28] the staging area is full" in caplog.text
