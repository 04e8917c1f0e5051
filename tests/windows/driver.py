"""Windows, played on Linux: the calls WinFsp makes on the adapter for each Win32 operation.

``Windows`` turns what an application does (CreateFile, ReadFile, MoveFileEx, DeleteFile,
FindFirstFile/FindNextFile, CopyFile) into the sequence of callbacks the WinFsp driver and
winfspy's trampolines make on ``ProcoreOperations``, in their order:

- every create/open is preceded by GetSecurityByName on the name (and, for a new name, on its
  parent), and followed by GetFileInfo, as winfspy's ``ll_create``/``ll_open`` do;
- write, overwrite, flush and set-file-size are followed by GetFileInfo;
- DeleteFile is open(DELETE) -> CanDelete -> Cleanup(FspCleanupDelete) -> Close;
- a handle closes with Cleanup then Close;
- a directory is read in pieces: ReadDirectory(marker) is called again with the name of the
  last entry that fit in the buffer (``per_call`` entries here), until it returns nothing.

Failures come back as ``NTStatus``: the code the adapter answered, for ``pytest.raises``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from procorefs.adapters.winfsp import fileinfo as fi
from procorefs.adapters.winfsp import ntstatus

T = TypeVar("T")

READ = fi.FILE_READ_DATA | fi.FILE_READ_ATTRIBUTES | fi.READ_CONTROL | fi.SYNCHRONIZE
WRITE = fi.FILE_WRITE_DATA | fi.FILE_APPEND_DATA | fi.FILE_WRITE_ATTRIBUTES | fi.SYNCHRONIZE
ATTRIBUTES = fi.FILE_READ_ATTRIBUTES | fi.SYNCHRONIZE
DELETE = fi.DELETE | fi.FILE_READ_ATTRIBUTES | fi.SYNCHRONIZE
LIST = fi.FILE_READ_DATA | fi.SYNCHRONIZE  # FILE_LIST_DIRECTORY


class NTStatus(Exception):
    def __init__(self, status: int, where: str) -> None:
        super().__init__(f"{where}: NTSTATUS {status:#010x}")
        self.status = status


def winpath(path: str) -> str:
    """``"01 Drawings/A.pdf"`` -> ``"\\01 Drawings\\A.pdf"`` (a WinFsp file name)."""
    return "\\" + path.strip("/").replace("/", "\\")


class Windows:
    def __init__(self, ops: Any, error_type: type[Exception]) -> None:
        self.ops = ops
        self._error_type = error_type
        self.calls: list[str] = []

    def call(self, name: str, *args: Any) -> Any:
        self.calls.append(name)
        try:
            return getattr(self.ops, name)(*args)
        except self._error_type as exc:
            raise NTStatus(int(exc.value), name) from None  # type: ignore[attr-defined]

    def status_of(self, action: Callable[[], T]) -> int:
        try:
            action()
        except NTStatus as exc:
            return exc.status
        return ntstatus.STATUS_SUCCESS

    # -- handles ---------------------------------------------------------------------------
    def open(self, path: str, access: int = READ, options: int = 0) -> Any:
        name = winpath(path)
        self.call("get_security_by_name", name)
        context = self.call("open", name, options, access)
        self.call("get_file_info", context)
        return context

    def create(self, path: str, *, directory: bool = False, access: int = READ | WRITE,
               options: int = 0, attributes: int = fi.FILE_ATTRIBUTE_ARCHIVE) -> Any:
        name = winpath(path)
        try:
            self.call("get_security_by_name", name)
        except NTStatus as exc:
            if exc.status != ntstatus.STATUS_OBJECT_NAME_NOT_FOUND:
                raise
        else:
            raise NTStatus(ntstatus.STATUS_OBJECT_NAME_COLLISION, "create")
        parent = name.rsplit("\\", 1)[0] or "\\"
        self.call("get_security_by_name", parent)
        if directory:
            options |= fi.FILE_DIRECTORY_FILE
            attributes = fi.FILE_ATTRIBUTE_DIRECTORY
        context = self.call("create", name, options, access, attributes, None, 0)
        self.call("get_file_info", context)
        return context

    def close(self, context: Any, *, delete_as: str | None = None) -> None:
        if delete_as is None:
            self.call("cleanup", context, None, 0)
        else:
            self.call("cleanup", context, winpath(delete_as), fi.FSP_CLEANUP_DELETE)
        self.call("close", context)

    # -- content ---------------------------------------------------------------------------
    def read_all(self, context: Any, chunk: int = 64 * 1024) -> bytes:
        out = bytearray()
        while True:
            try:
                data = self.call("read", context, len(out), chunk)
            except NTStatus as exc:
                if exc.status == ntstatus.STATUS_END_OF_FILE:
                    return bytes(out)
                raise
            out += data

    def write_all(self, context: Any, data: bytes, chunk: int = 1 << 20) -> None:
        for offset in range(0, len(data), chunk):
            piece = data[offset:offset + chunk]
            written = self.call("write", context, piece, offset, False, False)
            assert written == len(piece)
            self.call("get_file_info", context)

    # -- what applications do --------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        """Explorer copy-out: open for reading, read to the end, close."""
        context = self.open(path, READ, fi.FILE_NON_DIRECTORY_FILE)
        try:
            return self.read_all(context)
        finally:
            self.close(context)

    def sha256(self, path: str) -> str:
        return hashlib.sha256(self.read_file(path)).hexdigest()

    def write_new_file(self, path: str, data: bytes, *, attributes: int = 0) -> None:
        """CopyFile / an application's "save as" of a new file."""
        context = self.create(path, attributes=attributes or fi.FILE_ATTRIBUTE_ARCHIVE)
        try:
            # CopyFileEx sizes the target first, then writes, then copies the times.
            self.call("set_file_size", context, len(data), True)
            self.call("get_file_info", context)
            self.write_all(context, data)
            self.call("set_basic_info", context, fi.INVALID_FILE_ATTRIBUTES, 0, 0,
                      131_000_000_000_000_000, 0, None)
            self.call("flush", context)
            self.call("get_file_info", context)
        finally:
            self.close(context)

    def delete(self, path: str, *, directory: bool = False) -> None:
        """DeleteFile / RemoveDirectory."""
        options = fi.FILE_DIRECTORY_FILE if directory else fi.FILE_NON_DIRECTORY_FILE
        context = self.open(path, DELETE, options)
        try:
            self.call("can_delete", context, winpath(path))
        except NTStatus:
            self.close(context)
            raise
        self.close(context, delete_as=path)

    def move(self, old: str, new: str, *, replace: bool = False) -> None:
        """MoveFileEx (MOVEFILE_REPLACE_EXISTING when ``replace``)."""
        context = self.open(old, DELETE)
        try:
            self.call("rename", context, winpath(old), winpath(new), replace)
            self.call("get_file_info", context)
        finally:
            self.close(context)

    def find_files(self, directory: str, pattern: str | None = None,
                   per_call: int = 3) -> list[dict[str, Any]]:
        """FindFirstFile/FindNextFile over a directory, read ``per_call`` entries at a time."""
        context = self.open(directory, LIST, fi.FILE_DIRECTORY_FILE)
        entries: list[dict[str, Any]] = []
        marker: str | None = None
        try:
            while True:
                piece = self.call("read_directory", context, marker, pattern)[:per_call]
                if not piece:
                    return entries
                entries += piece
                marker = piece[-1]["file_name"]
        finally:
            self.close(context)
