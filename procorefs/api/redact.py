"""Keeps secrets out of log lines and exception messages.

Two nets: every secret the client handles (access and refresh tokens, client secrets,
authorization codes) is registered here and replaced wherever it appears verbatim, and
patterns catch the shapes secrets travel in even when nobody registered them (``Bearer ...``,
``access_token=...``, ``"refresh_token": "..."``, presigned-URL signatures).

``install_log_redaction()`` attaches ``RedactingFilter`` to the loggers that see request lines
(``httpx``, ``httpcore.*``, ``procorefs``): a logger's filters only run for records created on
that very logger, so each is named. Our own code also passes text through ``redact()`` before
putting it in an exception.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_MIN_SECRET = 6

_lock = threading.Lock()
_secrets: set[str] = set()

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(\b(?:access_token|refresh_token|client_secret|id_token|code|token|"
               r"password|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)"
               r"=)[^&\s\"',;]+"),
    re.compile(r"(?i)(\"(?:access_token|refresh_token|client_secret|token|password)\"\s*:\s*\")"
               r"[^\"]*"),
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)[^\n,;'\"]+"),
)


def register_secret(value: str | None) -> None:
    """Make ``value`` unprintable from now on (tokens are opaque, so match them verbatim)."""
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and secret-shaped fragment masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def safe_url(url: str) -> str:
    """A URL fit for a message: scheme, host and path only (query strings carry signatures)."""
    parts = urlsplit(url)
    return redact(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message through ``redact`` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


_FILTER = RedactingFilter()
_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
            "httpcore.proxy", "procorefs", "procorefs.api", "procorefs.api.client",
            "procorefs.api.auth", "procorefs.api.http", "procorefs.api.transfers",
            "procorefs.cli.auth", "filelock", "keyring")


def install_log_redaction() -> None:
    """Attach the filter to every logger that could see a secret (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
