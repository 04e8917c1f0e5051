"""The control API under ``/_emulator/`` (only with ``--control``): what tests and benchmarks
use to drive the emulator from outside, never part of Procore's API.

Reset to a seed, read who and what exists (``info``), mint tokens without the browser dance,
register apps and redirect URIs, move the emulated clock, change rate limits and token
lifetimes, read the request log, install fault plans, and make "remote" changes as another
user (create, new version, rename/move, delete, check out/in) that obey the same rules as the
API. Control calls are not logged, rate-limited or faulted (context.py skips the prefix).
Every body is JSON; every answer is JSON.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from procorefs.emulator.context import EmulatorContext, JsonError, errors, token_digest
from procorefs.emulator.faults import FaultRule, FaultRuleError
from procorefs.emulator.oauth import token_response
from procorefs.emulator.rest import Renderer, opt_int, parse_datetime
from procorefs.emulator.store import NewContent, Row, Scope, seed_blobs

PREFIX = "/_emulator"


async def apply_seed(ctx: EmulatorContext, name: str, knobs: dict[str, Any]) -> None:
    """Replace all state with a fresh seed; clock, faults, limits and uploads start over."""
    from procorefs.emulator.seed import build_seed

    try:
        seed = build_seed(name, **knobs)
    except (ValueError, TypeError) as exc:
        raise errors(400, str(exc)) from None
    refs = await asyncio.to_thread(seed_blobs, seed, ctx.blobs, ctx.seed_cache)
    ctx.clock_offset = 0.0
    ctx.restore_settings()
    ctx.faults.clear()
    ctx.rates.reset()
    ctx.uploads.reset()
    ctx.store.load_seed(seed, refs, ctx.now())
    ctx.seed_name = name


def info(ctx: EmulatorContext) -> dict[str, Any]:
    store = ctx.store
    settings = ctx.settings
    companies = []
    for company in store.companies():
        projects = [{"id": int(p["id"]), "name": p["name"], "display_name": p["display_name"],
                     "project_number": p["project_number"], "root_folder_id": p["root_id"],
                     "recycle_bin_id": p["bin_id"]}
                    for p in store.projects(int(company["id"]))]
        companies.append({"id": int(company["id"]), "name": company["name"],
                          "root_folder_id": company["root_id"],
                          "recycle_bin_id": company["bin_id"], "projects": projects})
    users = []
    for user in store.users():
        admin_of = [int(c["id"]) for c in store.companies()
                    if store.is_admin(int(user["id"]), int(c["id"]))]
        users.append({"id": int(user["id"]), "login": user["login"], "name": user["name"],
                      "admin_of": admin_of})
    apps = [{"client_id": a["client_id"], "client_secret": a["client_secret"],
             "redirect_uris": store.redirect_uris(a), "service_user_id": a["service_user_id"]}
            for a in store.apps()]
    return {
        "seed": store.meta("seed"), "demo_user_id": store.demo_user_id,
        "other_user_id": other_user_id(ctx), "api_url": ctx.api_url,
        "storage_url": ctx.storage_url, "users": users, "apps": apps, "companies": companies,
        "now": ctx.now(), "clock_offset": ctx.clock_offset,
        "settings": {"token_ttl": settings.token_ttl,
                     "rate_limit": f"{settings.rate_hourly}/{settings.rate_spike}",
                     "rate_spike_window": settings.rate_spike_window,
                     "storage_url_ttl": settings.storage_url_ttl,
                     "upload_start_window": settings.upload_start_window,
                     "upload_associate_window": settings.upload_associate_window,
                     "documents_default_per_page": settings.documents_default_per_page,
                     "documents_max_per_page": settings.documents_max_per_page},
    }


def other_user_id(ctx: EmulatorContext) -> int | None:
    """The default author of remote changes: the first person who is not the demo user."""
    service = {a["service_user_id"] for a in ctx.store.apps()}
    for user in ctx.store.users():
        uid = int(user["id"])
        if uid != ctx.store.demo_user_id and uid not in service:
            return uid
    return None


def _generated(size: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    remaining = size
    while remaining > 0:
        n = min(remaining, 1 << 20)
        yield rng.randbytes(n)
        remaining -= n


class Control:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx
        self._generated = 0

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise errors(400, "control bodies are JSON") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise errors(400, "control bodies are JSON objects")
        return data

    def _user(self, body: dict[str, Any], default: int | None) -> int:
        store = self.ctx.store
        if body.get("user_id") is not None:
            uid = opt_int(body["user_id"], "user_id")
            row = store.user(uid) if uid is not None else None
        elif body.get("login") or body.get("user"):
            row = store.user_by_login(str(body.get("login") or body.get("user")))
        else:
            row = store.user(default) if default is not None else None
        if row is None:
            raise errors(404, "no such user")
        return int(row["id"])

    async def get_info(self, request: web.Request) -> web.Response:
        return web.json_response(info(self.ctx))

    async def reset(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        name = str(body.pop("seed", "empty"))
        knobs = body.pop("knobs", None)
        knobs = dict(knobs) if isinstance(knobs, dict) else {}
        knobs.update(body)
        await apply_seed(self.ctx, name, knobs)
        return web.json_response(info(self.ctx))

    async def token(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        store = self.ctx.store
        uid = self._user(body, store.demo_user_id)
        ttl = opt_int(body.get("ttl"), "ttl")
        client_id = body.get("client_id")
        if client_id is None:
            apps = [a for a in store.apps() if a["service_user_id"] is None]
            client_id = apps[0]["client_id"] if apps else None
        service = any(a["service_user_id"] == uid for a in store.apps())
        ttl = self.ctx.settings.token_ttl if ttl is None else ttl
        access, refresh, created = store.issue_token(
            uid, None if client_id is None else str(client_id), ttl, self.ctx.now(),
            refresh=not service, service=service, digest=token_digest)
        return web.json_response(token_response(access, refresh, ttl, created))

    async def apps(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        client_id = body.get("client_id")
        if not client_id:
            raise errors(400, "client_id is required")
        uris = body.get("redirect_uris") or []
        if body.get("redirect_uri"):
            uris = [*uris, body["redirect_uri"]]
        self.ctx.store.register_app(str(client_id), str(body.get("client_secret") or ""),
                                    [str(u) for u in uris],
                                    opt_int(body.get("service_user_id"), "service_user_id"))
        app = self.ctx.store.app(str(client_id))
        assert app is not None
        if not app["client_secret"]:
            raise errors(400, "client_secret is required for a new app")
        return web.json_response({"client_id": app["client_id"],
                                  "client_secret": app["client_secret"],
                                  "redirect_uris": self.ctx.store.redirect_uris(app),
                                  "service_user_id": app["service_user_id"]})

    async def advance_clock(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            seconds = float(body.get("seconds", 0))
        except (TypeError, ValueError):
            raise errors(400, "seconds must be a number") from None
        self.ctx.advance_clock(seconds)
        return web.json_response({"now": self.ctx.now(), "offset": self.ctx.clock_offset})

    async def clock(self, request: web.Request) -> web.Response:
        return web.json_response({"now": self.ctx.now(), "offset": self.ctx.clock_offset})

    async def settings(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        changes: dict[str, Any] = {}
        if "rate_limit" in body:
            hourly, spike = parse_rate_limit(str(body["rate_limit"]))
            changes.update(rate_hourly=hourly, rate_spike=spike)
        if "rate_spike_window" in body:
            # Tests shorten the 10-second spike window to see pacing in seconds, not minutes.
            window = body["rate_spike_window"]
            if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
                raise errors(400, "rate_spike_window must be a positive number of seconds")
            changes["rate_spike_window"] = float(window)
        for key in ("token_ttl", "storage_url_ttl", "upload_start_window",
                    "upload_associate_window", "documents_default_per_page",
                    "documents_max_per_page", "code_ttl"):
            if key in body:
                value = opt_int(body[key], key)
                if value is None or value < 0:
                    raise errors(400, f"{key} must be a non-negative integer")
                changes[key] = value
        unknown = set(body) - set(changes) - {"rate_limit"}
        if unknown:
            raise errors(400, f"unknown settings: {sorted(unknown)}")
        self.ctx.update_settings(**changes)
        return web.json_response(info(self.ctx)["settings"])

    async def requests(self, request: web.Request) -> web.Response:
        since = opt_int(request.query.get("since"), "since") or 0
        origin = request.query.get("origin") or None
        entries = self.ctx.log.since(since, origin)
        return web.json_response({"last_seq": self.ctx.log.last_seq,
                                  "requests": [e.to_json() for e in entries]})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"rules": [r.to_json() for r in self.ctx.faults.rules]})

    async def put_faults(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            raise errors(400, "fault plans are JSON") from None
        seed = None
        if isinstance(data, dict):
            seed = opt_int(data.get("seed"), "seed")
            data = data.get("rules", [])
        if not isinstance(data, list):
            raise errors(400, "a fault plan is a list of rules (or {\"rules\": [...]})")
        try:
            rules = [FaultRule.from_json(item) for item in data]
        except FaultRuleError as exc:
            raise errors(400, str(exc)) from None
        self.ctx.faults.set_rules(rules, seed)
        return web.json_response({"rules": [r.to_json() for r in rules]})

    async def delete_faults(self, request: web.Request) -> web.Response:
        self.ctx.faults.clear()
        return web.json_response({"rules": []})

    # -- remote changes ------------------------------------------------------------------------

    def _scope(self, body: dict[str, Any]) -> Scope:
        store = self.ctx.store
        project_id = opt_int(body.get("project_id"), "project_id")
        if project_id is not None:
            project = store.project(project_id)
            if project is None:
                raise errors(404, "no such project")
            return Scope(int(project["company_id"]), project_id)
        company_id = opt_int(body.get("company_id"), "company_id")
        if company_id is None or store.company(company_id) is None:
            raise errors(400, "give project_id or company_id")
        return Scope(company_id)

    async def _content(self, body: dict[str, Any]) -> NewContent:
        blobs = self.ctx.blobs
        if body.get("content_b64") is not None:
            data = base64.b64decode(str(body["content_b64"]))
            ref = await asyncio.to_thread(blobs.put_chunks, [data])
        elif body.get("content") is not None:
            ref = await asyncio.to_thread(blobs.put_chunks, [str(body["content"]).encode()])
        elif body.get("size") is not None:
            size = opt_int(body["size"], "size") or 0
            self._generated += 1
            ref = await asyncio.to_thread(blobs.put_chunks,
                                          _generated(size, hash((size, self._generated))))
        else:
            raise errors(400, "give content, content_b64 or size")
        return NewContent(ref.key, ref.size, ref.sha256)

    def _item(self, request: web.Request) -> Row:
        item_id = opt_int(request.match_info["id"], "id")
        row = self.ctx.store.item(item_id) if item_id is not None else None
        if row is None:
            raise errors(404, "no such item")
        return row

    def _render(self, row: Row, user_id: int) -> dict[str, Any]:
        renderer = Renderer(self.ctx)
        if row["kind"] == "file":
            return renderer.file_by_row(row)
        return renderer.folder_listing(row, user_id)

    async def remote_folder(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        uid = self._user(body, other_user_id(self.ctx))
        row = self.ctx.store.create_folder(
            self._scope(body), uid, str(body.get("name") or ""),
            opt_int(body.get("parent_id"), "parent_id"), self.ctx.now(),
            private=bool(body.get("private")))
        return web.json_response(self._render(row, uid), status=201)

    async def remote_file(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        uid = self._user(body, other_user_id(self.ctx))
        scope = self._scope(body)
        content = await self._content(body)
        row = self.ctx.store.create_file(
            scope, uid, str(body.get("name") or ""), opt_int(body.get("parent_id"), "parent_id"),
            self.ctx.now(), lambda: content, description=body.get("description"),
            private=bool(body.get("private")), unique=bool(body.get("unique_name")))
        return web.json_response(self._render(row, uid), status=201)

    async def remote_version(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        uid = self._user(body, other_user_id(self.ctx))
        row = self._item(request)
        if row["kind"] != "file":
            raise errors(404, "no such file")
        content = await self._content(body)
        renderer = Renderer(self.ctx)
        self.ctx.store.add_version(row, uid, self.ctx.now(), lambda: content,
                                   body.get("notes"), None, renderer.conflict)
        updated = self.ctx.store.item(int(row["id"]))
        assert updated is not None
        return web.json_response(self._render(updated, uid), status=201)

    async def remote_update(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        uid = self._user(body, other_user_id(self.ctx))
        row = self._item(request)
        renderer = Renderer(self.ctx)
        updated = self.ctx.store.update_item(
            row, uid, self.ctx.now(),
            name=str(body["name"]) if body.get("name") is not None else None,
            parent_id=opt_int(body.get("parent_id"), "parent_id"), conflict=renderer.conflict)
        return web.json_response(self._render(updated, uid))

    async def remote_delete(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        uid = self._user(body, other_user_id(self.ctx))
        row = self._item(request)
        self.ctx.store.delete_item(row, uid, self.ctx.now(), Renderer(self.ctx).conflict)
        updated = self.ctx.store.item(int(row["id"]))
        assert updated is not None
        return web.json_response(self._render(updated, uid))

    async def remote_checkout(self, request: web.Request) -> web.Response:
        """Check a file out (``until`` ISO time, or ``seconds`` from now; default a day) or,
        with ``"until": null``, check it in."""
        body = await self._json(request)
        uid = self._user(body, other_user_id(self.ctx))
        row = self._item(request)
        if row["kind"] != "file":
            raise errors(404, "no such file")
        until: float | None
        if "until" in body and body["until"] is None:
            until = None
        elif body.get("until") is not None:
            try:
                until = parse_datetime(str(body["until"]))
            except ValueError:
                raise errors(400, "until must be an ISO-8601 time") from None
        else:
            until = self.ctx.now() + float(body.get("seconds", 86400))
        updated = self.ctx.store.update_item(row, uid, self.ctx.now(), checkout=until,
                                             conflict=Renderer(self.ctx).conflict)
        return web.json_response(self._render(updated, uid))


def parse_rate_limit(text: str) -> tuple[int, int]:
    """``"HOURLY/SPIKE"`` (e.g. ``3600/100``) to two positive integers."""
    hourly, sep, spike = text.partition("/")
    try:
        values = (int(hourly), int(spike)) if sep else (0, 0)
    except ValueError:
        values = (0, 0)
    if values[0] < 1 or values[1] < 1:
        raise ValueError(f"rate limit must look like HOURLY/SPIKE, e.g. 3600/100: {text!r}")
    return values


def add_routes(app: web.Application, ctx: EmulatorContext) -> None:
    control = Control(ctx)

    async def settings(request: web.Request) -> web.Response:
        try:
            return await control.settings(request)
        except ValueError as exc:
            if isinstance(exc, JsonError):
                raise
            raise errors(400, str(exc)) from None

    r = app.router
    r.add_get(f"{PREFIX}/info", control.get_info)
    r.add_post(f"{PREFIX}/reset", control.reset)
    r.add_post(f"{PREFIX}/token", control.token)
    r.add_post(f"{PREFIX}/apps", control.apps)
    r.add_get(f"{PREFIX}/clock", control.clock)
    r.add_post(f"{PREFIX}/clock/advance", control.advance_clock)
    r.add_post(f"{PREFIX}/settings", settings)
    r.add_get(f"{PREFIX}/requests", control.requests)
    r.add_get(f"{PREFIX}/faults", control.get_faults)
    r.add_put(f"{PREFIX}/faults", control.put_faults)
    r.add_delete(f"{PREFIX}/faults", control.delete_faults)
    r.add_post(f"{PREFIX}/remote/folders", control.remote_folder)
    r.add_post(f"{PREFIX}/remote/files", control.remote_file)
    r.add_post(f"{PREFIX}/remote/files/{{id}}/versions", control.remote_version)
    r.add_post(f"{PREFIX}/remote/files/{{id}}/checkout", control.remote_checkout)
    r.add_patch(f"{PREFIX}/remote/items/{{id}}", control.remote_update)
    r.add_delete(f"{PREFIX}/remote/items/{{id}}", control.remote_delete)
