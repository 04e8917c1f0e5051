"""The one exception hierarchy of the filesystem layers.

Every ``FsError`` subclass is also the matching builtin (``FsNotFound`` is a
``FileNotFoundError``) and carries its errno, so that code above the core can catch builtins
and the FUSE adapter can answer ``-exc.errno`` without a table. The WinFsp adapter maps the
same classes to NTSTATUS in exactly one table; API errors become ``FsError`` in exactly one
translator in ``core``. ``ALL_FS_ERRORS`` lets a unit test prove both tables are complete.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import ClassVar


class FsError(OSError):
    """A filesystem operation failed; ``errno`` says how."""

    errno_code: ClassVar[int] = _errno.EIO

    def __init__(self, message: str = "", path: str | None = None) -> None:
        text = message or os.strerror(self.errno_code)
        if path is None:
            super().__init__(self.errno_code, text)
        else:
            super().__init__(self.errno_code, text, path)


class FsIOError(FsError):
    """The remote side failed in a way no better errno describes (EIO)."""

    errno_code = _errno.EIO


class FsNotFound(FsError, FileNotFoundError):
    errno_code = _errno.ENOENT


class FsExists(FsError, FileExistsError):
    errno_code = _errno.EEXIST


class FsNotADirectory(FsError, NotADirectoryError):
    errno_code = _errno.ENOTDIR


class FsIsADirectory(FsError, IsADirectoryError):
    errno_code = _errno.EISDIR


class FsNotEmpty(FsError):
    errno_code = _errno.ENOTEMPTY


class FsAccessDenied(FsError, PermissionError):
    """No permission, or the item is read-only (checked out by someone else)."""

    errno_code = _errno.EACCES


class FsNotPermitted(FsError, PermissionError):
    """The operation is never allowed on this filesystem (hard links, symlinks)."""

    errno_code = _errno.EPERM


class FsNotSupported(FsError):
    errno_code = _errno.ENOTSUP


class FsInvalid(FsError):
    errno_code = _errno.EINVAL


class FsNameTooLong(FsError):
    errno_code = _errno.ENAMETOOLONG


class FsOffline(FsError, ConnectionError):
    """Procore cannot be reached and the cache cannot answer."""

    errno_code = _errno.EHOSTUNREACH


class FsNoSpace(FsError):
    errno_code = _errno.ENOSPC


class FsBusy(FsError):
    errno_code = _errno.EBUSY


class FsTimedOut(FsError, TimeoutError):
    errno_code = _errno.ETIMEDOUT


class FsCrossDevice(FsError):
    """A move between two Procore scopes (projects, companies) cannot be done server-side."""

    errno_code = _errno.EXDEV


class FsReadOnlyFs(FsError):
    errno_code = _errno.EROFS


class FsNoData(FsError):
    """A missing extended attribute (ENOATTR where the OS has it, else ENODATA)."""

    errno_code = getattr(_errno, "ENOATTR", _errno.ENODATA)


class FsTryAgain(FsError):
    """Procore's rate limit is spent for now; the same call may succeed later (EAGAIN)."""

    errno_code = _errno.EAGAIN


ALL_FS_ERRORS: tuple[type[FsError], ...] = (
    FsError,
    FsIOError,
    FsNotFound,
    FsExists,
    FsNotADirectory,
    FsIsADirectory,
    FsNotEmpty,
    FsAccessDenied,
    FsNotPermitted,
    FsNotSupported,
    FsInvalid,
    FsNameTooLong,
    FsOffline,
    FsNoSpace,
    FsBusy,
    FsTimedOut,
    FsCrossDevice,
    FsReadOnlyFs,
    FsNoData,
    FsTryAgain,
)
