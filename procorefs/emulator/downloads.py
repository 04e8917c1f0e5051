"""File downloads on the API origin: ``file_versions[].url`` and its redirect to storage.

procore-api.md §4.9: a version's ``url`` points at Procore itself (``/fas/api/v5/files/...``),
needs the Bearer token, and answers a redirect to a presigned, expiring URL on the storage
origin, which is what serves the bytes and honours ``Range``. This module owns both halves of
that: ``version_download_url`` (what the store puts in ``file_versions[].url``) and the
``GET /fas/...`` route. The route does not serve bytes and ignores ``Range``: whether the real
``fas`` hop forwards it is unknown (§9.12), so a client must range-read the storage URL.

The link is stable (no time in it) and opaque: the version id is encoded in a ULID-looking
token and the query carries a MAC, so a guessed or edited link is a 404, not someone else's
file.
"""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from aiohttp import web

from procorefs.emulator.context import errors

if TYPE_CHECKING:
    from procorefs.emulator.context import EmulatorContext

# The storage origin's one "bucket", as in https://s3.amazonaws.com/pro-core.com (§5.1).
BUCKET = "pro-core.com"
FAS_PREFIX = "/fas/api/v5/files"
REGION = "us-east-1"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TOKEN_LEN = 26


def encode_version(version_id: int) -> str:
    if version_id < 0:
        raise ValueError("version ids are positive")
    digits = []
    value = version_id
    while value:
        value, rem = divmod(value, 32)
        digits.append(_CROCKFORD[rem])
    return "".join(reversed(digits)).rjust(_TOKEN_LEN, "0")


def decode_version(token: str) -> int | None:
    if len(token) != _TOKEN_LEN:
        return None
    value = 0
    for char in token.upper():
        index = _CROCKFORD.find(char)
        if index < 0:
            return None
        value = value * 32 + index
    return value


def content_disposition(name: str, attachment: bool) -> str:
    """A Content-Disposition naming ``name``; RFC 6266 ``filename*`` for non-ASCII names."""
    kind = "attachment" if attachment else "inline"
    safe = name.replace("\\", "_").replace('"', "_")
    ascii_name = safe.encode("ascii", "replace").decode("ascii")
    if ascii_name == safe:
        return f'{kind}; filename="{safe}"'
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _mac_parts(version_id: int, company_id: int, project_id: int | None) -> tuple[str, ...]:
    return ("fas", str(version_id), str(company_id), "" if project_id is None
            else str(project_id))


def version_download_url(ctx: EmulatorContext, version_id: int, company_id: int,
                         project_id: int | None) -> str:
    """The ``url`` of a FileVersion: the Procore-hosted link that redirects to storage."""
    query = {"companyId": str(company_id)}
    if project_id is not None:
        query["projectId"] = str(project_id)
    query["sig"] = ctx.uploads.signer.token(*_mac_parts(version_id, company_id, project_id))
    return (f"{ctx.api_url}{FAS_PREFIX}/{REGION}/pro-core.com/companies/{company_id}/"
            f"{encode_version(version_id)}?{urlencode(query)}")


def blob_get_url(ctx: EmulatorContext, key: str, file_name: str | None,
                 content_type: str | None = None) -> str:
    """A presigned, expiring storage GET for a blob (lifetime ``storage_url_ttl``)."""
    params: dict[str, str] = {}
    if file_name:
        params["response-content-disposition"] = content_disposition(file_name,
                                                                     attachment=True)
        guessed = content_type or mimetypes.guess_type(file_name)[0]
        if guessed:
            params["response-content-type"] = guessed
    elif content_type:
        params["response-content-type"] = content_type
    return ctx.uploads.signer.presign_s3(
        "GET", ctx.storage_url, f"/{BUCKET}/blobs/{key}", now=ctx.now(),
        expires_in=int(ctx.settings.storage_url_ttl), params=params)


def add_download_routes(app: web.Application, ctx: EmulatorContext) -> None:
    async def fas(request: web.Request) -> web.Response:
        principal = ctx.authenticate(request)
        not_found = errors(404, "Not Found")
        version_id = decode_version(request.match_info["token"])
        raw_company = request.match_info["company_id"]
        if version_id is None or not raw_company.isdigit():
            raise not_found
        company_id = int(raw_company)
        raw_project = request.query.get("projectId")
        project_id = int(raw_project) if raw_project and raw_project.isdigit() else None
        if request.query.get("companyId") != str(company_id) or \
                (raw_project is not None and project_id is None):
            raise not_found
        sig = request.query.get("sig", "")
        if not ctx.uploads.signer.check_token(sig, *_mac_parts(version_id, company_id,
                                                               project_id)):
            raise not_found
        found = ctx.store.version_blob(version_id)
        if found is None:
            raise not_found
        key, name, owner_company, owner_project = found
        if owner_company != company_id or owner_project != project_id:
            raise not_found
        version = ctx.store.version(version_id)
        item = None if version is None else ctx.store.item(int(version["file_id"]))
        if item is None or not ctx.store.is_member(principal.user_id, company_id) or \
                not ctx.store.can_see(item, principal.user_id):
            raise not_found
        location = blob_get_url(ctx, key, name)
        # §9.12: 302 vs 307 is undocumented; 302 is what the docs' reference code handles
        # first and what S3-fronting redirectors commonly send.
        return web.Response(status=302, headers={"Location": location,
                                                 "Cache-Control": "no-store"})

    app.router.add_get(
        FAS_PREFIX + "/{region}/{bucket}/companies/{company_id}/{token}", fas)
