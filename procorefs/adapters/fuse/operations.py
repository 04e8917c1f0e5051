"""The mfusepy ``Operations`` object: FUSE callbacks translated into ProcoreFS calls.

Each callback decodes its arguments, makes one call into the core and encodes the answer
(``st_*`` dicts, byte strings). Errors travel as the core's ``FsError`` subclasses, which are
``OSError``\\ s carrying their errno, so mfusepy answers ``-errno`` without a table here; any
other exception is a bug, logged once and answered with EIO rather than mfusepy's EINVAL.

Protocol rules this class keeps (shared/fuse-notes.md):
- mfusepy registers every attribute whose name is a FUSE operation. Only the callbacks below
  carry such names (``tests/unit/test_fuse_operations.py`` checks the exact set); no
  ``lock``/``flock`` exist, so the kernel keeps POSIX and flock locks locally.
- The mount runs with ``raw_fi``: ``open``/``create`` receive the ``fuse_file_info`` itself so
  they can set ``keep_cache`` from the core, and the other callbacks read ``fi.fh``.
- Writing: ``flush`` runs on every close(2) and is where the core makes the written bytes
  durable and journaled (its error, ENOSPC say, is what close returns); ``release`` comes
  after, asynchronously, and its result reaches nobody. ``fsync`` waits for Procore.
  ``truncate`` gets the handle of an ftruncate (the runner passes it; mfusepy 3.1.1 drops it).
- ``utimens``: mfusepy hands nanoseconds, with UTIME_OMIT (1073741822) and UTIME_NOW
  (1073741823) as they are; tar and rsync use both.
- ``use_ns``: times cross as integer nanoseconds.
- ``nullpath_ok`` stays off (no ``flag_nopath``/``flag_nullpath_ok`` attributes): every
  callback gets a path.
- Only ``user.*`` extended attributes exist. The kernel asks for ``security.capability`` on
  every write and ``security.selinux``/``system.posix_acl_*`` on every ``ls -l``: those are
  answered ENODATA here, without a call into the core.
- ``rename`` receives the renameat2 flags (the mount runner passes them through, which
  mfusepy 3.1.1 alone does not): RENAME_NOREPLACE is honoured, any other flag is EINVAL.
- ``getattr`` with a handle and no path answers from the handle (libfuse passes no path for a
  node it cannot name; without ``hard_remove`` an unlinked open file keeps a
  ``.fuse_hidden*`` name, so this is a fallback).
- ``read_buf`` (the name registers libfuse's read_buf, which libfuse prefers to ``read``)
  answers a read as the core's ``read_extent`` does: ``(fd, offset, length)`` of the content
  cache for a Procore version, ``bytes`` for a file being written. The mount runner turns
  that into libfuse's ``fuse_bufvec``; ``read`` stays for anything that asks for bytes.
- ``readdir`` answers each entry with the same ``st_*`` dict ``getattr`` would (one function,
  ``stat_dict``): the mount runner hands them to the kernel as readdirplus, so ``ls -l``
  needs no lookup per entry. A listing read in several requests is one snapshot per open
  directory (``opendir`` gives each its own handle; ``listing`` keeps the snapshot).
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from procorefs.core.types import DirEntry, EntryStat, StatFs
from procorefs.errors import (
    FsAccessDenied,
    FsInvalid,
    FsIOError,
    FsNoData,
    FsNotPermitted,
    FsNotSupported,
)

log = logging.getLogger(__name__)

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

# Extended attributes outside this namespace never exist on the mount.
XATTR_NAMESPACE = "user."

BLOCK_SIZE = 512
PREFERRED_IO_SIZE = 128 * 1024
_NS = 1_000_000_000
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class CoreFS(Protocol):
    """The part of ``procorefs.core.fs.ProcoreFS`` this adapter calls."""

    def getattr(self, path: str) -> EntryStat: ...
    def readdir(self, path: str) -> list[DirEntry]: ...
    def getattr_handle(self, handle: int) -> EntryStat: ...
    def open(self, path: str, flags: int) -> int: ...
    def create(self, path: str, flags: int) -> int: ...
    def read(self, handle: int, offset: int, size: int) -> bytes: ...
    def read_extent(self, handle: int, offset: int, size: int
                    ) -> bytes | tuple[int, int, int]: ...
    def write(self, handle: int, offset: int, data: bytes) -> int: ...
    def truncate(self, path: str, size: int, handle: int | None = None) -> None: ...
    def flush(self, handle: int) -> None: ...
    def fsync(self, handle: int) -> None: ...
    def utimens(self, path: str, mtime: float | None) -> None: ...
    def release(self, handle: int) -> None: ...
    def keep_kernel_cache(self, handle: int) -> bool: ...
    def mkdir(self, path: str) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def unlink(self, path: str) -> None: ...
    def rename(self, old: str, new: str, *, replace: bool = True) -> None: ...
    def statfs(self) -> StatFs: ...
    def getxattr(self, path: str, name: str) -> bytes: ...
    def listxattr(self, path: str) -> list[str]: ...


class FileInfo(Protocol):
    """The fields of libfuse's ``struct fuse_file_info`` the adapter touches."""

    flags: int
    fh: int
    keep_cache: int
    direct_io: int


