"""The one FsError -> NTSTATUS table of the WinFsp adapter (adapters/winfsp/ntstatus.py)."""

from __future__ import annotations

import pytest

from procorefs import errors
from procorefs.adapters.winfsp import ntstatus
from procorefs.adapters.winfsp.ntstatus import FS_ERROR_STATUS, status_for


def test_every_fs_error_class_has_its_own_row() -> None:
    assert set(FS_ERROR_STATUS) == set(errors.ALL_FS_ERRORS)


def test_all_fs_errors_lists_every_subclass() -> None:
    """A class added to errors.py but not to ALL_FS_ERRORS would slip past the test above."""

    def subclasses(cls: type[errors.FsError]) -> set[type[errors.FsError]]:
        found = {cls}
        for sub in cls.__subclasses__():
            if sub.__module__ == errors.__name__:
                found |= subclasses(sub)
        return found

    assert subclasses(errors.FsError) <= set(errors.ALL_FS_ERRORS)


@pytest.mark.parametrize("cls", errors.ALL_FS_ERRORS)
def test_every_status_is_an_error_status(cls: type[errors.FsError]) -> None:
    status = status_for(cls("x"))
    assert status == FS_ERROR_STATUS[cls]
    assert 0xC0000000 <= status <= 0xFFFFFFFF  # NT_ERROR severity
    assert status != ntstatus.STATUS_MEDIA_WRITE_PROTECTED


@pytest.mark.parametrize("cls", [errors.FsAccessDenied, errors.FsReadOnlyFs,
                                 errors.FsNotPermitted])
def test_read_only_answers_access_denied(cls: type[errors.FsError]) -> None:
    assert status_for(cls("read-only")) == ntstatus.STATUS_ACCESS_DENIED


@pytest.mark.parametrize(("cls", "status"), [
    (errors.FsNotFound, 0xC0000034),
    (errors.FsExists, 0xC0000035),
    (errors.FsNotEmpty, 0xC0000101),
    (errors.FsNotADirectory, 0xC0000103),
    (errors.FsIsADirectory, 0xC00000BA),
    (errors.FsCrossDevice, 0xC00000D4),
    (errors.FsOffline, 0xC000023C),
    (errors.FsNameTooLong, 0xC0000106),
    (errors.FsNoSpace, 0xC000007F),
])
def test_documented_codes(cls: type[errors.FsError], status: int) -> None:
    assert status_for(cls()) == status


def test_an_unlisted_subclass_takes_its_nearest_ancestors_row() -> None:
    class FsCheckedOut(errors.FsAccessDenied):
        pass

    class FsStrange(errors.FsError):
        pass

    assert status_for(FsCheckedOut()) == ntstatus.STATUS_ACCESS_DENIED
    assert status_for(FsStrange()) == ntstatus.STATUS_UNEXPECTED_IO_ERROR
