"""The storage origin: the emulator's stand-in for S3 and storage.procore.com.

Owns ``build_storage_app``. Every route is reached through a presigned URL or a signed POST
policy made by ``uploads.py`` / ``downloads.py``; there is no other authentication:

- ``POST /pro-core.com``: the browser-style form upload of a non-segmented v1 upload (the
  policy's fields, then a ``file`` part); 204, as S3 answers without ``success_action_status``.
- ``PUT /pro-core.com/companies/{cid}/{uuid}?partNumber=N&uploadId=...``: one segment of a
  segmented v1 upload. Checks the signed headers (``x-amz-content-sha256``, ``content-md5``,
  ``content-length``), then the body's size, MD5 and SHA-256; 200 with ``ETag: "<md5 hex>"``.
- ``PUT /rest/v2.1/companies/{cid}[/projects/{pid}]/uploads/{id}?part_number=N&...``: one part
  of a v2.1 unified upload (procore-api.md §5.2), checked against its declared size and digests.
- ``GET /pro-core.com/blobs/{sha256}``: a presigned download, with ``Range`` (206 or 416),
  ``ETag``, ``If-None-Match``/``If-Match``/``If-Range`` and the signed ``response-content-*``
  overrides, streamed from disk.

As S3 does with presigned requests, any request carrying ``Authorization`` is refused (400).
A bad signature, an expired URL or policy, or a v1 upload whose transfer did not start within
``upload_start_window`` of its creation is a 403. Errors are S3's XML documents on the S3-style
routes and JSON on the v2.1 route. Bodies are streamed to a staging file and hashed in worker
threads, 1 MiB at a time, so neither memory nor the event loop carries a whole body.

Fault hooks (``faults.py``): ``reset_after_bytes`` makes a GET send, or a PUT/POST read, that
many body bytes and then abort the connection; ``storage_urls_expire_now`` makes the signature
check see the URL as expired.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from procorefs.emulator.blobs import CHUNK, BlobStore, StagedFile
from procorefs.emulator.downloads import BUCKET
from procorefs.emulator.signing import SignatureError

if TYPE_CHECKING:
    from procorefs.emulator.context import EmulatorContext
    from procorefs.emulator.uploads import UploadRecord

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ETAG_LIST = re.compile(r'(?:W/)?"([^"]*)"|\*')


class StorageError(web.HTTPException):
    """An S3-style XML error document (or, on the v2.1 route, a JSON one)."""

    def __init__(self, status: int, code: str, message: str, *, json_body: bool = False,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status
        self.code = code
        if json_body:
            super().__init__(text=json.dumps({"errors": message, "code": code}),
                             content_type="application/json", headers=dict(headers or {}))
        else:
            text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                    f"<RequestId>{uuidlib.uuid4().hex[:16].upper()}</RequestId></Error>")
            super().__init__(text=text, content_type="application/xml",
                             headers=dict(headers or {}))


class _PeerGone(Exception):
    """The body stopped arriving: the client hung up (or a reset fault cut it)."""


def build_storage_app(ctx: EmulatorContext) -> web.Application:
    """The storage origin's application, with the server's storage middlewares."""
    middlewares: list[Any] = [*ctx.middlewares("storage"), _refuse_authorization]
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    ctx.attach(app)
    storage = _Storage(ctx)
    app.router.add_post(f"/{BUCKET}", storage.form_upload)
    app.router.add_post(f"/{BUCKET}/", storage.form_upload)
    app.router.add_put(f"/{BUCKET}/companies/{{company_id}}/{{uuid}}", storage.put_v1_part)
    app.router.add_put("/rest/v2.1/companies/{company_id}/uploads/{uuid}", storage.put_v2_part)
    app.router.add_put("/rest/v2.1/companies/{company_id}/projects/{project_id}/uploads/{uuid}",
                       storage.put_v2_part)
    app.router.add_get(f"/{BUCKET}/blobs/{{key}}", storage.get_blob)
    return app


@web.middleware
async def _refuse_authorization(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if "Authorization" in request.headers:
        raise StorageError(
            400, "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            json_body=request.path.startswith("/rest/"))
    return await handler(request)


class _Storage:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    @property
    def blobs(self) -> BlobStore:
        return self.ctx.blobs

    # -- checks shared by the routes -------------------------------------------------------------

    def _verify(self, request: web.Request, *, json_body: bool = False) -> None:
        try:
            self.ctx.uploads.signer.verify(
                request.method, request.path, request.query, now=self.ctx.now(),
                force_expired=self.ctx.faults.storage_urls_expire_now())
        except SignatureError as exc:
            raise StorageError(403, exc.code, exc.message, json_body=json_body) from None

    def _started(self, record: UploadRecord, *, json_body: bool = False) -> None:
        """Refuse a v1 upload whose transfer did not start in time; else note it started."""
        registry = self.ctx.uploads
        if registry.gone(record, self.ctx.settings.upload_associate_window) or \
                registry.start_window_missed(record, self.ctx.settings.upload_start_window):
            raise StorageError(403, "AccessDenied", "Request has expired",
                               json_body=json_body)
        registry.mark_started(record.uuid)

    async def _receive(self, request: web.Request, stream: _Reader, staged: StagedFile,
                       limit: int | None) -> None:
        """Copy a body to ``staged`` (hashing it in a worker thread, 1 MiB at a time).

        With a reset fault, read ``limit`` bytes, then abort the connection.
        """
        cut = self.ctx.faults.reset_after_bytes(request, "storage")
        buffer = bytearray()
        received = 0
        while True:
            try:
                chunk = await stream()
            except (ConnectionError, HttpProcessingError, asyncio.IncompleteReadError) as exc:
                # Lost connection, or a body cut short of its Content-Length.
                raise _PeerGone() from exc
            if not chunk:
                break
            if cut is not None and received + len(chunk) >= cut:
                chunk = chunk[:cut - received]
                buffer += chunk
                received += len(chunk)
                await asyncio.to_thread(staged.write, bytes(buffer))
                _abort(request)
                raise _PeerGone()
            received += len(chunk)
            buffer += chunk
            if limit is not None and received > limit:
                raise StorageError(400, "EntityTooLarge",
                                   "Your proposed upload exceeds the maximum allowed size")
            if len(buffer) >= CHUNK:
                await asyncio.to_thread(staged.write, bytes(buffer))
                buffer.clear()
        if cut is not None and received >= cut:
            _abort(request)
            raise _PeerGone()
        if buffer:
            await asyncio.to_thread(staged.write, bytes(buffer))
        await asyncio.to_thread(staged.close)

    # -- non-segmented: the POST form ----------------------------------------------------------

    async def form_upload(self, request: web.Request) -> web.StreamResponse:
        self._no_query_signature(request)
        if not request.content_type.startswith("multipart/form-data"):
            raise StorageError(412, "PreconditionFailed",
                               "Bucket POST must be of the enclosure-type multipart/form-data")
        reader = await request.multipart()
        fields: dict[str, str] = {}
        while True:
            part = await reader.next()
            if part is None:
                raise StorageError(400, "InvalidArgument",
                                   "POST requires exactly one file upload per request.")
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                break
            if part.name:
                if len(fields) >= 64:
                    raise StorageError(400, "InvalidArgument", "Too many form fields")
                fields[part.name] = await part.text()
        try:
            policy = self.ctx.uploads.signer.verify_policy(
                fields, now=self.ctx.now(),
                force_expired=self.ctx.faults.storage_urls_expire_now())
        except SignatureError as exc:
            raise StorageError(403, exc.code, exc.message) from None
        key = {k.lower(): v for k, v in fields.items()}.get("key", "")
        match = re.fullmatch(r"companies/(\d+)/([0-9A-Z]{26})", key)
        record = self.ctx.uploads.get(match.group(2)) if match else None
        if record is None or record.segmented or record.storage_key != key:
            raise StorageError(403, "AccessDenied", "Access Denied")
        if record.used_at is not None:
            raise StorageError(403, "AccessDenied", "The upload has already been used")
        self._started(record)
        file_part = part
        staged = self.blobs.stage()
        try:
            await self._receive(request, lambda: file_part.read_chunk(CHUNK), staged,
                                policy.max_size or None)
            ref = await asyncio.to_thread(self.blobs.adopt, staged)
        except _PeerGone:
            await asyncio.to_thread(staged.discard)
            return _gone_response()
        except BaseException:
            await asyncio.to_thread(staged.discard)
            raise
        self.ctx.uploads.complete_with_blob(record.uuid, ref)
        status = fields.get("success_action_status", "204")
        headers = {"ETag": f'"{ref.md5}"',
                   "Location": f"{self.ctx.storage_url}/{BUCKET}/{record.storage_key}"}
        if status == "200":
            return web.Response(status=200, headers=headers)
        if status == "201":
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
                    f"<Location>{escape(headers['Location'])}</Location>"
                    f"<Bucket>{BUCKET}</Bucket><Key>{escape(record.storage_key)}</Key>"
                    f"<ETag>{headers['ETag']}</ETag></PostResponse>")
            return web.Response(status=201, text=body, content_type="application/xml",
                                headers=headers)
        return web.Response(status=204, headers=headers)

    @staticmethod
    def _no_query_signature(request: web.Request) -> None:
        if "X-Amz-Signature" in request.query:
            raise StorageError(400, "InvalidArgument",
                               "A POST form carries its signature in the policy fields")

    # -- segmented v1: presigned part PUT ---------------------------------------------------------

    async def put_v1_part(self, request: web.Request) -> web.StreamResponse:
        self._verify(request)
        registry = self.ctx.uploads
        uuid = request.match_info["uuid"]
        record = registry.get(uuid)
        if (record is None or not record.segmented or record.api == "v2.1"
                or request.query.get("uploadId") != uuid
                or str(record.company_id) != request.match_info["company_id"]):
            raise StorageError(404, "NoSuchUpload", "The specified upload does not exist. "
                               "The upload ID may be invalid, or the upload may have been "
                               "aborted or completed.")
        if record.status != "ready":
            raise StorageError(404, "NoSuchUpload", "The specified upload has been completed.")
        self._started(record)
        parts = registry.parts(uuid)
        number = request.query.get("partNumber", "")
        if not number.isdigit() or not 1 <= int(number) <= len(parts):
            raise StorageError(400, "InvalidArgument",
                               "Part number must be an integer between 1 and 10000")
        part = parts[int(number) - 1]
        sha_header = request.headers.get("x-amz-content-sha256", "")
        if sha_header.lower() != part.sha256:
            # Signed header: a different value is a different request than the one presigned.
            raise StorageError(403, "SignatureDoesNotMatch",
                               "x-amz-content-sha256 must be the segment's SHA-256 as "
                               "given in its headers")
        md5_header = request.headers.get("Content-MD5")
        md5_wanted = _b64_md5(md5_header) if md5_header is not None else None
        if md5_header is not None and md5_wanted is None:
            raise StorageError(400, "InvalidDigest",
                               "The Content-MD5 you specified was invalid.")
        if part.md5 is not None and md5_wanted != part.md5:
            raise StorageError(403, "SignatureDoesNotMatch",
                               "content-md5 must be the segment's MD5 as given in its headers")
        self._check_length(request, part.size)
        staged = self.blobs.stage()
        try:
            await self._receive(request, request.content.readany, staged, part.size)
        except _PeerGone:
            await asyncio.to_thread(staged.discard)
            return _gone_response()
        except BaseException:
            await asyncio.to_thread(staged.discard)
            raise
        got = staged.hasher
        problem: StorageError | None = None
        if got.size != part.size:
            problem = StorageError(400, "IncompleteBody", "You did not provide the number of "
                                   "bytes specified by the Content-Length HTTP header")
        elif md5_wanted is not None and got.md5 != md5_wanted:
            problem = StorageError(400, "BadDigest", "The Content-MD5 you specified did not "
                                   "match what we received.")
        elif got.sha256 != part.sha256:
            problem = StorageError(400, "XAmzContentSHA256Mismatch", "The provided "
                                   "'x-amz-content-sha256' header does not match what was "
                                   "computed.")
        if problem is not None:
            await asyncio.to_thread(staged.discard)
            raise problem
        registry.store_part(uuid, part.index, staged.path, got.md5)
        return web.Response(status=200, headers={"ETag": f'"{got.md5}"'})

    @staticmethod
    def _check_length(request: web.Request, size: int, *, json_body: bool = False) -> None:
        length = request.content_length
        if length is None:
            raise StorageError(411, "MissingContentLength",
                               "You must provide the Content-Length HTTP header.",
                               json_body=json_body)
        if length != size:
            raise StorageError(400, "InvalidRequest",
                               f"Content-Length {length} does not match the segment size "
                               f"{size}", json_body=json_body)

    # -- v2.1: presigned part PUT -------------------------------------------------------------

    async def put_v2_part(self, request: web.Request) -> web.StreamResponse:
        self._verify(request, json_body=True)
        registry = self.ctx.uploads
        uuid = request.match_info["uuid"]
        record = registry.get(uuid)
        raw_project = request.match_info.get("project_id")
        if (record is None or record.api != "v2.1"
                or str(record.company_id) != request.match_info["company_id"]
                or raw_project != (None if record.project_id is None
                                   else str(record.project_id))
                or request.query.get("user_id") != str(record.user_id)):
            raise StorageError(404, "NotFound", "Upload not found", json_body=True)
        if registry.gone(record, self.ctx.settings.upload_associate_window):
            raise StorageError(403, "AccessDenied", "The upload has expired", json_body=True)
        if record.status not in ("ready", "receiving"):
            raise StorageError(409, "Conflict", "The upload is already complete",
                               json_body=True)
        registry.mark_started(uuid)
        parts = registry.parts(uuid)
        number = request.query.get("part_number", "")
        if not number.isdigit() or not 1 <= int(number) <= len(parts):
            raise StorageError(400, "InvalidArgument", "Unknown part", json_body=True)
        part = parts[int(number) - 1]
        self._check_length(request, part.size, json_body=True)
        staged = self.blobs.stage()
        try:
            await self._receive(request, request.content.readany, staged, part.size)
        except _PeerGone:
            await asyncio.to_thread(staged.discard)
            return _gone_response()
        except StorageError as exc:
            await asyncio.to_thread(staged.discard)
            raise StorageError(exc.status, exc.code, "Part larger than its declared size",
                               json_body=True) from None
        except BaseException:
            await asyncio.to_thread(staged.discard)
            raise
        got = staged.hasher
        message = None
        if got.size != part.size:
            message = "The body is shorter than the part's declared size"
        elif got.sha256 != part.sha256:
            message = "The part's SHA-256 does not match its declared sha256"
        elif part.md5 is not None and got.md5 != part.md5:
            message = "The part's MD5 does not match its declared md5"
        if message is not None:
            await asyncio.to_thread(staged.discard)
            raise StorageError(400, "BadDigest", message, json_body=True)
        registry.store_part(uuid, part.index, staged.path, got.md5)
        return web.Response(status=200, headers={"ETag": f'"{got.md5}"'})

    # -- presigned GET ------------------------------------------------------------------------

    async def get_blob(self, request: web.Request) -> web.StreamResponse:
        self._verify(request)
        key = request.match_info["key"]
        ref = self.blobs.lookup(key)
        if ref is None:
            raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
        etag = f'"{ref.md5}"'
        headers = {"ETag": etag, "Accept-Ranges": "bytes",
                   "Content-Type": request.query.get("response-content-type",
                                                     "application/octet-stream")}
        disposition = request.query.get("response-content-disposition")
        if disposition:
            headers["Content-Disposition"] = disposition
        if_match = request.headers.get("If-Match")
        if if_match is not None and not _etag_matches(if_match, ref.md5):
            raise StorageError(412, "PreconditionFailed",
                               "At least one of the pre-conditions you specified did not hold")
        if_none = request.headers.get("If-None-Match")
        if if_none is not None and _etag_matches(if_none, ref.md5):
            return web.Response(status=304, headers={"ETag": etag})
        start, length, status = 0, ref.size, 200
        range_header = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if range_header and (if_range is None or if_range.strip() == etag):
            parsed = _parse_range(range_header, ref.size)
            if isinstance(parsed, str):
                raise StorageError(416, "InvalidRange",
                                   "The requested range is not satisfiable",
                                   headers={"Content-Range": f"bytes */{ref.size}"})
            if parsed is not None:
                start, end = parsed
                length, status = end - start + 1, 206
                headers["Content-Range"] = f"bytes {start}-{end}/{ref.size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = length
        await response.prepare(request)
        cut = self.ctx.faults.reset_after_bytes(request, "storage")
        to_send = length if cut is None else min(length, cut)
        try:
            await _send_file(response, self.blobs, key, start, to_send)
        except ConnectionError:
            return response
        if cut is not None:
            _abort(request)
            return response
        await response.write_eof()
        return response


_Reader = Callable[[], Awaitable[bytes]]


async def _send_file(response: web.StreamResponse, blobs: BlobStore, key: str, start: int,
                     length: int) -> None:
    handle = await asyncio.to_thread(blobs.path(key).open, "rb")
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await response.write(chunk)
    finally:
        await asyncio.to_thread(handle.close)


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range as (first, last), "unsatisfiable", or None (ignore: send all).

    Several ranges are answered with the whole object, as S3 does.
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or not (first_text.isdigit() or first_text == "") or \
            not (last_text.isdigit() or last_text == ""):
        return None
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = size - 1 if last_text == "" else int(last_text)
    if last_text != "" and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def _etag_matches(header: str, md5: str) -> bool:
    for match in _ETAG_LIST.finditer(header):
        if match.group(0) == "*" or match.group(1) == md5:
            return True
    return header.strip().strip('"') == md5


def _b64_md5(value: str) -> str | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _gone_response() -> web.Response:
    """What a handler returns once its peer is gone: nothing will be written anyway."""
    return web.Response(status=400)
