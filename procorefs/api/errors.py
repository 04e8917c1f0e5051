"""The one ``ApiError`` tree: every failure of a Procore call becomes exactly one of these.

The core translates them to ``FsError`` in one place (``core/translate.py``); nothing above
``api`` sees httpx exceptions. Messages never contain tokens.
"""

from __future__ import annotations


class ApiError(Exception):
    """A Procore call failed. ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, *, status: int | None = None,
                 body: object = None, method: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method and self.path else ""
        code = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{code}{self.message}{where}"


class Unauthorized(ApiError):
    """401: missing, expired or revoked token, and a refresh did not help."""


class NotSignedIn(Unauthorized):
    """No credentials at all: the user must run ``procorefs login`` or set an env var."""


class Forbidden(ApiError):
    """403: no permission (or a storage URL / upload window that expired)."""


class NotFound(ApiError):
    """404: gone, or invisible to this user (Procore answers 404 for both)."""


class Conflict(ApiError):
    """409: e.g. the file is checked out by another user."""


class Gone(ApiError):
    """410: e.g. an expired upload."""


class ValidationFailed(ApiError):
    """400/406/422: the request was refused as invalid (a duplicate name, say)."""


class RateLimited(ApiError):
    """429 that outlasted the client's patience."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx that outlasted the retries."""


class NetworkError(ApiError):
    """No answer at all: connection refused or reset, DNS, timeout."""


class InvalidResponse(ApiError):
    """An answer that is not what the documented API returns (garbage, wrong shape)."""

    def __init__(self, message: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]


ALL_API_ERRORS: tuple[type[ApiError], ...] = (
    ApiError, Unauthorized, NotSignedIn, Forbidden, NotFound, Conflict, Gone,
    ValidationFailed, RateLimited, ServerError, NetworkError, InvalidResponse,
)
