"""The FsError hierarchy: each class is its builtin, carries its errno, and is listed."""

from __future__ import annotations

import errno
import inspect

import pytest

from procorefs import errors
from procorefs.errors import ALL_FS_ERRORS, FsError


def _declared() -> set[type[FsError]]:
    return {obj for _, obj in inspect.getmembers(errors, inspect.isclass)
            if issubclass(obj, FsError)}


def test_every_declared_error_is_listed() -> None:
    assert _declared() == set(ALL_FS_ERRORS)


@pytest.mark.parametrize("cls", ALL_FS_ERRORS)
def test_errno_is_carried(cls: type[FsError]) -> None:
    exc = cls("boom", "/some/path")
    assert exc.errno == cls.errno_code
    assert isinstance(exc, OSError)
    assert exc.filename == "/some/path"
    assert "boom" in str(exc)


def test_errors_are_their_builtins() -> None:
    with pytest.raises(FileNotFoundError):
        raise errors.FsNotFound()
    with pytest.raises(FileExistsError):
        raise errors.FsExists()
    with pytest.raises(PermissionError):
        raise errors.FsAccessDenied()
    with pytest.raises(IsADirectoryError):
        raise errors.FsIsADirectory()
    with pytest.raises(NotADirectoryError):
        raise errors.FsNotADirectory()
    assert errors.FsOffline().errno == errno.EHOSTUNREACH
    assert errors.FsNotFound().strerror == "No such file or directory"
