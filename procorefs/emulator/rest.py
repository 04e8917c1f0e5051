"""The REST routes of the API origin, minus uploads and downloads (those are uploads.py's):
``/me``, companies, projects, and the Documents tool at project and company level.

Shapes, key orders and status codes follow procore-api.md §3 and §4; where Procore does not
document a behaviour the choice is marked "inferred" here and listed in docs/emulator.md. The
rules themselves (names, moves, check-outs, the recycle bin, privacy) live in store.py so
the control API's "remote" changes obey them too; this module parses requests, resolves the
scope and the caller, and renders the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from typing import Any

from aiohttp import web

from procorefs.emulator.context import (
    EmulatorContext,
    JsonError,
    Principal,
    UploadedPart,
    errors,
    field_errors,
    read_params,
)
from procorefs.emulator.downloads import version_download_url
from procorefs.emulator.pagination import page_headers, parse_page
from procorefs.emulator.store import UNSET, NewContent, Row, Scope, Unset, file_type_of
from procorefs.emulator.uploads import UploadError

CHECKED_OUT_ERROR_TYPE = "file_checked_out"  # undocumented (procore-api.md §4.7): inferred
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


# -- small parsers ---------------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    """Procore's timestamps: ISO-8601 UTC, second precision (procore-api.md §0)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: str) -> float:
    """ISO-8601 date-time (``Z`` or an offset; naive means UTC) or date, to epoch seconds."""
    text = value.strip().strip('"')
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = datetime.combine(date.fromisoformat(text), time(), UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_range(value: str) -> tuple[float, float]:
    """``a...b`` with dates or date-times, both ends included; a date end means its whole day
    (inferred: the API only documents the two forms, procore-api.md §4.5, §7.2)."""
    text = value.strip().strip('"')
    start, sep, end = text.partition("...")
    if not sep:
        start = end = text
    lo = parse_datetime(start)
    hi = parse_datetime(end)
    if _is_date(end):
        hi += 86400 - 1
    return lo, hi


def _is_date(text: str) -> bool:
    return re.fullmatch(r"\s*\"?\d{4}-\d{2}-\d{2}\"?\s*", text) is not None


def as_bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise field_errors(400, {name: ["must be true or false"]})


def opt_int(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise field_errors(400, {name: ["must be an integer"]})
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise field_errors(400, {name: ["must be an integer"]}) from None


def opt_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def query_flag(request: web.Request, name: str) -> bool:
    return as_bool(request.query.get(name, "false"), name)


def _root(params: dict[str, Any], key: str) -> dict[str, Any]:
    body = params.get(key)
    if not isinstance(body, dict):
        raise errors(400, f"param is missing or the value is empty: {key}")
    return body


def _path_id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise errors(404, "Not Found")
    return int(raw)


def _file_parts(params: dict[str, Any]) -> Iterator[UploadedPart]:
    for value in params.values():
        if isinstance(value, UploadedPart):
            yield value
        elif isinstance(value, dict):
            yield from _file_parts(value)


def _discard_parts(params: dict[str, Any]) -> None:
    for part in _file_parts(params):
        with contextlib.suppress(OSError):
            os.unlink(part.path)


def _read_file(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


# -- rendering --------------------------------------------------------------------------------


class Renderer:
    """JSON for users, files, versions, folders and index entries, in documented key order."""

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx
        self._users: dict[int, Row | None] = {}

    def user(self, user_id: int | None) -> dict[str, Any] | None:
        if user_id is None:
            return None
        if user_id not in self._users:
            self._users[user_id] = self.ctx.store.user(user_id)
        row = self._users[user_id]
        if row is None:
            return {"id": user_id, "login": None, "name": None}
        return {"id": int(row["id"]), "login": row["login"], "name": row["name"]}

    def version(self, v: Row, scope: Scope) -> dict[str, Any]:
        url = version_download_url(self.ctx, int(v["id"]), scope.company_id, scope.project)
        return {
            "id": int(v["id"]), "number": int(v["number"]), "notes": v["notes"],
            "size": int(v["size"]), "url": url, "created_at": iso(v["created_at"]),
            "created_by": self.user(int(v["created_by"])),
            "prostore_file": {"id": int(v["prostore_id"]), "name": v["name"], "url": url,
                              "filename": v["name"]},
            "file_id": int(v["file_id"]),
        }

    def checkout(self, row: Row) -> tuple[str | None, dict[str, Any] | None]:
        holder = self.ctx.store.active_checkout(row, self.ctx.now())
        if holder is None:
            return None, None
        return iso(row["checked_out_until"]), self.user(holder)

    def file(self, row: Row, versions: list[Row]) -> dict[str, Any]:
        scope = Scope(int(row["company_id"]), int(row["project_id"]))
        until, by = self.checkout(row)
        return {
            "id": int(row["id"]), "name": row["name"], "parent_id": row["parent_id"],
            "size": int(row["size"]), "description": row["description"],
            "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"]),
            "checked_out_until": until, "checked_out_by": by,
            "name_with_path": row["name_with_path"], "private": bool(row["private"]),
            "is_tracked": bool(row["is_tracked"]), "tracked_folder": None,
            "file_type": file_type_of(str(row["name"])), "legacy_id": int(row["id"]),
            "is_deleted": bool(row["is_deleted"]),
            # Not in the File schema, but /documents reports it for the same item (inferred).
            "read_only": bool(row["read_only"]),
            "custom_fields": {},
            "file_versions": [self.version(v, scope) for v in versions],
        }

    def file_by_row(self, row: Row, latest_only: bool = False) -> dict[str, Any]:
        versions = self.ctx.store.versions_of([int(row["id"])], latest_only)
        return self.file(row, versions[int(row["id"])])

    def folder(self, row: Row, counts: tuple[int, int],
               folders: list[dict[str, Any]], files: list[dict[str, Any]]) -> dict[str, Any]:
        sub_folders, sub_files = counts
        return {
            "id": int(row["id"]), "custom_fields": {}, "name": row["name"],
            "name_with_path": row["name_with_path"], "parent_id": row["parent_id"],
            "updated_at": iso(row["updated_at"]), "is_deleted": bool(row["is_deleted"]),
            "is_recycle_bin": bool(row["is_recycle_bin"]),
            "is_tracked": bool(row["is_tracked"]), "tracked_folder": None,
            "has_children": bool(sub_folders or sub_files),
            "has_children_files": bool(sub_files), "has_children_folders": bool(sub_folders),
            "folders": folders, "files": files,
            "private": bool(row["private"]), "read_only": bool(row["read_only"]),
        }

    def folder_listing(self, row: Row, user_id: int, *, exclude_folders: bool = False,
                       exclude_files: bool = False, latest_only: bool = False
                       ) -> dict[str, Any]:
        """A folder with its children one level deep; grandchildren are always ``[]``."""
        store = self.ctx.store
        children = store.children(row, user_id)
        sub_folders = [c for c in children if c["kind"] == "folder"]
        sub_files = [c for c in children if c["kind"] == "file"]
        counts = store.child_counts([int(c["id"]) for c in sub_folders], user_id,
                                    int(row["company_id"]))
        folders = [] if exclude_folders else [
            self.folder(c, counts[int(c["id"])], [], []) for c in sub_folders]
        files: list[dict[str, Any]] = []
        if not exclude_files:
            versions = store.versions_of([int(c["id"]) for c in sub_files], latest_only)
            files = [self.file(c, versions[int(c["id"])]) for c in sub_files]
        return self.folder(row, (len(sub_folders), len(sub_files)), folders, files)

    def conflict(self, row: Row) -> JsonError:
        """The documented 409 of PATCH files (procore-api.md §4.7)."""
        holder = self.ctx.store.active_checkout(row, self.ctx.now())
        who = self.user(holder) if holder is not None else None
        name = who["name"] if who and who["name"] else "another user"
        return JsonError(409, {
            "errors": {"base": [f"This file is checked out by {name} and cannot be changed "
                                "until it is checked in"]},
            "error_type": CHECKED_OUT_ERROR_TYPE,
            "file": self.file_by_row(row)})


# -- handlers ---------------------------------------------------------------------------------


class Rest:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    # scope and caller

    def _company_scope(self, request: web.Request, principal: Principal,
                       company_id: int) -> Scope:
        company = self.ctx.store.company(company_id)
        # A company the caller does not belong to is hidden, not forbidden (§4.1, §6.3).
        if company is None or not self.ctx.store.is_member(principal.user_id, company_id):
            raise errors(404, "Not Found")
        self.ctx.require_company_header(request, principal, company_id)
        return Scope(company_id)

    def _project_scope(self, request: web.Request, principal: Principal,
                       project_id: int | None) -> Scope:
        if project_id is None:
            # Procore does not document this status (§4.10): 400, inferred.
            raise errors(400, "param is missing or the value is empty: project_id")
        project = self.ctx.store.project(project_id)
        if project is None or not self.ctx.store.is_member(principal.user_id,
                                                            int(project["company_id"])):
            raise errors(404, "Not Found")
        self.ctx.require_company_header(request, principal, int(project["company_id"]))
        return Scope(int(project["company_id"]), project_id)

    def scope(self, request: web.Request) -> tuple[Principal, Scope]:
        principal = self.ctx.authenticate(request)
        if "company_id" in request.match_info:
            return principal, self._company_scope(request, principal,
                                                  _path_id(request, "company_id"))
        if "project_id" in request.match_info:
            return principal, self._project_scope(request, principal,
                                                  _path_id(request, "project_id"))
        return principal, self._project_scope(
            request, principal, opt_int(request.query.get("project_id"), "project_id"))

    def renderer(self) -> Renderer:
        return Renderer(self.ctx)

    # people, companies, projects

    async def me(self, request: web.Request) -> web.Response:
        principal = self.ctx.authenticate(request)
        store = self.ctx.store
        company_id = opt_int(request.query.get("company_id"), "company_id")
        project_id = opt_int(request.query.get("project_id"), "project_id")
        if project_id is not None:
            self._project_scope(request, principal, project_id)
        elif company_id is not None:
            self._company_scope(request, principal, company_id)
        elif principal.service:
            self._service_header(request, principal)
        user = store.user(principal.user_id)
        assert user is not None
        return web.json_response({"id": int(user["id"]), "login": user["login"],
                                  "name": user["name"]})

    def _service_header(self, request: web.Request, principal: Principal) -> None:
        """DMSA tokens send Procore-Company-Id on /me and /companies too (§1.3, §2)."""
        raw = request.headers.get("Procore-Company-Id", "").strip()
        company_id = int(raw) if raw.isdigit() else None
        if company_id is None:
            self.ctx.require_company_header(request, principal, -1)
        else:
            self._company_scope(request, principal, company_id)

    async def companies(self, request: web.Request) -> web.Response:
        principal = self.ctx.authenticate(request)
        if principal.service:
            self._service_header(request, principal)
        store = self.ctx.store
        home = store.home_company_id(principal.user_id)
        rows = store.companies_for(principal.user_id)
        items = [{"id": int(r["id"]), "name": r["name"], "is_active": True, "logo_url": None,
                  "pcn_business_experience": False, "my_company": int(r["id"]) == home}
                 for r in rows]
        return self._paged(request, items)

    def _paged(self, request: web.Request, items: list[Any],
               default: int | None = None, maximum: int | None = None) -> web.Response:
        settings = self.ctx.settings
        page = parse_page(request, default or settings.list_default_per_page,
                          maximum or settings.list_max_per_page)
        chunk = items[page.offset:page.offset + page.per_page]
        return web.json_response(chunk, headers=page_headers(request, self.ctx.api_url, page,
                                                             len(items)))

    async def projects(self, request: web.Request) -> web.Response:
        principal = self.ctx.authenticate(request)
        company_id = opt_int(request.query.get("company_id"), "company_id")
        if company_id is None:
            raise errors(400, "param is missing or the value is empty: company_id")
        self._company_scope(request, principal, company_id)
        store = self.ctx.store
        company = store.company(company_id)
        assert company is not None
        rows = store.projects(company_id)
        status = request.query.get("filters[by_status]", "Active")
        if status == "Inactive":
            rows = []
        wanted_ids = [int(v) for v in request.query.getall("filters[id][]", []) if v.isdigit()]
        if wanted_ids:
            rows = [r for r in rows if int(r["id"]) in wanted_ids]
        name_filter = request.query.get("filters[name]")
        if name_filter:
            rows = [r for r in rows if name_filter.lower() in str(r["name"]).lower()]
        number = request.query.get("filters[project_number]")
        if number:
            rows = [r for r in rows if str(r["project_number"]) == number]
        sort = request.query.get("sort")
        if sort in ("name", "display_name"):
            rows.sort(key=lambda r: str(r[sort]).lower())
        v11 = request.path.startswith("/rest/v1.1/")
        view = request.query.get("view" if v11 else "serializer_view", "normal")
        if v11 and view == "ids":
            ids = [int(r["id"]) for r in rows]
            return self._paged(request, ids, default=200000, maximum=200000)
        items = [_project_json(r, company, compact=view == "compact") for r in rows]
        return self._paged(request, items)

    # folders

    async def root_folder(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        root, _ = self.ctx.store.scope_root(scope)
        return self._show_folder(request, principal, scope, root)

    async def show_folder(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        return self._show_folder(request, principal, scope, _path_id(request))

    def _show_folder(self, request: web.Request, principal: Principal, scope: Scope,
                     folder_id: int) -> web.Response:
        row = self.ctx.store.find(scope, folder_id, principal.user_id, "folder")
        body = self.renderer().folder_listing(
            row, principal.user_id, exclude_folders=query_flag(request, "exclude_folders"),
            exclude_files=query_flag(request, "exclude_files"),
            latest_only=query_flag(request, "show_latest_file_version_only"))
        return web.json_response(body)

    async def create_folder(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        body = _root(await read_params(request), "folder")
        name = opt_str(body.get("name"))
        row = self.ctx.store.create_folder(
            scope, principal.user_id, name or "", opt_int(body.get("parent_id"), "parent_id"),
            self.ctx.now(),
            private=as_bool(body.get("explicit_permissions"), "explicit_permissions"),
            is_tracked=as_bool(body.get("is_tracked"), "is_tracked"))
        return web.json_response(self.renderer().folder_listing(row, principal.user_id),
                                 status=201)

    async def update_folder(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        row = self.ctx.store.find(scope, _path_id(request), principal.user_id, "folder")
        body = _root(await read_params(request), "folder")
        renderer = self.renderer()
        updated = self.ctx.store.update_item(
            row, principal.user_id, self.ctx.now(),
            name=opt_str(body.get("name")) if "name" in body else None,
            parent_id=opt_int(body.get("parent_id"), "parent_id"),
            private=as_bool(body["explicit_permissions"], "explicit_permissions")
            if "explicit_permissions" in body else None,
            is_tracked=as_bool(body["is_tracked"], "is_tracked") if "is_tracked" in body
            else None,
            conflict=renderer.conflict)
        return web.json_response(renderer.folder_listing(updated, principal.user_id))

    async def delete_folder(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        row = self.ctx.store.find(scope, _path_id(request), principal.user_id, "folder")
        self.ctx.store.delete_item(row, principal.user_id, self.ctx.now(),
                                   self.renderer().conflict)
        return web.Response(status=200)

    # files

    async def show_file(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        row = self.ctx.store.find(scope, _path_id(request), principal.user_id, "file")
        latest = query_flag(request, "show_latest_version_only")
        return web.json_response(self.renderer().file_by_row(row, latest))

    async def _content(self, scope: Scope, principal: Principal, body: dict[str, Any]
                       ) -> Callable[[], NewContent] | None:
        """How to get a new version's bytes: an upload (consumed only when the change is
        certain to happen) or the deprecated ``data`` part (written to a blob now)."""
        uuid = opt_str(body.get("upload_uuid"))
        data = body.get("data")
        if uuid and data is not None:
            raise field_errors(422, {"base": ["Send either data or upload_uuid, not both"]})
        if uuid:
            def consume() -> NewContent:
                try:
                    ref = self.ctx.uploads.consume(uuid, principal.user_id, scope.company_id,
                                                   scope.project)
                except UploadError as exc:
                    raise JsonError(exc.status, exc.body) from None
                return NewContent(ref.key, ref.size, ref.sha256)
            return consume
        if isinstance(data, UploadedPart):
            ref = await asyncio.to_thread(self.ctx.blobs.put_chunks, _read_file(data.path))
            content = NewContent(ref.key, ref.size, ref.sha256)
            return lambda: content
        if data is not None:
            raise field_errors(422, {"data": ["must be a file part of a multipart body"]})
        return None

    async def create_file(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        params = await read_params(request, str(self.ctx.blobs.staging))
        try:
            body = _root(params, "file")
            content = await self._content(scope, principal, body)
            if content is None:
                raise field_errors(422, {"upload_uuid": ["can't be blank"]})
            name = opt_str(body.get("name"))
            data = body.get("data")
            if not name and isinstance(data, UploadedPart) and data.filename:
                name = data.filename
            row = self.ctx.store.create_file(
                scope, principal.user_id, name or "",
                opt_int(body.get("parent_id"), "parent_id"), self.ctx.now(), content,
                description=opt_str(body.get("description")),
                private=as_bool(body.get("explicit_permissions"), "explicit_permissions"),
                is_tracked=as_bool(body.get("is_tracked"), "is_tracked"),
                unique=as_bool(body.get("unique_name"), "unique_name"))
        finally:
            _discard_parts(params)
        return web.json_response(self.renderer().file_by_row(row), status=201)

    async def update_file(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        store = self.ctx.store
        row = store.find(scope, _path_id(request), principal.user_id, "file")
        params = await read_params(request, str(self.ctx.blobs.staging))
        renderer = self.renderer()
        try:
            body = _root(params, "file")
            checkout: float | Unset | None = UNSET
            if "checked_out_until" in body:
                raw = body["checked_out_until"]
                if raw is None or raw == "" or raw == "null":
                    checkout = None
                else:
                    try:
                        checkout = parse_datetime(str(raw))
                    except ValueError:
                        raise field_errors(422, {"checked_out_until": ["is invalid"]}) from None
            description: str | Unset | None = (opt_str(body["description"])
                                               if "description" in body else UNSET)
            content = await self._content(scope, principal, body)
            updated = store.update_item(
                row, principal.user_id, self.ctx.now(),
                name=opt_str(body.get("name")) if "name" in body else None,
                parent_id=opt_int(body.get("parent_id"), "parent_id"),
                description=description,
                private=as_bool(body["explicit_permissions"], "explicit_permissions")
                if "explicit_permissions" in body else None,
                is_tracked=as_bool(body["is_tracked"], "is_tracked") if "is_tracked" in body
                else None,
                checkout=checkout, new_version=content,
                version_notes=opt_str(body.get("notes")), conflict=renderer.conflict)
        finally:
            _discard_parts(params)
        return web.json_response(renderer.file_by_row(updated))

    async def delete_file(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        row = self.ctx.store.find(scope, _path_id(request), principal.user_id, "file")
        self.ctx.store.delete_item(row, principal.user_id, self.ctx.now(),
                                   self.renderer().conflict)
        return web.Response(status=200)

    # file versions

    async def create_version(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        file_id = opt_int(request.query.get("file_id"), "file_id")
        params = await read_params(request, str(self.ctx.blobs.staging))
        try:
            body = _root(params, "file_version")
            if file_id is None:
                file_id = opt_int(body.get("file_id"), "file_id")
            if file_id is None:
                raise errors(400, "param is missing or the value is empty: file_id")
            row = self.ctx.store.find(scope, file_id, principal.user_id, "file")
            content = await self._content(scope, principal, body)
            if content is None:
                raise field_errors(422, {"upload_uuid": ["can't be blank"]})
            renderer = self.renderer()
            version = self.ctx.store.add_version(
                row, principal.user_id, self.ctx.now(), content, opt_str(body.get("notes")),
                opt_str(body.get("name")), renderer.conflict)
        finally:
            _discard_parts(params)
        return web.json_response(renderer.version(version, scope), status=201)

    async def show_version(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        version = self.ctx.store.version(_path_id(request))
        if version is None:
            raise errors(404, "File version not found")
        self.ctx.store.find(scope, int(version["file_id"]), principal.user_id, "file")
        return web.json_response(self.renderer().version(version, scope))

    # the flat index

    async def documents(self, request: web.Request) -> web.Response:
        principal, scope = self.scope(request)
        store = self.ctx.store
        q = request.query
        where: list[str] = []
        args: list[object] = []
        include_root = False
        for name, column in (("filters[updated_at]", "updated_at"),
                             ("filters[created_at]", "created_at")):
            if q.get(name):
                try:
                    lo, hi = parse_range(q[name])
                except ValueError:
                    raise field_errors(400, {name: ["is not a valid date range"]}) from None
                where.append(f"i.{column} >= ? AND i.{column} < ?")
                args.extend([lo, hi + 1])
        folder_id = opt_int(q.get("filters[folder_id]"), "filters[folder_id]")
        if folder_id is not None:
            folder = store.find(scope, folder_id, principal.user_id, "folder")
            lo_path, hi_path = str(folder["idpath"]), str(folder["idpath"])[:-1] + "0"
            where.append("i.idpath >= ? AND i.idpath < ?")
            args.extend([lo_path, hi_path])
            include_root = bool(folder["is_root"])
        kind = q.get("filters[document_type]")
        if kind:
            if kind not in ("file", "folder"):
                raise field_errors(400, {"filters[document_type]": ["must be file or folder"]})
            where.append("i.kind = ?")
            args.append(kind)
        if "filters[is_in_recycle_bin]" in q:
            if as_bool(q["filters[is_in_recycle_bin]"], "filters[is_in_recycle_bin]"):
                where.append("(i.is_deleted = 1 OR i.is_recycle_bin = 1)")
            else:
                where.append("i.is_deleted = 0 AND i.is_recycle_bin = 0")
        if "filters[private]" in q:
            where.append("i.private = ?")
            args.append(int(as_bool(q["filters[private]"], "filters[private]")))
        types = [t.strip().lstrip(".").lower() for t in q.getall("filters[file_type][]", [])
                 if t.strip()]
        if types:
            where.append("i.kind = 'file' AND (" + " OR ".join(
                "lower(i.name) LIKE ? ESCAPE '\\'" for _ in types) + ")")
            args.extend(f"%.{_like(t)}" for t in types)
        search = q.get("filters[search]")
        if search:
            where.append("(i.name LIKE ? ESCAPE '\\' OR coalesce(i.description, '') LIKE ? "
                         "ESCAPE '\\')")
            args.extend([f"%{_like(search)}%"] * 2)
        creators = [int(v) for v in q.getall("filters[created_by_id][]", []) if v.isdigit()]
        if creators:
            where.append(f"i.created_by IN ({','.join('?' * len(creators))})")
            args.extend(creators)
        order = _order(q.get("sort"))
        settings = self.ctx.settings
        page = parse_page(request, settings.documents_default_per_page,
                          settings.documents_max_per_page)
        total, rows = store.documents(scope, principal.user_id, where, args, order,
                                      page.per_page, page.offset, include_root=include_root)
        extended = q.get("view") == "extended"
        items = self._entries(scope, principal, rows, extended)
        return web.json_response(items, headers=page_headers(request, self.ctx.api_url, page,
                                                             total))

    def _entries(self, scope: Scope, principal: Principal, rows: list[Row],
                 extended: bool) -> list[dict[str, Any]]:
        store = self.ctx.store
        renderer = self.renderer()
        company = store.company(scope.company_id)
        company_name = "" if company is None else str(company["name"])
        private = store.private_folders(scope) if extended else {}
        files = [int(r["id"]) for r in rows if r["kind"] == "file"]
        versions = store.versions_of(files, True) if extended else {}
        folders = [int(r["id"]) for r in rows if r["kind"] == "folder"]
        counts = store.child_counts(folders, principal.user_id, scope.company_id) \
            if extended else {}
        out: list[dict[str, Any]] = []
        for row in rows:
            creator = renderer.user(row["created_by"])
            entry: dict[str, Any] = {
                "id": int(row["id"]), "created_at": iso(row["created_at"]),
                "created_by": None if creator is None else {
                    "id": creator["id"], "company_name": company_name, "locale": "en",
                    "login": creator["login"], "name": creator["name"]},
                "custom_fields": {}, "document_type": row["kind"],
                "is_deleted": bool(row["is_deleted"]),
                "is_recycle_bin": bool(row["is_recycle_bin"]), "name": row["name"],
                "name_with_path": row["name_with_path"], "parent_id": row["parent_id"],
                "private": bool(row["private"]), "read_only": bool(row["read_only"]),
                "updated_at": iso(row["updated_at"]),
            }
            if extended:
                entry["is_tracked"] = bool(row["is_tracked"])
                entry["tracked_folder"] = None
                entry["private_parent"] = _private_parent(row, private)
                if row["kind"] == "file":
                    until, by = renderer.checkout(row)
                    current = versions.get(int(row["id"])) or []
                    entry["file"] = {
                        "checked_out_by": None if by is None else {
                            **by, "company_name": company_name, "locale": "en"},
                        "checked_out_until": until,
                        "current_version": renderer.version(current[0], scope)
                        if current else None,
                        "description": row["description"],
                        "file_type": file_type_of(str(row["name"])),
                    }
                else:
                    sub_folders, sub_files = counts.get(int(row["id"]), (0, 0))
                    entry["children"] = {"has_children": bool(sub_folders or sub_files),
                                         "has_children_files": bool(sub_files),
                                         "has_children_folders": bool(sub_folders)}
            out.append(entry)
        return out


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_SORTS = {
    "updated_at": ["i.updated_at"],
    "name": ["i.name COLLATE NOCASE", "i.name"],
    "document_type": ["i.kind"],
    "document_type_then_name": ["i.kind", "i.name COLLATE NOCASE", "i.name"],
    "document_type_then_created_at": ["i.kind", "i.created_at"],
    "document_type_then_updated_at": ["i.kind", "i.updated_at"],
}


def _order(sort: str | None) -> str:
    """SQL ORDER BY for ``sort``; ties (and no sort: inferred) go by id, ascending."""
    if not sort:
        return "i.id"
    descending = sort.startswith("-")
    columns = _SORTS.get(sort.lstrip("-"))
    if columns is None:
        raise field_errors(400, {"sort": [f"must be one of {', '.join(_SORTS)}"]})
    direction = " DESC" if descending else ""
    return ", ".join(f"{c}{direction}" for c in columns) + f", i.id{direction}"


def _private_parent(row: Row, private: dict[int, Row]) -> dict[str, Any] | None:
    ancestors = [int(x) for x in str(row["idpath"]).strip("/").split("/")][:-1]
    for ancestor in reversed(ancestors):
        found = private.get(ancestor)
        if found is not None:
            return {"id": int(found["id"]), "name": found["name"],
                    "name_with_path": found["name_with_path"]}
    return None


def _project_json(row: Row, company: Row, compact: bool) -> dict[str, Any]:
    if compact:
        return {"id": int(row["id"]), "name": row["name"], "display_name": row["display_name"]}
    return {
        "id": int(row["id"]), "name": row["name"], "display_name": row["display_name"],
        "project_number": row["project_number"], "address": None, "city": None,
        "state_code": None, "country_code": "US", "zip": None, "county": None,
        "time_zone": "US/Pacific", "latitude": None, "longitude": None, "stage": "Course of "
        "Construction", "phone": None, "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]), "active": True, "origin_id": None,
        "origin_data": None, "origin_code": None, "is_demo": False, "parent_job_id": None,
        "start_date": None, "completion_date": None, "projected_finish_date": None,
        "total_value": None, "estimated_value": None, "photo_id": None,
        "company": {"id": int(company["id"]), "name": company["name"]},
    }


def add_routes(app: web.Application, ctx: EmulatorContext) -> None:
    rest = Rest(ctx)
    r = app.router
    r.add_get("/rest/v1.0/me", rest.me)
    r.add_get("/rest/v1.0/companies", rest.companies)
    r.add_get("/rest/v1.0/projects", rest.projects)
    r.add_get("/rest/v1.1/projects", rest.projects)
    for base in ("/rest/v1.0", "/rest/v1.0/companies/{company_id}"):
        r.add_get(f"{base}/folders", rest.root_folder)
        r.add_post(f"{base}/folders", rest.create_folder)
        r.add_get(f"{base}/folders/{{id}}", rest.show_folder)
        r.add_patch(f"{base}/folders/{{id}}", rest.update_folder)
        r.add_delete(f"{base}/folders/{{id}}", rest.delete_folder)
        r.add_post(f"{base}/files", rest.create_file)
        r.add_get(f"{base}/files/{{id}}", rest.show_file)
        r.add_patch(f"{base}/files/{{id}}", rest.update_file)
        r.add_delete(f"{base}/files/{{id}}", rest.delete_file)
        r.add_post(f"{base}/file_versions", rest.create_version)
        r.add_get(f"{base}/file_versions/{{id}}", rest.show_version)
    r.add_get("/rest/v1.0/projects/{project_id}/documents", rest.documents)
    r.add_get("/rest/v1.0/companies/{company_id}/documents", rest.documents)
