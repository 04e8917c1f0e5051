"""The one translator from ``ApiError`` to ``FsError``, and the log line a user reads.

Every call the core makes to the client goes through ``api_call`` (or ``translate``), so one
table decides which errno an application sees. The log line names the operation and the local
path in plain words and never the request itself (no URLs, no headers, so never a token).
Expected outcomes (a file that vanished, a duplicate name) are logged at DEBUG/INFO; failures a
user should act on (access, offline, Procore failing) at WARNING or ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from procorefs.api.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    InvalidResponse,
    NetworkError,
    NotFound,
    NotSignedIn,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from procorefs.errors import (
    FsAccessDenied,
    FsBusy,
    FsError,
    FsExists,
    FsInvalid,
    FsIOError,
    FsNotFound,
    FsOffline,
    FsTryAgain,
)

log = logging.getLogger("procorefs.core")

_DUPLICATE_WORDS = ("taken", "already exist", "duplicate", "unique", "same name")
_CHECKOUT_WORDS = ("checked out", "checkout", "checked_out", "locked")


def _text(exc: ApiError) -> str:
    return f"{exc.message} {exc.body!r}".lower()


def _not_signed_in(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return (logging.ERROR, FsAccessDenied,
            f"{what}: not signed in to Procore (run `procorefs login`)")


def _unauthorized(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return (logging.ERROR, FsAccessDenied,
            f"{what}: Procore no longer accepts the sign-in (run `procorefs login` again)")


def _forbidden(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.WARNING, FsAccessDenied, f"{what}: Procore says you do not have permission"


def _not_found(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.DEBUG, FsNotFound, f"{what}: it no longer exists in Procore"


def _conflict(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    if any(word in _text(exc) for word in _CHECKOUT_WORDS):
        return logging.INFO, FsAccessDenied, f"{what}: the file is checked out by someone else"
    return logging.INFO, FsBusy, f"{what}: Procore reports a conflicting change; try again"


def _gone(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.WARNING, FsIOError, f"{what}: Procore says the item has expired"


def _validation(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    if any(word in _text(exc) for word in _DUPLICATE_WORDS):
        return logging.INFO, FsExists, f"{what}: an item with that name already exists"
    return logging.WARNING, FsInvalid, f"{what}: Procore refused the request ({exc.message})"


def _rate_limited(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    wait = getattr(exc, "retry_after", None)
    hint = f"; try again in {wait:.0f} s" if isinstance(wait, int | float) else ""
    return logging.WARNING, FsTryAgain, f"{what}: Procore's request limit is used up{hint}"


def _server(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.WARNING, FsIOError, f"{what}: Procore is failing right now ({exc.message})"


def _network(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.WARNING, FsOffline, f"{what}: Procore cannot be reached (offline?)"


def _invalid(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.ERROR, FsIOError, f"{what}: Procore sent an answer procorefs cannot read"


def _generic(exc: ApiError, what: str) -> tuple[int, type[FsError], str]:
    return logging.WARNING, FsIOError, f"{what}: the Procore call failed ({exc.message})"


_Rule = Callable[[ApiError, str], tuple[int, type[FsError], str]]

TABLE: Final[dict[type[ApiError], _Rule]] = {
    ApiError: _generic,
    Unauthorized: _unauthorized,
    NotSignedIn: _not_signed_in,
    Forbidden: _forbidden,
    NotFound: _not_found,
    Conflict: _conflict,
    Gone: _gone,
    ValidationFailed: _validation,
    RateLimited: _rate_limited,
    ServerError: _server,
    NetworkError: _network,
    InvalidResponse: _invalid,
}
"""One rule per ``ApiError`` class; the most specific class in the MRO wins."""


def _rule_for(exc: ApiError) -> _Rule:
    for cls in type(exc).__mro__:
        rule = TABLE.get(cls)
        if rule is not None:
            return rule
    return _generic


def translate(exc: ApiError, action: str, path: str | None = None) -> FsError:
    """The ``FsError`` for ``exc``; logs one line such as 'cannot rename "/a": ...'."""
    what = f"cannot {action} {path!r}" if path else f"cannot {action}"
    level, cls, message = _rule_for(exc)(exc, what)
    status = f" (HTTP {exc.status})" if exc.status is not None else ""
    log.log(level, "%s%s", message, status)
    return cls(message, path)


@contextmanager
def api_call(action: str, path: str | None = None) -> Iterator[None]:
    """Run a block of client calls; any ``ApiError`` leaves it as the translated ``FsError``."""
    try:
        yield
    except ApiError as exc:
        raise translate(exc, action, path) from exc
