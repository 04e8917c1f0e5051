"""The emulator's shared state and the cross-cutting request plumbing of both origins.

Owns ``EmulatorSettings`` (what the command line chose), ``EmulatorContext`` (the store, the
blob store, the upload registry, the fault plan, the rate limiter, the request log and the
emulated clock), ``Principal`` (who a Bearer token speaks for) and ``JsonError`` (an aiohttp
exception carrying one of the documented JSON error bodies). ``middlewares(origin)`` builds the
per-origin middleware chain: request log and faults on both origins, rate limits with their
``X-Rate-Limit-*`` headers on the API origin only.

Everything here runs on the one event loop of the emulator process; SQLite access is
synchronous and kept to short transactions, so no lock is needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Middleware as Middleware

if TYPE_CHECKING:
    from procorefs.emulator.blobs import BlobRef, BlobStore
    from procorefs.emulator.faults import Faults
    from procorefs.emulator.ratelimit import RateLimiter
    from procorefs.emulator.store import Store
    from procorefs.emulator.uploads import UploadRegistry

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Origin = Literal["api", "storage"]

CONTROL_PREFIX = "/_emulator/"
INVALID_TOKEN = "The access token is invalid"
WWW_AUTHENTICATE = (
    f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{INVALID_TOKEN}"')
MISSING_COMPANY_HEADER = (
    "Missing Procore-Company-Id header! Since the rollout of Multiple Procore Regions, every "
    "request must say which company it is made for. Send the header with the id of the company "
    "that owns the resource.")


@dataclass(frozen=True)
class EmulatorSettings:
    """What ``procorefs emulator serve`` was asked for; the control API may change a copy."""

    host: str = "127.0.0.1"
    port: int = 8630
    storage_port: int = 8631
    token_ttl: int = 5400
    rate_hourly: int = 3600
    rate_spike: int = 100
    rate_spike_window: float = 10.0
    rate_hourly_window: float = 3600.0
    storage_url_ttl: int = 3600
    upload_start_window: int = 3600
    upload_associate_window: int = 7 * 24 * 3600
    code_ttl: int = 600
    control: bool = False
    # /documents page sizes: Procore documents neither (procore-api.md §4.5, §6.1), so inferred.
    documents_default_per_page: int = 100
    documents_max_per_page: int = 10000
    # /companies and /projects: v1.1 projects documents 100 and 300; reused for the others.
    list_default_per_page: int = 100
    list_max_per_page: int = 300


@dataclass(frozen=True)
class Principal:
    """Who a valid Bearer token acts for."""

    user_id: int
    client_id: str | None
    token_id: int
    # True for client-credentials (DMSA) tokens: they must send Procore-Company-Id everywhere.
    service: bool = False


class JsonError(web.HTTPException):
    """An error answer with a JSON body, raised from any handler or helper."""

    def __init__(self, status: int, body: object,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        super().__init__(text=json.dumps(body), content_type="application/json",
                         headers=dict(headers or {}))


def errors(status: int, message: str, headers: Mapping[str, str] | None = None) -> JsonError:
    """The ``{"errors": "..."}`` shape Procore uses for 401/403/404 and plain 400s."""
    return JsonError(status, {"errors": message}, headers)


def field_errors(status: int, fields: Mapping[str, list[str]]) -> JsonError:
    """The Rails ``{"errors": {"field": ["message"]}}`` shape of validation failures."""
    return JsonError(status, {"errors": dict(fields)})


def token_digest(token: str) -> str:
    """Tokens and codes are stored only as their SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@dataclass
class LogEntry:
    seq: int
    time: float
    method: str
    path: str
    query: str
    status: int
    origin: str
    user_id: int | None
    fault: str | None = None
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "method": self.method, "path": self.path,
                "query": self.query, "status": self.status, "origin": self.origin,
                "user_id": self.user_id, "fault": self.fault,
                "duration_ms": round(self.duration_ms, 3)}


