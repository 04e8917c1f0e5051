"""The ONE table from ``FsError`` classes to NTSTATUS codes, and the codes the adapter uses.

Pure logic, no Windows import. ``tests/unit/test_win_ntstatus.py`` proves that every class of
``procorefs.errors.ALL_FS_ERRORS`` has its own row here, and that no row is
STATUS_MEDIA_WRITE_PROTECTED: Explorer reports that one as a failure of the whole medium
("The media is write protected") and gives up on the folder, while STATUS_ACCESS_DENIED is the
per-file answer Office and Explorer handle (Word offers "open read-only", Explorer says "You
need permission"). Read-only items, a read-only mount and operations Procore never allows are
therefore all ACCESS_DENIED.

The codes are the documented NTSTATUS values ([MS-ERREF] 2.3.1); keeping them here instead
of taking winfspy's enum keeps this module importable (and testable) where winfspy is not.
"""

from __future__ import annotations

from typing import Final

from procorefs import errors

STATUS_SUCCESS: Final = 0x00000000
STATUS_BUFFER_OVERFLOW: Final = 0x80000005
STATUS_INVALID_PARAMETER: Final = 0xC000000D
STATUS_END_OF_FILE: Final = 0xC0000011
STATUS_ACCESS_DENIED: Final = 0xC0000022
STATUS_OBJECT_NAME_INVALID: Final = 0xC0000033
STATUS_OBJECT_NAME_NOT_FOUND: Final = 0xC0000034
STATUS_OBJECT_NAME_COLLISION: Final = 0xC0000035
STATUS_OBJECT_PATH_NOT_FOUND: Final = 0xC000003A
STATUS_SHARING_VIOLATION: Final = 0xC0000043
STATUS_NONEXISTENT_EA_ENTRY: Final = 0xC0000051
STATUS_DISK_FULL: Final = 0xC000007F
STATUS_MEDIA_WRITE_PROTECTED: Final = 0xC00000A2
STATUS_IO_TIMEOUT: Final = 0xC00000B5
STATUS_FILE_IS_A_DIRECTORY: Final = 0xC00000BA
STATUS_NOT_SUPPORTED: Final = 0xC00000BB
STATUS_NOT_SAME_DEVICE: Final = 0xC00000D4
STATUS_INTERNAL_ERROR: Final = 0xC00000E5
STATUS_UNEXPECTED_IO_ERROR: Final = 0xC00000E9
STATUS_DIRECTORY_NOT_EMPTY: Final = 0xC0000101
STATUS_NOT_A_DIRECTORY: Final = 0xC0000103
STATUS_NAME_TOO_LONG: Final = 0xC0000106
STATUS_CANNOT_DELETE: Final = 0xC0000121
STATUS_RETRY: Final = 0xC000022D
STATUS_NETWORK_UNREACHABLE: Final = 0xC000023C

FS_ERROR_STATUS: Final[dict[type[errors.FsError], int]] = {
    errors.FsError: STATUS_UNEXPECTED_IO_ERROR,
    errors.FsIOError: STATUS_UNEXPECTED_IO_ERROR,
    errors.FsNotFound: STATUS_OBJECT_NAME_NOT_FOUND,
    errors.FsExists: STATUS_OBJECT_NAME_COLLISION,
    errors.FsNotADirectory: STATUS_NOT_A_DIRECTORY,
    errors.FsIsADirectory: STATUS_FILE_IS_A_DIRECTORY,
    errors.FsNotEmpty: STATUS_DIRECTORY_NOT_EMPTY,
    errors.FsAccessDenied: STATUS_ACCESS_DENIED,
    # Links, device nodes, moving the mount's company folders: never allowed here.
    errors.FsNotPermitted: STATUS_ACCESS_DENIED,
    errors.FsNotSupported: STATUS_NOT_SUPPORTED,
    errors.FsInvalid: STATUS_INVALID_PARAMETER,
    # ERROR_FILENAME_EXCED_RANGE: "The file name is too long", what Explorer says for NTFS too.
    errors.FsNameTooLong: STATUS_NAME_TOO_LONG,
    # ERROR_NETWORK_UNREACHABLE: "The network location cannot be reached".
    errors.FsOffline: STATUS_NETWORK_UNREACHABLE,
    errors.FsNoSpace: STATUS_DISK_FULL,
    # The only EBUSY the core raises is "in use" (the mount's root, a cache another mount holds).
    errors.FsBusy: STATUS_SHARING_VIOLATION,
    errors.FsTimedOut: STATUS_IO_TIMEOUT,
    # ERROR_NOT_SAME_DEVICE makes MoveFileEx(MOVEFILE_COPY_ALLOWED) and Explorer fall back to
    # copy + delete, which is exactly what a move between two projects needs.
    errors.FsCrossDevice: STATUS_NOT_SAME_DEVICE,
    errors.FsReadOnlyFs: STATUS_ACCESS_DENIED,
    errors.FsNoData: STATUS_NONEXISTENT_EA_ENTRY,
    # ERROR_RETRY: Procore's rate limit is spent for now; the same call may succeed later.
    errors.FsTryAgain: STATUS_RETRY,
}


def status_for(exc: errors.FsError) -> int:
    """The NTSTATUS for ``exc``: its own class's row, else its nearest listed ancestor's."""
    for cls in type(exc).__mro__:
        if issubclass(cls, errors.FsError) and cls in FS_ERROR_STATUS:
            return FS_ERROR_STATUS[cls]
    return STATUS_UNEXPECTED_IO_ERROR
