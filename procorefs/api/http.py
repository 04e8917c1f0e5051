"""One API request, done right: headers, rate limiting, retries, and the error tree.

``ApiSession.request`` is the only door to the API origin. For every attempt it waits for the
(credential, company) limiter, sends with ``ProcoreAuth``, feeds the limiter the answer's
``X-Rate-Limit-*`` headers and decides:
- 2xx/3xx: done;
- 429: the request was not processed, so any method is repeated, after ``Retry-After`` or the
  reset (every thread of that limiter waits too);
- 5xx, 408, timeouts, resets: repeated with jittered backoff if the request is idempotent;
  for a create (POST) the answer may be lost after the server did the work, so ``create``
  asks the caller's ``find`` whether the item exists before it tries again;
- connection refused and the like: the request never left, so any method is repeated;
- anything else: the matching ``ApiError``, its message built from the body defensively and
  redacted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from procorefs.api.auth import Credentials, ProcoreAuth
from procorefs.api.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    InvalidResponse,
    NetworkError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from procorefs.api.ratelimit import Priority, RateLimiter, parse_retry_after
from procorefs.api.redact import redact, safe_url
from procorefs.api.retry import ANSWER_LOST_ERRORS, NOT_SENT_ERRORS, RETRYABLE_STATUS, Backoff
from procorefs.clock import Clock
from procorefs.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# A burst of 429s is waited out, not counted against the ordinary retry budget.
_MAX_RATE_LIMITED = 30


class AnswerLost(Exception):
    """A non-idempotent request may or may not have been processed (internal signal)."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error


def error_message(response: httpx.Response) -> str:
    """The human part of a Procore error body, whatever its shape (procore-api.md 6.3)."""
    try:
        body: Any = response.json()
    except ValueError:
        text = response.text.strip()
        return redact(text[:200]) if text else (response.reason_phrase or "no details")
    parts: list[str] = []

    def add(value: object, prefix: str = "") -> None:
        if isinstance(value, str) and value:
            parts.append(prefix + value)
        elif isinstance(value, list):
            for item in value[:5]:
                add(item, prefix)
        elif isinstance(value, Mapping):
            for key, item in list(value.items())[:5]:
                add(item, "" if key == "base" else f"{key} ")

    if isinstance(body, Mapping):
        add(body.get("errors"))
        add(body.get("message"))
        if not parts:
            add(body.get("error_description") or body.get("error"))
    elif isinstance(body, str | list):
        add(body)
    return redact("; ".join(parts)[:300]) if parts else (response.reason_phrase or "no details")