@dataclass
class RequestLog:
    """Every API and storage request (not control calls), numbered from 1, bounded."""

    capacity: int = 200_000
    entries: list[LogEntry] = field(default_factory=list)
    last_seq: int = 0

    def add(self, entry: LogEntry) -> None:
        self.entries.append(entry)
        if len(self.entries) > self.capacity:
            # Drop the oldest tenth at once so appends stay amortised O(1).
            del self.entries[: self.capacity // 10]

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def since(self, seq: int, origin: str | None = None) -> list[LogEntry]:
        out = [e for e in self.entries if e.seq > seq]
        if origin:
            out = [e for e in out if e.origin == origin]
        return out


class EmulatorContext:
    """The one object every handler of both origins reaches its state through."""

    def __init__(self, settings: EmulatorSettings, store: Store, blobs: BlobStore,
                 uploads: UploadRegistry, faults: Faults, rates: RateLimiter) -> None:
        self.base_settings = settings
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.uploads = uploads
        self.faults = faults
        self.rates = rates
        self.log = RequestLog()
        self.clock_offset = 0.0
        self.api_url = f"http://{settings.host}:{settings.port}"
        self.storage_url = f"http://{settings.host}:{settings.storage_port}"
        self.seed_name = "empty"
        # Blobs of seed contents already written, by content key (see store.seed_blobs).
        self.seed_cache: dict[object, BlobRef] = {}

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        """Real time plus the offset ``POST /_emulator/clock/advance`` has added."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        self.clock_offset += seconds

    def update_settings(self, **changes: Any) -> None:
        self.settings = replace(self.settings, **changes)
        self.rates.configure(self.settings)

    def restore_settings(self) -> None:
        self.settings = self.base_settings
        self.rates.configure(self.settings)

    # -- authentication -----------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> Principal:
        """The principal of the request's Bearer token, or raise the Doorkeeper 401."""
        cached = request.get("principal")
        if isinstance(cached, Principal):
            return cached
        token = bearer_token(request)
        principal = None if token is None else self.store.principal_for(
            token_digest(token), self.now())
        if principal is None:
            raise errors(401, INVALID_TOKEN, {"WWW-Authenticate": WWW_AUTHENTICATE})
        request["principal"] = principal
        request["user_id"] = principal.user_id
        return principal

    def require_company_header(self, request: web.Request, principal: Principal,
                               company_id: int) -> None:
        """``Procore-Company-Id`` must be present and name the company the call is about.

        The status of a missing header is not documented (procore-api.md §2, §9.5): 400 with a
        JSON ``errors`` string is inferred. A header naming another company is refused the same
        way rather than silently resolved in the wrong company.
        """
        del principal  # every principal must send it; the exemptions are decided by callers
        raw = request.headers.get("Procore-Company-Id")
        if raw is None or not raw.strip():
            raise errors(400, MISSING_COMPANY_HEADER)
        try:
            value = int(raw.strip())
        except ValueError:
            raise errors(400, f"Invalid Procore-Company-Id header: {raw.strip()!r}") from None
        if value != company_id:
            raise errors(400, f"The Procore-Company-Id header ({value}) does not match the "
                              f"company of this request ({company_id})")

    # -- middlewares --------------------------------------------------------------------------

    def middlewares(self, origin: Origin) -> list[Middleware]:
        chain: list[Middleware] = [self._log_middleware(origin)]
        if origin == "api":
            chain.append(self.rates.middleware(self))
        chain.append(self.faults.middleware(self, origin))
        chain.append(_crash_middleware)
        return chain

    def _log_middleware(self, origin: Origin) -> Middleware:
        @web.middleware
        async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            request["log_seq"] = self.log.next_seq()
            request["log_origin"] = origin
            request["log_started"] = time.monotonic()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                if origin == "api" and not response.prepared:
                    response.headers.setdefault("X-Request-Id", uuid.uuid4().hex)
                return response
            except web.HTTPException as exc:
                status = exc.status
                if origin == "api":
                    exc.headers.setdefault("X-Request-Id", uuid.uuid4().hex)
                raise
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.path)
                response = errors(500, "Internal Server Error")
                status = 500
                return response
            finally:
                self._record(request, status)

        return request_log

    def attach(self, app: web.Application) -> None:
        """Log a streamed response when its headers go out, not when its body ends.

        A handler that streams (a storage GET, say) returns only after the last byte; by then
        the client may already have asked for the request log, and must find this request there.
        """
        app.on_response_prepare.append(self._on_prepare)

    async def _on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        self._record(request, response.status)

    def _record(self, request: web.Request, status: int) -> None:
        seq = request.get("log_seq")
        if not isinstance(seq, int) or request.get("log_recorded"):
            return
        request["log_recorded"] = True
        user = request.get("user_id")
        self.log.add(LogEntry(
            seq=seq, time=self.now(), method=request.method, path=request.path,
            query=request.query_string, status=status, origin=request["log_origin"],
            user_id=user if isinstance(user, int) else None,
            fault=request.get("fault_kind"),
            duration_ms=(time.monotonic() - request["log_started"]) * 1000.0))


