"""Getting bytes out of Procore: resolve a version's URL once, then ranged GETs at storage.

``file_versions[].url`` is opaque (shared/procore-api.md 4.9). It is fetched without automatic
redirects; each hop gets the Bearer token only if its host is trusted (the API origin, and
``*.procore.com`` for the real environments), and the first untrusted hop - the presigned
storage URL - ends the walk. That location is cached per version until shortly before it
expires (``X-Amz-Date`` + ``X-Amz-Expires``, or ``Expires``, or a conservative default when
the URL says nothing), so many reads cost one API call. A 403 from storage means it expired
early: the URL is resolved again, once per read.

Bytes are streamed into a sink: a read of a slice holds only that slice, a download to a file
or to a ``ByteSink`` (which may write each chunk in place as it arrives) holds one network
buffer per worker. A connection that breaks mid-body is resumed from the first missing byte.
Large downloads to a path are split into ranges fetched in parallel and written in place with
``os.pwrite``-style positioned writes.
"""

from __future__ import annotations

import calendar
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from procorefs.api.errors import ApiError, Forbidden, InvalidResponse, NetworkError
from procorefs.api.http import ApiSession, error_for
from procorefs.api.models import FileVersion
from procorefs.api.ratelimit import Priority
from procorefs.api.redact import safe_url
from procorefs.api.retry import ANSWER_LOST_ERRORS, NOT_SENT_ERRORS, RETRYABLE_STATUS, Backoff
from procorefs.clock import Clock

log = logging.getLogger(__name__)

DEFAULT_TTL = 300.0       # when a location says nothing about its lifetime
_MAX_HOPS = 5
_PIECE = 16 * 1024 * 1024  # parallel download unit
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Location:
    url: str
    auth: bool           # send the Bearer token (a trusted host that serves bytes itself)
    expires_at: float    # wall-clock seconds; re-resolve after this


def location_expiry(url: str, now: float, default_ttl: float = DEFAULT_TTL) -> float:
    """When a presigned URL stops working, by our clock, with a safety margin taken off."""
    query = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    lifetime: float | None = None
    absolute: float | None = None
    try:
        if "x-amz-expires" in query:
            lifetime = float(query["x-amz-expires"])
            if "x-amz-date" in query:
                signed = time.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ")
                absolute = calendar.timegm(signed) + lifetime
        elif "expires" in query:
            absolute = float(query["expires"])
        elif "expires_at" in query:
            absolute = float(query["expires_at"])
    except (ValueError, OverflowError):
        lifetime = absolute = None
    candidates = [t for t in (absolute, now + lifetime if lifetime is not None else None)
                  if t is not None]
    # The earliest reading wins: the signer's clock and ours may disagree.
    expiry = min(candidates) if candidates else now + default_ttl
    margin = min(60.0, max(1.0, 0.1 * (expiry - now)))
    return expiry - margin


class ByteSink(Protocol):
    """Anything bytes can be written to: an open binary file, a hash, a socket wrapper."""

    def write(self, data: bytes, /) -> object: ...


class _Expired(Exception):
    pass