def error_for(response: httpx.Response, method: str, path: str) -> ApiError:
    status = response.status_code
    message = error_message(response)
    try:
        body: object = response.json()
    except ValueError:
        body = None
    kw: dict[str, Any] = {"status": status, "body": body, "method": method, "path": path}
    if status == 401:
        return Unauthorized(message or "the access token is invalid", **kw)
    if status == 403:
        return Forbidden(message, **kw)
    if status == 404:
        return NotFound(message, **kw)
    if status == 409:
        return Conflict(message, **kw)
    if status == 410:
        return Gone(message, **kw)
    if status in (400, 406, 422):
        return ValidationFailed(message, **kw)
    if status == 429:
        retry = parse_retry_after(response.headers.get("retry-after"), 0.0)
        return RateLimited(message, retry_after=retry, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return ApiError(message, **kw)


def json_body(response: httpx.Response, method: str, path: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise InvalidResponse(f"the answer is not JSON: {redact(response.text[:80])!r}",
                              status=response.status_code, method=method, path=path) from None


class ApiSession:
    """The API origin, its limiters and its retry policy (thread-safe)."""

    def __init__(self, settings: Settings, http: httpx.Client, credentials: Credentials,
                 clock: Clock, backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.http = http
        self.credentials = credentials
        self.auth = ProcoreAuth(credentials, settings)
        self.clock = clock
        self.backoff = backoff or Backoff(max_retries=settings.max_retries)
        self._limiters: dict[tuple[str, int | None], RateLimiter] = {}
        self._lock = threading.Lock()
        self.last_limiter: RateLimiter | None = None

    def limiter(self, company_id: int | None) -> RateLimiter:
        key = (self.credentials.identity, company_id)
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._limiters[key] = RateLimiter(self.clock)
            return limiter

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.settings.api_url + path

    def request(self, method: str, path: str, *, company_id: int | None,
                params: Mapping[str, Any] | None = None, json: Any = None,
                priority: Priority = Priority.INTERACTIVE, idempotent: bool | None = None,
                stream: bool = False, company_header: bool = True,
                done_if_repeated: frozenset[int] = frozenset()) -> httpx.Response:
        """Send until a final answer. Raises ``ApiError``; for a non-idempotent request whose
        answer may be lost, raises ``AnswerLost`` so the caller can look before retrying.
        With ``stream`` the 2xx/3xx answer is returned unread (the caller closes it).
        ``done_if_repeated``: statuses that mean success when an earlier attempt of this call
        may have been processed (404 for a DELETE whose first answer was lost)."""
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT
        url = self.url(path)
        shown = safe_url(url)
        headers = {"Procore-Company-Id": str(company_id)} \
            if company_id is not None and company_header else {}
        limiter = self.limiter(company_id)
        attempt = 0
        limited = 0
        maybe_done = False
        while True:
            limiter.acquire(priority)
            response: httpx.Response | None = None
            failure: ApiError | None = None
            lost = False
            try:
                request = self.http.build_request(method, url, params=params, json=json,
                                                  headers=headers)
                response = self.http.send(request, auth=self.auth, stream=True)
                limiter.update(response.headers)
                if not stream or response.status_code >= 400:
                    response.read()
            except NOT_SENT_ERRORS as exc:
                failure = NetworkError(f"cannot reach {self.settings.api_url}: "
                                       f"{type(exc).__name__}", method=method, path=shown)
            except ANSWER_LOST_ERRORS as exc:
                if response is not None:
                    response.close()
                failure = NetworkError(f"connection lost: {type(exc).__name__}",
                                       method=method, path=shown)
                lost = True
            except httpx.TransportError as exc:
                raise NetworkError(f"request failed: {type(exc).__name__}", method=method,
                                   path=shown) from None
            finally:
                limiter.release()
            if failure is not None or response is None:
                assert failure is not None
                attempt += 1
                maybe_done = maybe_done or lost
                if lost and not idempotent:
                    raise AnswerLost(failure)
                self._pause_or_raise(attempt, failure, None)
                continue
            self.last_limiter = limiter
            status = response.status_code
            log.debug("%s %s -> %d", method, shown, status)
            if status < 400:
                return response
            response.close()
            if maybe_done and status in done_if_repeated:
                return response
            error = error_for(response, method, shown)
            hint = parse_retry_after(response.headers.get("retry-after"), self.clock.time())
            if status == 429:
                limited += 1
                if limited > _MAX_RATE_LIMITED:
                    raise error
                limiter.block(hint)  # acquire() then waits it out, for every thread
                continue
            if status not in RETRYABLE_STATUS:
                raise error
            attempt += 1
            maybe_done = maybe_done or status != 503
            if not idempotent:
                if status == 503 and hint is not None:
                    limiter.block(hint)
                raise AnswerLost(error)
            if status == 503 and hint is not None:
                # Load shedding: everybody on this budget backs off; acquire() waits.
                if not self.backoff.allows(attempt):
                    raise error
                limiter.block(hint)
                continue
            self._pause_or_raise(attempt, error, hint)

    def create(self, path: str, *, company_id: int | None, json: Any,
               params: Mapping[str, Any] | None, parse: Callable[[Any], T],
               find: Callable[[], T | None] | None,
               priority: Priority = Priority.INTERACTIVE) -> T:
        """POST a create; if its answer is lost, look for the item before trying again."""
        attempt = 0
        while True:
            try:
                response = self.request("POST", path, company_id=company_id, params=params,
                                        json=json, priority=priority, idempotent=False)
            except (ValidationFailed, Conflict):
                # After a lost answer, "name taken" / "upload already used" may be our own
                # first attempt: look once more, with no tolerance for doubt left to find().
                if attempt and find is not None:
                    found = find()
                    if found is not None:
                        return found
                raise
            except AnswerLost as lost:
                attempt += 1
                found = find() if find is not None else None
                if found is not None:
                    log.info("the answer to POST %s was lost, but the item exists",
                             safe_url(self.url(path)))
                    return found
                if not self.backoff.allows(attempt):
                    raise lost.error from None
                self.clock.sleep(self.backoff.delay(attempt))
                continue
            return parse(json_body(response, "POST", safe_url(self.url(path))))

    def _pause_or_raise(self, attempt: int, error: ApiError, hint: float | None) -> None:
        if not self.backoff.allows(attempt):
            raise error
        delay = self.backoff.delay(attempt, hint or None)
        log.debug("retry %d of %s %s in %.2f s (%s)", attempt, error.method, error.path,
                  delay, error.message)
        self.clock.sleep(delay)
