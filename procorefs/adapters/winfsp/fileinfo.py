"""What Windows sees of an ``EntryStat``: attribute bits, FILETIMEs, sizes, the WinFsp flags.

Pure logic, no Windows import. The constants are Windows ABI values (winnt.h, ntifs.h and
winfsp.h), kept here so the adapter and its tests agree without loading winfspy.

Choices:
- files carry FILE_ATTRIBUTE_ARCHIVE (what NTFS and WinFsp's memfs give a new file; it avoids
  FILE_ATTRIBUTE_NORMAL's "no other bit" rule), folders FILE_ATTRIBUTE_DIRECTORY;
- a read-only file (checked out by someone else, or read-only in Procore) adds
  FILE_ATTRIBUTE_READONLY, so Windows refuses write opens before asking us and Office opens it
  read-only; on a folder that bit means "customised folder" to Explorer, so folders never
  get it;
- everything adds FILE_ATTRIBUTE_NOT_CONTENT_INDEXED: Windows Search would otherwise download
  every document to index it;
- Procore keeps no access time: last access, last write and change time are all
  ``updated_at``; creation time is ``created_at``.
"""

from __future__ import annotations

from typing import Final, TypedDict

from procorefs.core.types import EntryStat

# File attributes (winnt.h).
FILE_ATTRIBUTE_READONLY: Final = 0x1
FILE_ATTRIBUTE_HIDDEN: Final = 0x2
FILE_ATTRIBUTE_DIRECTORY: Final = 0x10
FILE_ATTRIBUTE_ARCHIVE: Final = 0x20
FILE_ATTRIBUTE_NORMAL: Final = 0x80
FILE_ATTRIBUTE_NOT_CONTENT_INDEXED: Final = 0x2000
INVALID_FILE_ATTRIBUTES: Final = 0xFFFFFFFF

# NtCreateFile CreateOptions (winternl.h).
FILE_DIRECTORY_FILE: Final = 0x1
FILE_WRITE_THROUGH: Final = 0x2
FILE_NON_DIRECTORY_FILE: Final = 0x40
FILE_DELETE_ON_CLOSE: Final = 0x1000

# Access rights as WinFsp grants them (winnt.h); GENERIC_* are already mapped to these.
FILE_READ_DATA: Final = 0x1
FILE_WRITE_DATA: Final = 0x2
FILE_APPEND_DATA: Final = 0x4
FILE_EXECUTE: Final = 0x20
FILE_READ_ATTRIBUTES: Final = 0x80
FILE_WRITE_ATTRIBUTES: Final = 0x100
DELETE: Final = 0x10000
READ_CONTROL: Final = 0x20000
SYNCHRONIZE: Final = 0x100000
DATA_ACCESS: Final = FILE_READ_DATA | FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_EXECUTE
WRITE_ACCESS: Final = FILE_WRITE_DATA | FILE_APPEND_DATA

# FSP_FILE_SYSTEM_INTERFACE::Cleanup flags (winfsp.h).
FSP_CLEANUP_DELETE: Final = 0x01
FSP_CLEANUP_SET_ALLOCATION_SIZE: Final = 0x02
FSP_CLEANUP_SET_ARCHIVE_BIT: Final = 0x10
FSP_CLEANUP_SET_LAST_ACCESS_TIME: Final = 0x20
FSP_CLEANUP_SET_LAST_WRITE_TIME: Final = 0x40
FSP_CLEANUP_SET_CHANGE_TIME: Final = 0x80

ALLOCATION_UNIT: Final = 4096
FILETIME_UNIX_EPOCH: Final = 116_444_736_000_000_000  # 1970-01-01 in 100 ns units since 1601
_TICKS: Final = 10_000_000  # per second


class FileInfo(TypedDict):
    """The keys winfspy copies into ``FSP_FSCTL_FILE_INFO`` (and dir entries)."""

    file_attributes: int
    allocation_size: int
    file_size: int
    creation_time: int
    last_access_time: int
    last_write_time: int
    change_time: int
    index_number: int


def to_filetime(seconds: float) -> int:
    """Unix seconds to a FILETIME (100 ns ticks since 1601-01-01 UTC).

    Rounded to the microsecond: a float holds no more of a current timestamp (its resolution
    near 2**31 s is about 0.5 us), and rounding there keeps equal times equal.
    """
    return max(0, FILETIME_UNIX_EPOCH + round(seconds * 1_000_000) * 10)


def from_filetime(filetime: int) -> float:
    return (filetime - FILETIME_UNIX_EPOCH) / _TICKS


def allocation_size(size: int) -> int:
    return -(-size // ALLOCATION_UNIT) * ALLOCATION_UNIT


def attributes(stat: EntryStat) -> int:
    if stat.kind == "dir":
        return FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED
    bits = FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED
    return bits | FILE_ATTRIBUTE_READONLY if stat.read_only else bits


def index_number(stat: EntryStat) -> int:
    """A stable 64-bit file id: Procore's id, with folders and files kept apart (0: none)."""
    if stat.remote_id is None:
        return 0
    return ((stat.remote_id << 1) | (stat.kind == "dir")) & 0xFFFF_FFFF_FFFF_FFFF


def file_info(stat: EntryStat) -> FileInfo:
    written = to_filetime(stat.mtime)
    size = stat.size if stat.kind == "file" else 0
    return FileInfo(
        file_attributes=attributes(stat),
        allocation_size=allocation_size(size),
        file_size=size,
        creation_time=to_filetime(stat.birthtime),
        last_access_time=written,
        last_write_time=written,
        change_time=written,
        index_number=index_number(stat),
    )