class Downloader:
    def __init__(self, session: ApiSession, storage: httpx.Client, clock: Clock,
                 backoff: Backoff, default_ttl: float = DEFAULT_TTL) -> None:
        self._session = session
        self._storage = storage
        self._clock = clock
        self._backoff = backoff
        self._default_ttl = default_ttl
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Location] = OrderedDict()
        self._companies: OrderedDict[int, int] = OrderedDict()
        self.resolutions = 0  # URL resolutions done (status and tests)

    def remember_company(self, version_id: int, company_id: int) -> None:
        """Which company's budget (and header) a version's URL is resolved under."""
        with self._lock:
            self._companies[version_id] = company_id
            self._companies.move_to_end(version_id)
            while len(self._companies) > _CACHE_SIZE * 4:
                self._companies.popitem(last=False)

    # --- locations --------------------------------------------------------------------------

    def location(self, version: FileVersion, priority: Priority, *,
                 stale: Location | None = None) -> Location:
        now = self._clock.time()
        with self._lock:
            cached = self._cache.get(version.id)
            if cached is not None and cached != stale and cached.expires_at > now:
                self._cache.move_to_end(version.id)
                return cached
            company_id = self._companies.get(version.id)
        loc = self._resolve(version.url, company_id, priority)
        with self._lock:
            self._cache[version.id] = loc
            self._cache.move_to_end(version.id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return loc

    def forget(self, version_id: int) -> None:
        with self._lock:
            self._cache.pop(version_id, None)

    def _resolve(self, url: str, company_id: int | None, priority: Priority) -> Location:
        settings = self._session.settings
        self.resolutions += 1
        for _ in range(_MAX_HOPS):
            if not settings.is_trusted_url(url):
                return Location(url, False, location_expiry(url, self._clock.time(),
                                                           self._default_ttl))
            response = self._session.request("GET", url, company_id=company_id,
                                             priority=priority, stream=True,
                                             company_header=False)
            response.close()
            if response.status_code in (301, 302, 303, 307, 308):
                target = response.headers.get("location")
                if not target:
                    raise InvalidResponse("a file redirect without Location", method="GET",
                                          path=safe_url(url))
                url = urljoin(url, target)
                continue
            # The trusted URL serves the bytes itself; ranged GETs go there with the token.
            return Location(url, True, self._clock.time() + self._default_ttl)
        raise InvalidResponse(f"more than {_MAX_HOPS} redirects", method="GET",
                              path=safe_url(url))

    # --- reading ----------------------------------------------------------------------------

    def read_range(self, version: FileVersion, offset: int, length: int,
                   priority: Priority) -> bytes:
        if length <= 0:
            return b""
        buffer = io.BytesIO()
        self._fetch(version, offset, length, buffer.write, priority)
        return buffer.getvalue()

    def download_to(self, version: FileVersion, dest: Path | ByteSink, *, offset: int,
                    length: int | None, parallel: int,
                    progress: Callable[[int], object] | None,
                    priority: Priority = Priority.INTERACTIVE) -> int:
        """Bytes ``offset``..``offset+length`` (to the end if None) into ``dest``."""
        total = length if length is not None else max(0, version.size - offset)
        done = [0]
        lock = threading.Lock()

        def counted(write: Callable[[bytes], object]) -> Callable[[bytes], object]:
            if progress is None:  # nothing to count: no extra call per network chunk
                return write

            def sink(chunk: bytes) -> None:
                write(chunk)
                with lock:
                    done[0] += len(chunk)
                    progress(done[0])
            return sink

        if not isinstance(dest, Path):
            return self._fetch(version, offset, length, counted(dest.write), priority)
        with dest.open("wb") as fh:
            if parallel <= 1 or total < 2 * _PIECE or (length is None and version.size <= 0):
                return self._fetch(version, offset, length, counted(fh.write), priority)
            fh.truncate(total)
        pieces = [(start, min(_PIECE, total - start)) for start in range(0, total, _PIECE)]

        def one(start: int, size: int) -> int:
            with dest.open("r+b") as out:
                out.seek(start)
                return self._fetch(version, offset + start, size, counted(out.write), priority)

        with ThreadPoolExecutor(max_workers=min(parallel, len(pieces)),
                                thread_name_prefix="procorefs-download") as pool:
            futures = [pool.submit(one, s, n) for s, n in pieces]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in finished if f.exception()), None)
            if failure is not None:
                for f in futures:
                    f.cancel()
                wait(futures)
                raise failure
            got = sum(f.result() for f in futures)
        if got != total:
            raise NetworkError(f"download ended early: {got} of {total} bytes")
        return got

    def _fetch(self, version: FileVersion, offset: int, length: int | None,
               sink: Callable[[bytes], object], priority: Priority) -> int:
        """Stream bytes into ``sink``, resuming after breaks; returns the count."""
        got = 0
        attempt = 0
        stale: Location | None = None
        reresolved = 0
        while length is None or got < length:
            loc = self.location(version, priority, stale=stale)
            want = None if length is None else length - got
            try:
                n, finished = self._get(loc, offset + got, want, sink)
            except _Expired:
                reresolved += 1
                if reresolved > 2:
                    raise Forbidden("storage keeps refusing the download URL",
                                    status=403, method="GET", path=safe_url(loc.url)) from None
                self.forget(version.id)
                stale = loc
                continue
            except _Fatal as fatal:
                raise fatal.error from None
            except ApiError as error:
                attempt += 1
                if not self._backoff.allows(attempt):
                    raise
                log.debug("download retry %d: %s", attempt, error.message)
                self._clock.sleep(self._backoff.delay(attempt))
                continue
            got += n
            if n:
                attempt = 0
            if finished:
                break
        return got

    def _get(self, loc: Location, start: int, want: int | None,
             sink: Callable[[bytes], object]) -> tuple[int, bool]:
        """One ranged GET. Returns (bytes delivered, reached the end of what exists)."""
        shown = safe_url(loc.url)
        rng = f"bytes={start}-" if want is None else f"bytes={start}-{start + want - 1}"
        client = self._session.http if loc.auth else self._storage
        auth = self._session.auth if loc.auth else None
        got = 0
        try:
            with client.stream("GET", loc.url, headers={"Range": rng}, auth=auth) as response:
                status = response.status_code
                if status == 416:
                    return 0, True
                if status in (401, 403):
                    raise _Expired()
                if status not in (200, 206):
                    response.read()
                    error = error_for(response, "GET", shown)
                    if status in RETRYABLE_STATUS:
                        raise error
                    raise _Fatal(error)
                skip = start if status == 200 else 0  # the server ignored Range
                # A body of just the asked range is read to its end even after the last
                # wanted byte: only then does httpcore see the message end and keep the
                # connection for the next range (stopping early closes it, so every range
                # paid a new TCP, and on real storage TLS, handshake). A body that may be
                # longer than asked (Range ignored, or an over-sending server) is cut short.
                cut_short = status == 200 or _may_exceed(response, want)
                for chunk in response.iter_bytes():
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    if want is not None and got + len(chunk) > want:
                        chunk = chunk[: want - got]
                    if chunk:
                        sink(chunk)
                        got += len(chunk)
                    if want is not None and got >= want and cut_short:
                        break
        except (*NOT_SENT_ERRORS, *ANSWER_LOST_ERRORS) as exc:
            if got:
                return got, False  # resume from here at once
            raise NetworkError(f"download failed: {type(exc).__name__}", method="GET",
                               path=shown) from None
        finished = want is None or got < want
        return got, finished


def _may_exceed(response: httpx.Response, want: int | None) -> bool:
    """Could this 206 body hold more than the ``want`` bytes asked for?"""
    if want is None:
        return False
    try:
        length = int(response.headers["content-length"])
    except (KeyError, ValueError):
        return True  # unknown length: do not read an unknown amount past what we need
    return length > want


class _Fatal(Exception):
    def __init__(self, error: ApiError) -> None:
        super().__init__(str(error))
        self.error = error
