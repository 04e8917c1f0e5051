"""Attributes, FILETIMEs and sizes of the WinFsp adapter (adapters/winfsp/fileinfo.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from procorefs.adapters.winfsp import fileinfo
from procorefs.adapters.winfsp.fileinfo import file_info, from_filetime, to_filetime
from procorefs.core.types import EntryStat


def stat(kind: str = "file", *, size: int = 0, read_only: bool = False,
         remote_id: int | None = 42, mtime: float = 1_700_000_000.5,
         birthtime: float = 1_600_000_000.0) -> EntryStat:
    return EntryStat(kind=kind, size=size, mtime=mtime, ctime=birthtime,  # type: ignore[arg-type]
                     birthtime=birthtime, read_only=read_only, remote_id=remote_id,
                     version=1 if kind == "file" else None)


def test_filetime_epochs() -> None:
    assert to_filetime(0) == 116_444_736_000_000_000
    y2k = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
    assert to_filetime(y2k) == 125_911_584_000_000_000  # 2000-01-01 in FILETIME
    assert to_filetime(-20_000_000_000) == 0  # before 1601: clamped, not negative


# Up to 2100-01-01: beyond that a float no longer holds microseconds.
@given(st.integers(min_value=0, max_value=4_102_444_800),
       st.integers(min_value=0, max_value=999_999))
def test_filetime_round_trip_to_the_microsecond(whole: int, micros: int) -> None:
    seconds = whole + micros / 1_000_000
    ticks = micros * 10
    filetime = to_filetime(seconds)
    assert filetime == fileinfo.FILETIME_UNIX_EPOCH + whole * 10_000_000 + ticks
    assert abs(from_filetime(filetime) - seconds) < 1e-6


def test_a_file() -> None:
    info = file_info(stat(size=5000))
    assert info["file_size"] == 5000
    assert info["allocation_size"] == 8192
    assert info["file_attributes"] == (fileinfo.FILE_ATTRIBUTE_ARCHIVE
                                       | fileinfo.FILE_ATTRIBUTE_NOT_CONTENT_INDEXED)
    assert info["last_write_time"] == to_filetime(1_700_000_000.5)
    assert info["last_access_time"] == info["change_time"] == info["last_write_time"]
    assert info["creation_time"] == to_filetime(1_600_000_000.0)
    assert info["index_number"] == 84


def test_a_read_only_file_is_readonly_but_a_read_only_folder_is_not() -> None:
    assert file_info(stat(read_only=True))["file_attributes"] & fileinfo.FILE_ATTRIBUTE_READONLY
    folder = file_info(stat("dir", read_only=True, size=123))
    assert not folder["file_attributes"] & fileinfo.FILE_ATTRIBUTE_READONLY
    assert folder["file_attributes"] & fileinfo.FILE_ATTRIBUTE_DIRECTORY
    assert folder["file_size"] == folder["allocation_size"] == 0


def test_index_numbers_keep_files_and_folders_apart() -> None:
    assert file_info(stat("dir", remote_id=42))["index_number"] == 85
    assert file_info(stat("file", remote_id=42))["index_number"] == 84
    assert file_info(stat("dir", remote_id=None))["index_number"] == 0


def test_allocation_rounds_up_to_the_unit() -> None:
    assert [fileinfo.allocation_size(n) for n in (0, 1, 4096, 4097)] == [0, 4096, 4096, 8192]
