"""The one ApiError -> FsError translator (core/translate.py)."""

from __future__ import annotations

import errno
import logging

import pytest

from procorefs.api.errors import (
    ALL_API_ERRORS,
    ApiError,
    Conflict,
    Forbidden,
    NetworkError,
    NotFound,
    NotSignedIn,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from procorefs.core.translate import TABLE, api_call, translate
from procorefs.errors import FsError


def _make(cls: type[ApiError]) -> ApiError:
    return cls("something failed", status=None)


def test_every_api_error_class_has_its_own_rule() -> None:
    assert set(TABLE) == set(ALL_API_ERRORS)


@pytest.mark.allow_log(".")
@pytest.mark.parametrize("cls", ALL_API_ERRORS)
def test_every_api_error_becomes_an_fs_error(cls: type[ApiError]) -> None:
    result = translate(_make(cls), "read", "/Plans/A-101.pdf")
    assert isinstance(result, FsError)
    assert result.filename == "/Plans/A-101.pdf"
    assert "read" in str(result)


@pytest.mark.allow_log(".")
@pytest.mark.parametrize(("exc", "code"), [
    (NotFound("gone", status=404), errno.ENOENT),
    (Forbidden("no", status=403), errno.EACCES),
    (Unauthorized("expired", status=401), errno.EACCES),
    (NotSignedIn("no token"), errno.EACCES),
    (Conflict("File is checked out by Alex", status=409), errno.EACCES),
    (Conflict("stale", status=409), errno.EBUSY),
    (ValidationFailed("name has already been taken", status=400), errno.EEXIST),
    (ValidationFailed("name is too weird", status=422), errno.EINVAL),
    (NetworkError("connection refused"), errno.EHOSTUNREACH),
    (RateLimited("429", status=429, retry_after=12.0), errno.EAGAIN),
    (ServerError("boom", status=503), errno.EIO),
])
def test_errno_choices(exc: ApiError, code: int) -> None:
    assert translate(exc, "open", "/x").errno == code


def test_duplicate_detected_in_the_body_too() -> None:
    exc = ValidationFailed("Validation failed", status=400,
                           body={"errors": {"name": ["has already been taken"]}})
    assert translate(exc, "create folder", "/A").errno == errno.EEXIST


@pytest.mark.allow_log("cannot list '/Plans': Procore says you do not have permission")
def test_log_line_is_plain_words_and_has_no_request(caplog: pytest.LogCaptureFixture) -> None:
    secret = "tok_" + "x" * 30
    exc = Forbidden("forbidden", status=403, method="GET",
                    path=f"/rest/v1.0/folders/1?access_token={secret}")
    with caplog.at_level(logging.DEBUG), pytest.raises(PermissionError), \
            api_call("list", "/Plans"):
        raise exc
    text = caplog.text
    assert "cannot list '/Plans': Procore says you do not have permission (HTTP 403)" in text
    assert secret not in text
    assert "/rest/" not in text


def test_api_call_passes_other_exceptions_through() -> None:
    with pytest.raises(KeyError), api_call("read", "/x"):
        raise KeyError("not an api error")
