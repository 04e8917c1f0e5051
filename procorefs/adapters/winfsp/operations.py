"""The winfspy ``BaseFileSystemOperations`` over a ProcoreFS: WinFsp callbacks to core calls.

This is the ONE module that imports winfspy; everything Windows-specific that can be pure
lives in its sibling modules and is unit-tested on Linux, and this one is driven on Linux by
``tests/windows`` through a fake ``winfspy`` module, in the order Windows calls it.

Each callback decodes its arguments (``\\dir\\name`` becomes the core path ``/dir/name``; the
names are already local names, encoded by the core's ``WindowsNameCodec``), makes one call into
the core and encodes the answer (``fileinfo.file_info``). Errors travel as ``FsError`` and
become NTSTATUS through the one table, ``ntstatus.FS_ERROR_STATUS``; any other exception is a
bug, logged with its traceback and answered STATUS_INTERNAL_ERROR.

Protocol state kept here, and only here:
- ``OpenedEntry``, the WinFsp file context: the core handle of a file opened for data (an
  open for attributes or DELETE only takes none: Explorer makes many such opens), and the
  entry's CURRENT path. ``rename`` updates the path of every open context at or under the
  renamed path, so a handle opened before a rename (Word queries one after its POSIX rename)
  keeps answering, and a context whose entry was deleted or replaced answers its last known
  information instead of "not found".
- the volume label: ``set_volume_label`` lasts for the session (Procore has no such field).

Windows semantics this class keeps:
- Cleanup with FspCleanupDelete removes the entry (CanDelete was asked first: read-only
  entries, company/project folders, the root and non-empty folders are refused there, where
  Windows can still report it). A failure at cleanup cannot reach the application: it is
  logged as an error.
- Close releases the core handle; with the write path that is where a save is handed to the
  commit queue, and a commit that fails later is reported by ``procorefs status`` and the log.
  Windows ignores what Close answers, so a failing release is logged as an error here.
- Flush makes the written bytes durable in the local staging area; a file opened with
  FILE_WRITE_THROUGH waits for the commit to Procore instead.
- MoveFileEx over an existing directory is ACCESS_DENIED, as on NTFS.
- Times and attributes set by applications are accepted and not kept (Procore sets
  ``updated_at`` itself); security set by applications is accepted and not kept (the volume
  has no persistent ACLs).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from winfspy import BaseFileSystemOperations, FileSystem, NTStatusError
from winfspy.plumbing import SecurityDescriptor

from procorefs.adapters.winfsp import fileinfo, listing, ntstatus
from procorefs.adapters.winfsp.corefs import CoreFS, writer_of
from procorefs.adapters.winfsp.fileinfo import FileInfo
from procorefs.adapters.winfsp.names import WindowsNameCodec
from procorefs.core.names import lookup_key
from procorefs.errors import (
    FsAccessDenied,
    FsError,
    FsIsADirectory,
    FsNotADirectory,
    FsNotEmpty,
    FsNotFound,
    FsNotPermitted,
)

log = logging.getLogger(__name__)

_CODEC = WindowsNameCodec()


def core_path(file_name: str) -> str:
    """``\\dir\\name`` (WinFsp) -> ``/dir/name`` (core); the root is ``/``."""
    return "/" + "/".join(part for part in file_name.split("\\") if part)


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _key(path: str) -> str:
    return lookup_key(_CODEC, path)


@dataclass(eq=False)
class OpenedEntry:
    """A WinFsp file context (see the module docstring)."""

    path: str
    is_dir: bool
    handle: int | None = None
    writable: bool = False
    write_through: bool = False
    deleted: bool = False
    info: FileInfo | None = None

    def __repr__(self) -> str:
        return f"OpenedEntry({self.path!r}, handle={self.handle})"


_Ops = TypeVar("_Ops", bound="ProcoreOperations")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _operation(func: Callable[Concatenate[_Ops, _P], _R]) -> Callable[Concatenate[_Ops, _P], _R]:
    """FsError -> its NTSTATUS; anything else -> a logged STATUS_INTERNAL_ERROR."""

    @functools.wraps(func)
    def wrapper(self: _Ops, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(self, *args, **kwargs)
        except NTStatusError:
            raise
        except FsError as exc:
            log.debug("%s %r: %s", func.__name__, args[0] if args else None, exc)
            raise NTStatusError(ntstatus.status_for(exc)) from None
        except Exception:
            log.exception("internal error in %s %r", func.__name__, args[0] if args else None)
            raise NTStatusError(ntstatus.STATUS_INTERNAL_ERROR) from None

    return wrapper


class ProcoreOperations(BaseFileSystemOperations):  # type: ignore[misc]
    """winfspy callbacks over a ProcoreFS (see the module docstring for the rules)."""

    def __init__(self, fs: CoreFS, *, label: str, sddl: str) -> None:
        super().__init__()
        self._fs = fs
        self._label = label
        self._security = SecurityDescriptor.from_string(sddl)
        self._contexts_lock = threading.Lock()
        self._contexts: set[OpenedEntry] = set()

    # -- contexts ----------------------------------------------------------------------------
    def _track(self, entry: OpenedEntry) -> OpenedEntry:
        with self._contexts_lock:
            self._contexts.add(entry)
        return entry

    def _info(self, entry: OpenedEntry) -> FileInfo:
        if entry.deleted and entry.info is not None:
            return entry.info
        entry.info = fileinfo.file_info(self._fs.getattr(entry.path))
        return entry.info

    def _handle_of(self, entry: OpenedEntry) -> int:
        if entry.is_dir:
            raise FsIsADirectory("a folder has no content", entry.path)
        if entry.handle is None:
            # Windows checked the access; an attribute-only context asked for data after all.
            entry.handle = self._fs.open(entry.path, os.O_RDONLY)
        return entry.handle

    # -- volume ------------------------------------------------------------------------------
    @_operation
    def get_volume_info(self) -> dict[str, Any]:
        st = self._fs.statfs()
        return {"total_size": st.blocks * st.block_size,
                "free_size": st.blocks_free * st.block_size,
                "volume_label": self._label}

    @_operation
    def set_volume_label(self, volume_label: str) -> None:
        log.info("volume label set to %r for this session", volume_label)
        self._label = volume_label

    @_operation
    def get_security_by_name(self, file_name: str) -> tuple[int, Any, int]:
        stat = self._fs.getattr(core_path(file_name))
        return fileinfo.attributes(stat), self._security.handle, self._security.size

    @_operation
    def get_security(self, file_context: OpenedEntry) -> tuple[Any, int]:
        return self._security.handle, self._security.size

    @_operation
    def set_security(self, file_context: OpenedEntry, security_information: int,
                     modification_descriptor: Any) -> None:
        log.debug("set_security on %s ignored: the volume keeps no ACLs", file_context.path)

    # -- create / open / close ---------------------------------------------------------------
    @_operation
    def create(self, file_name: str, create_options: int, granted_access: int,
               file_attributes: int, security_descriptor: Any,
               allocation_size: int) -> OpenedEntry:
        path = core_path(file_name)
        if create_options & fileinfo.FILE_DIRECTORY_FILE:
            self._fs.mkdir(path)
            return self._track(OpenedEntry(path, is_dir=True))
        handle = writer_of(self._fs, path).create(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        return self._track(OpenedEntry(
            path, is_dir=False, handle=handle, writable=True,
            write_through=bool(create_options & fileinfo.FILE_WRITE_THROUGH)))

    @_operation
    def open(self, file_name: str, create_options: int, granted_access: int) -> OpenedEntry:
        path = core_path(file_name)
        stat = self._fs.getattr(path)
        if stat.kind == "dir":
            if create_options & fileinfo.FILE_NON_DIRECTORY_FILE:
                raise FsIsADirectory("a folder cannot be opened as a file", path)
            return self._track(OpenedEntry(path, is_dir=True))
        if create_options & fileinfo.FILE_DIRECTORY_FILE:
            raise FsNotADirectory("a file cannot be opened as a folder", path)
        entry = OpenedEntry(path, is_dir=False,
                            writable=bool(granted_access & fileinfo.WRITE_ACCESS),
                            write_through=bool(create_options & fileinfo.FILE_WRITE_THROUGH))
        if granted_access & fileinfo.DATA_ACCESS:
            entry.handle = self._fs.open(path, os.O_RDWR if entry.writable else os.O_RDONLY)
        return self._track(entry)

    @_operation
    def overwrite(self, file_context: OpenedEntry, file_attributes: int,
                  replace_file_attributes: bool, allocation_size: int) -> None:
        writer_of(self._fs, file_context.path).truncate(
            file_context.path, 0, self._handle_of(file_context))

    @_operation
    def cleanup(self, file_context: OpenedEntry, file_name: str | None, flags: int) -> None:
        if not flags & fileinfo.FSP_CLEANUP_DELETE:
            return
        entry = file_context
        try:
            entry.info = self._info(entry)
            if entry.is_dir:
                self._fs.rmdir(entry.path)
            else:
                self._fs.unlink(entry.path)
        except FsError as exc:
            log.error("could not delete %s: %s", entry.path, exc)
            return
        entry.deleted = True

    @_operation
    def close(self, file_context: OpenedEntry) -> None:
        with self._contexts_lock:
            self._contexts.discard(file_context)
        handle, file_context.handle = file_context.handle, None
        if handle is None:
            return
        try:
            self._fs.release(handle)
        except FsError as exc:
            # Windows ignores what Close answers: the log (and `procorefs status`) must say it.
            log.error("closing %s failed: %s", file_context.path, exc)

    # -- content -----------------------------------------------------------------------------
    @_operation
    def read(self, file_context: OpenedEntry, offset: int, length: int) -> bytes:
        data = self._fs.read(self._handle_of(file_context), offset, length)
        if not data and length > 0:
            raise NTStatusError(ntstatus.STATUS_END_OF_FILE)
        return data

    @_operation
    def write(self, file_context: OpenedEntry, buffer: Any, offset: int,
              write_to_end_of_file: bool, constrained_io: bool) -> int:
        writer = writer_of(self._fs, file_context.path)
        handle = self._handle_of(file_context)
        data = bytes(buffer)
        if write_to_end_of_file or constrained_io:
            size = self._fs.getattr(file_context.path).size
            if write_to_end_of_file:
                offset = size
            # Constrained (paging) I/O never extends the file.
            if constrained_io:
                if offset >= size:
                    return 0
                data = data[:size - offset]
        return writer.write(handle, offset, data)

    @_operation
    def flush(self, file_context: OpenedEntry | None) -> None:
        # A volume flush (no context) has nothing to do: every save commits on its own.
        if file_context is None or file_context.handle is None or not file_context.writable:
            return
        writer = writer_of(self._fs, file_context.path)
        if file_context.write_through:
            writer.fsync(file_context.handle)
        else:
            writer.flush(file_context.handle)

    @_operation
    def set_file_size(self, file_context: OpenedEntry, new_size: int,
                      set_allocation_size: bool) -> None:
        path = file_context.path
        if set_allocation_size and new_size >= self._fs.getattr(path).size:
            return  # allocation is ours to decide; only a shrink below the size truncates
        writer_of(self._fs, path).truncate(path, new_size, self._handle_of(file_context))

    # -- information -------------------------------------------------------------------------
    @_operation
    def get_file_info(self, file_context: OpenedEntry) -> FileInfo:
        return self._info(file_context)

    @_operation
    def set_basic_info(self, file_context: OpenedEntry, file_attributes: int,
                       creation_time: int, last_access_time: int, last_write_time: int,
                       change_time: int, file_info: Any) -> FileInfo:
        log.debug("set_basic_info on %s ignored: Procore sets its own times",
                  file_context.path)
        return self._info(file_context)

    @_operation
    def get_dir_info_by_name(self, file_context: OpenedEntry, file_name: str) -> dict[str, Any]:
        stat = self._fs.getattr(_join(file_context.path, file_name))
        return {"file_name": file_name, **fileinfo.file_info(stat)}

    @_operation
    def read_directory(self, file_context: OpenedEntry, marker: str | None,
                       pattern: str | None = None) -> list[dict[str, Any]]:
        path = file_context.path
        if not file_context.is_dir:
            raise FsNotADirectory("not a folder", path)
        entries: list[dict[str, Any]] = [
            {"file_name": e.name, **fileinfo.file_info(e.stat)} for e in self._fs.readdir(path)]
        if path != "/":
            entries.append({"file_name": ".", **self._info(file_context)})
            entries.append({"file_name": "..",
                            **fileinfo.file_info(self._fs.getattr(_parent(path)))})
        name_of: Callable[[dict[str, Any]], str] = lambda e: str(e["file_name"])  # noqa: E731
        return listing.after_marker(listing.filter_pattern(entries, name_of, pattern),
                                    name_of, marker)

    # -- delete / rename ---------------------------------------------------------------------
    @_operation
    def can_delete(self, file_context: OpenedEntry, file_name: str) -> None:
        path = file_context.path
        if path == "/":
            raise FsAccessDenied("the root of the drive cannot be deleted", path)
        stat = self._fs.getattr(path)
        if stat.read_only:
            raise FsAccessDenied("checked out by someone else or read-only in Procore", path)
        if stat.kind == "dir":
            if stat.remote_id is None:
                raise FsNotPermitted("company and project folders cannot be deleted", path)
            if self._fs.readdir(path):
                raise FsNotEmpty("the folder is not empty", path)

    @_operation
    def rename(self, file_context: OpenedEntry, file_name: str, new_file_name: str,
               replace_if_exists: bool) -> None:
        old, new = core_path(file_name), core_path(new_file_name)
        same_entry = _key(old) == _key(new)
        if replace_if_exists and not same_entry:
            try:
                target = self._fs.getattr(new)
            except FsNotFound:
                pass
            else:
                if target.kind == "dir":
                    raise FsAccessDenied("a folder cannot be replaced", new)
        victims = [] if same_entry else self._contexts_at(new, besides=file_context)
        for victim in victims:
            victim.info = self._info(victim)
        self._fs.rename(old, new, replace=replace_if_exists)
        # A replaced entry keeps answering what it was, like an unlinked file.
        for victim in victims:
            victim.deleted = True
        self._moved(old, new, file_context)

    def _contexts_at(self, path: str, *, besides: OpenedEntry) -> list[OpenedEntry]:
        key = _key(path)
        with self._contexts_lock:
            return [e for e in self._contexts
                    if e is not besides and not e.deleted and _key(e.path) == key]

    def _moved(self, old: str, new: str, source: OpenedEntry) -> None:
        old_key = _key(old)
        depth = len([part for part in old.split("/") if part])
        with self._contexts_lock:
            contexts = list(self._contexts)
        for entry in contexts:
            if entry is source:
                entry.path = new
            elif entry.deleted:
                continue
            elif _key(entry.path) == old_key:
                entry.path = new
            elif _key(entry.path).startswith(old_key + "/"):
                rest = [part for part in entry.path.split("/") if part][depth:]
                entry.path = _join(new, "/".join(rest))


def create_file_system(mountpoint: str, operations: ProcoreOperations, params: dict[str, Any],
                       *, debug: bool = False) -> Any:
    """A winfspy ``FileSystem`` (not started) serving ``operations`` at ``mountpoint``."""
    return FileSystem(mountpoint, operations, debug=debug, **params)
