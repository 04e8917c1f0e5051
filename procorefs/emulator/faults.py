"""Fault plans: rules that make either origin misbehave on purpose, for tests and benchmarks.

A rule matches requests by origin, method and path (regular expressions, ``re.search``) and
fires with a probability, after letting ``skip`` matches through, at most ``times`` times.
What it does when it fires (``action``):

- ``latency``: wait ``delay`` seconds, then answer normally (several may add up);
- ``status``: answer ``status`` (429/500/502/503 or any 4xx/5xx) without doing the work, with
  ``Retry-After`` on 429 and 503 (``retry_after``, default 1 s);
- ``stall``: hold the request ``delay`` seconds (default an hour) or until the peer gives up;
- ``lost``: do the work, then drop the connection instead of answering ("lost answer");
- ``reset``: send (or, for a request body a handler streams, read) ``after_bytes`` bytes of
  the body, then abort the connection;
- ``expire_urls``: storage URLs are treated as expired (``storage_urls_expire_now``).

The first firing rule that is not ``latency`` decides. Control calls are never faulted.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from procorefs.emulator.context import CONTROL_PREFIX, JsonError

if TYPE_CHECKING:
    from procorefs.emulator.context import EmulatorContext, Handler, Middleware

ACTIONS = ("latency", "status", "stall", "lost", "reset", "expire_urls")
_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
            409: "Conflict", 410: "Gone", 422: "Unprocessable Entity",
            429: ("You have surpassed the max number of requests for an hour. "
                  "Please wait until your limit resets."),
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}
_S3_CODES = {403: "AccessDenied", 429: "SlowDown", 500: "InternalError", 503: "SlowDown",
             502: "BadGateway", 504: "GatewayTimeout"}


class FaultRuleError(ValueError):
    """A rule the control API was given cannot be understood."""


@dataclass
class FaultRule:
    action: str
    origin: str = "any"
    method: str | None = None
    path: str | None = None
    status: int = 503
    retry_after: int | None = None
    delay: float | None = None
    after_bytes: int = 0
    probability: float = 1.0
    times: int | None = None
    skip: int = 0
    name: str | None = None
    matched: int = 0
    fired: int = 0
    _method_re: re.Pattern[str] | None = field(default=None, repr=False)
    _path_re: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        if not isinstance(data, dict):
            raise FaultRuleError("a fault rule must be a JSON object")
        known = {"action", "origin", "method", "path", "status", "retry_after", "delay",
                 "after_bytes", "probability", "times", "skip", "name"}
        unknown = set(data) - known
        if unknown:
            raise FaultRuleError(f"unknown fault rule keys: {sorted(unknown)}")
        action = data.get("action")
        if action not in ACTIONS:
            raise FaultRuleError(f"action must be one of {list(ACTIONS)}, got {action!r}")
        origin = data.get("origin", "any")
        if origin not in ("api", "storage", "any"):
            raise FaultRuleError("origin must be api, storage or any")
        try:
            rule = cls(
                action=str(action), origin=str(origin),
                method=_opt_str(data.get("method")), path=_opt_str(data.get("path")),
                status=int(data.get("status", 503)),
                retry_after=None if data.get("retry_after") is None
                else int(data["retry_after"]),
                delay=None if data.get("delay") is None else float(data["delay"]),
                after_bytes=int(data.get("after_bytes", 0)),
                probability=float(data.get("probability", 1.0)),
                times=None if data.get("times") is None else int(data["times"]),
                skip=int(data.get("skip", 0)), name=_opt_str(data.get("name")))
            rule._method_re = re.compile(rule.method, re.I) if rule.method else None
            rule._path_re = re.compile(rule.path) if rule.path else None
        except (TypeError, ValueError, re.error) as exc:
            raise FaultRuleError(f"bad fault rule {data!r}: {exc}") from None
        if rule.action == "status" and not 400 <= rule.status <= 599:
            raise FaultRuleError("status must be a 4xx or 5xx code")
        if not 0.0 <= rule.probability <= 1.0:
            raise FaultRuleError("probability must be between 0 and 1")
        return rule

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "origin": self.origin,
                "method": self.method, "path": self.path, "status": self.status,
                "retry_after": self.retry_after, "delay": self.delay,
                "after_bytes": self.after_bytes, "probability": self.probability,
                "times": self.times, "skip": self.skip, "matched": self.matched,
                "fired": self.fired}

    def matches(self, origin: str, method: str, path: str) -> bool:
        if self.origin != "any" and self.origin != origin:
            return False
        if self._method_re is not None and not self._method_re.fullmatch(method):
            return False
        return self._path_re is None or self._path_re.search(path) is not None

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def try_fire(self, rng: random.Random) -> bool:
        """Count a match and decide whether the rule fires for it."""
        if self.exhausted():
            return False
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.probability < 1.0 and rng.random() >= self.probability:
            return False
        self.fired += 1
        return True


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Decision:
    latency: float
    rule: FaultRule | None


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._rng = random.Random(0)

    def set_rules(self, rules: list[FaultRule], seed: int | None = None) -> None:
        self.rules = rules
        self._rng = random.Random(0 if seed is None else seed)

    def clear(self) -> None:
        self.rules = []

    def decide(self, origin: str, method: str, path: str) -> Decision:
        latency = 0.0
        for rule in self.rules:
            if rule.action == "expire_urls" or not rule.matches(origin, method, path):
                continue
            if rule.action == "latency":
                if rule.try_fire(self._rng):
                    latency += rule.delay or 0.0
                continue
            if rule.try_fire(self._rng):
                return Decision(latency, rule)
        return Decision(latency, None)

    def storage_urls_expire_now(self) -> bool:
        """True when an ``expire_urls`` rule fires: the URL at hand counts as expired."""
        return any(rule.action == "expire_urls" and rule.try_fire(self._rng)
                   for rule in self.rules)

    def reset_after_bytes(self, request: web.Request, origin: str) -> int | None:
        """For streaming handlers: how many body bytes to move before aborting, if a rule says.

        The middleware decides once per request; a handler that streams its own body claims
        the decision here (so the middleware does not also act on it) and aborts the
        connection itself after that many bytes.
        """
        if "fault_decided" not in request:
            self._decide_for(request, origin)
        rule = request.get("fault_rule")
        if not isinstance(rule, FaultRule) or rule.action != "reset":
            return None
        if request.get("fault_reset_claimed"):
            return None
        request["fault_reset_claimed"] = True
        return rule.after_bytes

    def _decide_for(self, request: web.Request, origin: str) -> Decision:
        decision = self.decide(origin, request.method, request.path)
        request["fault_decided"] = True
        request["fault_rule"] = decision.rule
        if decision.rule is not None:
            kind = decision.rule.action
            request["fault_kind"] = (f"status:{decision.rule.status}" if kind == "status"
                                     else kind)
        elif decision.latency:
            request["fault_kind"] = "latency"
        return decision

    def middleware(self, ctx: EmulatorContext, origin: str) -> Middleware:
        del ctx

        @web.middleware
        async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX) or not self.rules:
                return await handler(request)
            decision = self._decide_for(request, origin)
            if decision.latency > 0:
                await asyncio.sleep(decision.latency)
            rule = decision.rule
            if rule is None:
                return await handler(request)
            if rule.action == "status":
                raise _status_error(rule, origin)
            if rule.action == "stall":
                await _stall(request, 3600.0 if rule.delay is None else rule.delay)
                return await handler(request)
            if rule.action == "lost":
                try:
                    response = await handler(request)
                finally:
                    _abort(request)
                return response
            # reset
            response = await handler(request)
            if request.get("fault_reset_claimed"):
                return response
            request["fault_reset_claimed"] = True
            return await _truncate(request, response, rule.after_bytes)

        return faults


def _status_error(rule: FaultRule, origin: str) -> web.HTTPException:
    headers: dict[str, str] = {}
    retry_after = rule.retry_after
    if retry_after is None and rule.status in (429, 503):
        retry_after = 1
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    message = _REASONS.get(rule.status, "Injected fault")
    if origin == "storage":
        code = _S3_CODES.get(rule.status, "InternalError")
        return _XmlError(rule.status,
                         f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                         f"<Message>{message}</Message></Error>", headers)
    return JsonError(rule.status, {"errors": message}, headers)


class _XmlError(web.HTTPException):
    """An S3-style error document, for faults on the storage origin."""

    def __init__(self, status: int, text: str, headers: dict[str, str]) -> None:
        self.status_code = status
        super().__init__(text=text, content_type="application/xml", headers=headers)


async def _stall(request: web.Request, seconds: float) -> None:
    """Hold the request until ``seconds`` pass or the peer hangs up, whichever comes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _truncate(request: web.Request, response: web.StreamResponse,
                    after_bytes: int) -> web.StreamResponse:
    """Send the head and ``after_bytes`` of the body, then abort the connection."""
    if response.prepared or not isinstance(response, web.Response):
        _abort(request)
        return response
    body = response.body
    data = body if isinstance(body, bytes) else b""
    stream = web.StreamResponse(status=response.status, reason=response.reason,
                                headers=response.headers)
    stream.content_length = len(data)
    await stream.prepare(request)
    if after_bytes > 0:
        await stream.write(data[:after_bytes])
    _abort(request)
    return stream
