"""Counting what a workload cost in requests, from the emulator's request log.

The log (``GET /_emulator/requests``) records every request to both origins. API-origin
requests are what Procore rate-limits (``X-Rate-Limit-*``), so they are the "API calls" of the
targets; storage-origin requests (presigned part PUTs, form POSTs, ranged GETs) cost no
budget and are counted apart. API calls are attributed to a user by the token they carried:
the bench polls for commits with a second user's token, so its own polls never count against
the mount. Storage requests carry no token; a run does one thing at a time, so all of them in
a window belong to the workload in it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_NUMBER = re.compile(r"/\d+(?=/|$)")
# Upload ids (ULIDs, 26 Crockford base32 characters) and content keys in storage paths.
_TOKENISH = re.compile(r"/[0-9A-Za-z_-]{20,}(?=/|$)")
_FAS = re.compile(r"^/fas/.*")


def endpoint(method: str, path: str) -> str:
    """``GET /rest/v1.0/folders/{id}``: a request's method and path with ids folded away."""
    if _FAS.match(path):
        return f"{method.upper()} /fas/... (download URL)"
    path = _NUMBER.sub("/{id}", path)
    path = _TOKENISH.sub("/{key}", path)
    return f"{method.upper()} {path}"


@dataclass(frozen=True)
class CallCount:
    api: int = 0
    storage: int = 0
    storage_puts: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """``3 API (2 x GET /rest/v1.0/folders/{id}, ...) + 4 storage``."""
        parts = ", ".join(f"{n} x {kind}" for kind, n in
                          sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        text = f"{self.api} API"
        if parts:
            text += f" ({parts})"
        return text + f" + {self.storage} storage"


def count_calls(entries: Iterable[Mapping[str, Any]], *, user_id: int | None) -> CallCount:
    """API calls made by ``user_id`` (every user when None) and all storage requests."""
    api = 0
    storage = 0
    puts = 0
    kinds: Counter[str] = Counter()
    for entry in entries:
        origin = entry.get("origin")
        method = str(entry.get("method", "")).upper()
        if origin == "storage":
            storage += 1
            if method in ("PUT", "POST"):
                puts += 1
            continue
        if origin != "api":
            continue
        if user_id is not None and entry.get("user_id") != user_id:
            continue
        api += 1
        kinds[endpoint(method, str(entry.get("path", "")))] += 1
    return CallCount(api, storage, puts, dict(kinds))


def last_activity(entries: Iterable[Mapping[str, Any]], *, user_id: int | None) -> float | None:
    """Emulator time of the latest request by ``user_id`` (API) or to storage, if any."""
    latest: float | None = None
    for entry in entries:
        if entry.get("origin") == "api" and user_id is not None \
                and entry.get("user_id") != user_id:
            continue
        when = float(entry.get("time", 0.0))
        latest = when if latest is None else max(latest, when)
    return latest


_COMMIT = re.compile(r"(^|/)(files|file_versions)(/\d+)?$")


def is_commit(entry: Mapping[str, Any]) -> bool:
    """A successful call that puts content in Procore: create a file, a version, or PATCH a
    file (the documented way to give it new content, also used for renames)."""
    method = str(entry.get("method", "")).upper()
    path = str(entry.get("path", ""))
    status = int(entry.get("status", 0))
    if entry.get("origin") != "api" or not 200 <= status < 300:
        return False
    match = _COMMIT.search(path)
    if match is None:
        return False
    if method == "POST":
        return match.group(3) is None
    return method == "PATCH" and match.group(2) == "files" and match.group(3) is not None


def last_commit_time(entries: Iterable[Mapping[str, Any]], *, user_id: int | None,
                     until: float) -> float | None:
    """When (emulator wall clock, end of the request) the last commit by ``user_id`` at or
    before ``until`` finished; None if there was none. The log stamps an entry when its
    answer is done, so this is the moment the commit became visible."""
    best: float | None = None
    for entry in entries:
        if user_id is not None and entry.get("user_id") != user_id:
            continue
        if not is_commit(entry):
            continue
        when = float(entry.get("time", 0.0))
        if when <= until and (best is None or when > best):
            best = when
    return best


def timeline(entries: Iterable[Mapping[str, Any]], *, user_id: int | None,
             start: float) -> str:
    """When each kind of request finished, in seconds after ``start`` (wall clock), in order:
    ``POST /rest/v1.1/projects/{id}/uploads +1.02; PUT (storage) x16 +1.10..2.31; ...``.
    It shows where the time between a write and its commit went (waiting, hashing,
    transferring, committing)."""
    spans: dict[str, list[float]] = {}
    for entry in entries:
        origin = entry.get("origin")
        if origin == "api" and user_id is not None and entry.get("user_id") != user_id:
            continue
        method = str(entry.get("method", "")).upper()
        kind = f"{method} (storage)" if origin == "storage" else endpoint(
            method, str(entry.get("path", "")))
        spans.setdefault(kind, []).append(float(entry.get("time", 0.0)) - start)
    parts = []
    for kind, times in sorted(spans.items(), key=lambda kv: min(kv[1])):
        first, last = min(times), max(times)
        count = f" x{len(times)}" if len(times) > 1 else ""
        when = f"+{first:.2f}" if last - first < 0.005 else f"+{first:.2f}..{last:.2f}"
        parts.append(f"{kind}{count} {when} s")
    return "; ".join(parts)
