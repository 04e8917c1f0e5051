"""The part of ``procorefs.core.fs.ProcoreFS`` the WinFsp adapter calls, as Protocols.

``CoreFS`` is the read/namespace surface of the core contract. ``WritableCore`` is the write
surface in the shape the adapter is written against::

    create(path, flags) -> handle        open(O_CREAT | O_EXCL | O_RDWR) of a new file
    write(handle, offset, data) -> int   bytes written
    truncate(path, size, handle=None)    set the size (of the open file when handle is given)
    flush(handle)                        the bytes written so far are durable locally
    fsync(handle)                        ... and committed to Procore

``ProcoreFS`` implements both. A core without the write surface (a test double, say) is still
mountable: every write then answers ``FsReadOnlyFs``, i.e. ACCESS_DENIED, through ``writer_of``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from procorefs.core.types import DirEntry, EntryStat, StatFs
from procorefs.errors import FsReadOnlyFs


class CoreFS(Protocol):
    def getattr(self, path: str) -> EntryStat: ...
    def readdir(self, path: str) -> list[DirEntry]: ...
    def open(self, path: str, flags: int) -> int: ...
    def read(self, handle: int, offset: int, size: int) -> bytes: ...
    def release(self, handle: int) -> None: ...
    def mkdir(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def rename(self, old: str, new: str, *, replace: bool = True) -> None: ...
    def statfs(self) -> StatFs: ...


@runtime_checkable
class WritableCore(Protocol):
    def create(self, path: str, flags: int) -> int: ...
    def write(self, handle: int, offset: int, data: bytes) -> int: ...
    def truncate(self, path: str, size: int, handle: int | None = None) -> None: ...
    def flush(self, handle: int) -> None: ...
    def fsync(self, handle: int) -> None: ...


def writer_of(fs: CoreFS, path: str) -> WritableCore:
    """``fs`` as a ``WritableCore``, or ``FsReadOnlyFs`` when this core cannot write."""
    if isinstance(fs, WritableCore):
        return fs
    raise FsReadOnlyFs("this filesystem cannot write file contents",
                       path)