def to_ns(seconds: float) -> int:
    """Float seconds to integer nanoseconds without the rounding noise of ``t * 1e9``."""
    whole = math.floor(seconds)
    return whole * _NS + round((seconds - whole) * _NS)


def mode_of(entry: EntryStat) -> int:
    """Type and permission bits: read-only items lose their write bits."""
    if entry.kind == "dir":
        return stat.S_IFDIR | (0o555 if entry.read_only else 0o755)
    return stat.S_IFREG | (0o444 if entry.read_only else 0o644)


def stat_dict(entry: EntryStat, uid: int, gid: int) -> dict[str, int]:
    """An ``EntryStat`` as mfusepy's ``st_*`` dict (times in nanoseconds)."""
    mtime = to_ns(entry.mtime)
    return {
        "st_mode": mode_of(entry),
        "st_nlink": 2 if entry.kind == "dir" else 1,
        "st_size": entry.size,
        "st_uid": uid,
        "st_gid": gid,
        "st_blocks": (entry.size + BLOCK_SIZE - 1) // BLOCK_SIZE,
        "st_blksize": PREFERRED_IO_SIZE,
        # A document store keeps no access time; mtime is the honest answer.
        "st_atime": mtime,
        "st_mtime": mtime,
        "st_ctime": to_ns(entry.ctime),
        "st_birthtime": to_ns(entry.birthtime),
    }


def statfs_dict(info: StatFs) -> dict[str, int]:
    return {
        "f_bsize": info.block_size,
        "f_frsize": info.block_size,
        "f_blocks": info.blocks,
        "f_bfree": info.blocks_free,
        "f_bavail": info.blocks_free,
        "f_files": info.files,
        "f_ffree": info.files_free,
        "f_favail": info.files_free,
        "f_namemax": info.name_max,
    }


# What readdir answers: "." and ".." as bare names, then (name, st_* dict, offset 0) per child.
DirListing = list[str | tuple[str, dict[str, int], int]]