@web.middleware
async def _crash_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Innermost: a bug becomes a logged 500 with a JSON body the outer layers can decorate."""
    try:
        return await handler(request)
    except (web.HTTPException, ConnectionError):
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        raise errors(500, "Internal Server Error") from None


# -- request bodies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedPart:
    """A binary multipart part (legacy ``file[data]``), spooled to a temporary file."""

    path: str
    filename: str | None
    size: int


async def read_params(request: web.Request, spool_dir: str | None = None) -> dict[str, Any]:
    """The request's parameters, from a JSON body, a urlencoded form or a multipart form.

    Form keys in bracket notation (``file[name]``, ``filters[id][]``) are nested the way Rails
    does, so handlers see the same structure as for JSON. Binary multipart parts are streamed
    to a temporary file, never held in memory.
    """
    ctype = request.content_type
    if ctype == "application/json":
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise errors(400, "The request body is not valid JSON") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise errors(400, "The request body must be a JSON object")
        return data
    if ctype == "application/x-www-form-urlencoded":
        form = await request.post()
        return nest_params([(k, str(v)) for k, v in form.items()])
    if ctype == "multipart/form-data":
        return nest_params(await _read_multipart(request, spool_dir))
    if not request.can_read_body:
        return {}
    body = await request.read()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise errors(400, f"Unsupported content type {ctype!r}: send JSON or a form") from None
    if not isinstance(data, dict):
        raise errors(400, "The request body must be a JSON object")
    return data


async def _read_multipart(request: web.Request,
                          spool_dir: str | None) -> list[tuple[str, Any]]:
    import tempfile

    reader = await request.multipart()
    pairs: list[tuple[str, Any]] = []
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None and not part.name.endswith("[data]"):
            pairs.append((part.name, await part.text()))
            continue
        size = 0
        with tempfile.NamedTemporaryFile(dir=spool_dir, delete=False, prefix="part-") as handle:
            while chunk := await part.read_chunk(1 << 20):
                handle.write(chunk)
                size += len(chunk)
        pairs.append((part.name, UploadedPart(handle.name, part.filename, size)))
    return pairs


def nest_params(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``[("file[name]", "a"), ("ids[]", "1")]`` -> ``{"file": {"name": "a"}, "ids": ["1"]}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in ("[" + rest).split("[")[1:]] if rest else [])
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                if part == "" and isinstance(node, list):
                    node.append(value)
                elif isinstance(node, dict):
                    node[part] = value
                break
            following = parts[i + 1]
            if isinstance(node, dict):
                child = node.get(part)
                if not isinstance(child, dict | list):
                    child = [] if following == "" else {}
                    node[part] = child
                node = child
            elif isinstance(node, list):
                new: dict[str, Any] = {}
                node.append(new)
                node = new
    return out