_Ops = TypeVar("_Ops", bound="FuseOperations")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _callback(
    func: Callable[Concatenate[_Ops, _P], _R],
) -> Callable[Concatenate[_Ops, _P], _R]:
    """Let errno-carrying errors through; turn anything else into a logged EIO."""

    @functools.wraps(func)
    def wrapper(self: _Ops, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(self, *args, **kwargs)
        except OSError as exc:
            if isinstance(exc.errno, int) and exc.errno > 0:
                raise
            log.exception("internal error in %s%r", func.__name__, args)
            raise FsIOError(f"internal error in {func.__name__}") from None
        except Exception:
            log.exception("internal error in %s%r", func.__name__, args)
            raise FsIOError(f"internal error in {func.__name__}") from None

    return wrapper


class FuseOperations:
    """mfusepy callbacks over a ProcoreFS (see the module docstring for the rules)."""

    use_ns = True

    def __init__(self, fs: CoreFS, *, uid: int, gid: int,
                 on_mounted: Callable[[], None] | None = None) -> None:
        self._fs = fs
        self._uid = uid
        self._gid = gid
        self._on_mounted = on_mounted
        self._dir_handles = itertools.count(1)
        self._listings: dict[int, DirListing] = {}
        self._listings_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    @_callback
    def init(self, path: str) -> None:
        if self._on_mounted is not None:
            self._on_mounted()

    # -- metadata -------------------------------------------------------------------------
    @_callback
    def getattr(self, path: str | None, fh: FileInfo | None = None) -> dict[str, int]:
        if path is None:
            # libfuse has no path for the node (hard_remove, or a race with an unlink): only
            # the handle names it.
            if fh is None:
                raise OSError(errno.ESTALE, os.strerror(errno.ESTALE))
            return stat_dict(self._fs.getattr_handle(fh.fh), self._uid, self._gid)
        return stat_dict(self._fs.getattr(path), self._uid, self._gid)

    @_callback
    def access(self, path: str, amode: int) -> int:
        entry = self._fs.getattr(path)
        # Mirrors the mode bits getattr reports: no write on read-only items, no execute on files.
        if (amode & os.W_OK and entry.read_only) or (amode & os.X_OK and entry.kind == "file"):
            raise FsAccessDenied("", path)
        return 0

    @_callback
    def opendir(self, path: str) -> int:
        # A handle per open directory, so that each has a snapshot of its own (see listing).
        with self._listings_lock:
            return next(self._dir_handles)

    @_callback
    def readdir(self, path: str, fh: int) -> DirListing:
        listing: DirListing = [".", ".."]
        listing.extend((entry.name, stat_dict(entry.stat, self._uid, self._gid), 0)
                       for entry in self._fs.readdir(path))
        return listing

    @_callback
    def listing(self, path: str, fh: int, offset: int) -> DirListing:
        """The whole listing of open directory ``fh``, to be read from position ``offset``.

        A big folder takes several readdir requests, one kernel buffer each: position 0 (a
        new listing, or rewinddir) asks the core afresh, every later request reads the same
        snapshot, so a change in between cannot make a position skip or repeat an entry.
        """
        with self._listings_lock:
            snapshot = self._listings.get(fh) if offset else None
        if snapshot is None:
            snapshot = self.readdir(path, fh)
            with self._listings_lock:
                self._listings[fh] = snapshot
        return snapshot

    @_callback
    def releasedir(self, path: str | None, fh: int) -> int:
        with self._listings_lock:
            self._listings.pop(fh, None)
        return 0

    @_callback
    def statfs(self, path: str) -> dict[str, int]:
        return statfs_dict(self._fs.statfs())

    # -- content --------------------------------------------------------------------------
    @_callback
    def open(self, path: str, fi: FileInfo) -> int:
        fi.fh = self._fs.open(path, fi.flags)
        fi.keep_cache = 1 if self._fs.keep_kernel_cache(fi.fh) else 0
        return 0

    @_callback
    def create(self, path: str, mode: int, fi: FileInfo) -> int:
        fi.fh = self._fs.create(path, fi.flags)
        fi.keep_cache = 0
        return 0

    @_callback
    def truncate(self, path: str | None, length: int, fh: FileInfo | None = None) -> int:
        handle = fh.fh if fh is not None else None
        if path is None and handle is None:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE))
        self._fs.truncate(path or "", length, handle)
        return 0

    @_callback
    def read(self, path: str | None, size: int, offset: int, fi: FileInfo) -> bytes:
        return self._fs.read(fi.fh, offset, size)

    @_callback
    def read_buf(self, path: str | None, size: int, offset: int, fi: FileInfo
                 ) -> bytes | tuple[int, int, int]:
        """A read as the runner's ``read_buf`` answers it: the bytes, or ``(fd, offset,
        length)`` in the content cache for libfuse to copy itself (the fd stays open until
        this handle's ``release``, which the kernel sends only after the reply)."""
        return self._fs.read_extent(fi.fh, offset, size)

    @_callback
    def write(self, path: str | None, data: bytes, offset: int, fi: FileInfo) -> int:
        return self._fs.write(fi.fh, offset, data)

    @_callback
    def flush(self, path: str | None, fi: FileInfo) -> int:
        self._fs.flush(fi.fh)
        return 0

    @_callback
    def fsync(self, path: str | None, datasync: int, fi: FileInfo) -> int:
        self._fs.fsync(fi.fh)
        return 0

    @_callback
    def release(self, path: str | None, fi: FileInfo) -> int:
        self._fs.release(fi.fh)
        return 0

    # -- namespace ------------------------------------------------------------------------
    @_callback
    def mkdir(self, path: str, mode: int) -> int:
        self._fs.mkdir(path)
        return 0

    @_callback
    def rmdir(self, path: str) -> int:
        self._fs.rmdir(path)
        return 0

    @_callback
    def unlink(self, path: str) -> int:
        self._fs.unlink(path)
        return 0

    @_callback
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        if flags & ~RENAME_NOREPLACE:
            raise FsInvalid(f"rename flags {flags:#x} are not supported", new)
        self._fs.rename(old, new, replace=not flags & RENAME_NOREPLACE)
        return 0

    @_callback
    def link(self, target: str, source: str) -> int:
        raise FsNotPermitted("Procore documents have no hard links", target)

    @_callback
    def symlink(self, target: str, source: str) -> int:
        raise FsNotPermitted("Procore documents have no symbolic links", target)

    @_callback
    def mknod(self, path: str, mode: int, dev: int) -> int:
        raise FsNotPermitted("only regular files and folders can be created", path)

    # -- attributes a document store does not keep: accepted so that rsync, tar and
    # -- LibreOffice succeed, and logged so that a surprised user can see why.
    @_callback
    def chmod(self, path: str, mode: int) -> int:
        log.debug("chmod %s %o ignored: Procore keeps no modes", path, mode)
        return 0

    @_callback
    def chown(self, path: str, uid: int, gid: int) -> int:
        log.debug("chown %s %d:%d ignored: Procore keeps no owners", path, uid, gid)
        return 0

    @_callback
    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        # Files being written show the time set until Procore sets its own at commit; files
        # in Procore keep Procore's (the core ignores it), so rsync and tar still succeed.
        if path is None:
            return 0
        mtime_ns = times[1] if times is not None else UTIME_NOW
        if mtime_ns == UTIME_OMIT:
            return 0
        mtime = time.time() if mtime_ns == UTIME_NOW else mtime_ns / _NS
        self._fs.utimens(path, mtime)
        return 0

    # -- extended attributes --------------------------------------------------------------
    @_callback
    def getxattr(self, path: str, name: str, *position: int) -> bytes:
        if not name.startswith(XATTR_NAMESPACE):
            raise FsNoData("", path)
        return self._fs.getxattr(path, name)

    @_callback
    def listxattr(self, path: str) -> list[str]:
        return self._fs.listxattr(path)

    @_callback
    def setxattr(self, path: str, name: str, value: bytes, options: int, *position: int) -> int:
        raise FsNotSupported("extended attributes on Procore documents are read-only", path)

    @_callback
    def removexattr(self, path: str, name: str) -> int:
        raise FsNotSupported("extended attributes on Procore documents are read-only", path)

