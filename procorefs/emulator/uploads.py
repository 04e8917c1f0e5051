"""Direct uploads: the registry of uploads and their parts, and the upload routes of the API.

Owns ``UploadRegistry`` (its own tables, ``uploads`` and ``upload_parts``, in the emulator's
SQLite file, through its own connection; part files under ``<blobs>/uploads/<uuid>/``), the
v1.0/v1.1 routes (procore-api.md §5.1, project and company scope: create, show, PATCH to
complete), the v2.1 unified upload routes (§5.2: create, PATCH ``part_etags``, GET status), and
``add_api_routes``, which also mounts the download redirect of ``downloads.py``.

The bytes themselves never pass through the API origin: they go to the storage origin
(``storage.py``) through the presigned URLs and POST policies made here, and storage reports
back through ``mark_started``, ``store_part`` and ``complete_with_blob``. Finishing a segmented
upload concatenates its part files into one content-addressed blob, in a worker thread.

Time is the emulator's clock (``ctx.now``), so the control API can age an upload past its
start window (403 at storage, 410 on PATCH) or past its association window (gone).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

from procorefs.emulator.blobs import BlobRef, BlobStore
from procorefs.emulator.context import JsonError
from procorefs.emulator.downloads import BUCKET, add_download_routes, content_disposition
from procorefs.emulator.signing import Signer

if TYPE_CHECKING:
    from procorefs.emulator.context import EmulatorContext, Principal

# §5.1: every segment but the last at least 5 MB (decimal: the docs' example uses 6,000,000 and
# says "5 MB"; whether MB means MiB is unspecified, §9.14), at most 5 GB (S3's 5 GiB part cap).
V1_MIN_PART = 5_000_000
V1_MAX_PART = 5 * 1024**3
# §5.2: every part but the last strictly more than 5 MiB, at most 100 MiB, at most 10,000 parts.
V2_MIN_PART = 5 * 1024**2 + 1
V2_MAX_PART = 100 * 1024**2
MAX_PARTS = 10_000
# A non-segmented S3 POST object is capped at 5 GiB.
MAX_SINGLE_OBJECT = 5 * 1024**3
DEFAULT_ASSOCIATE_WINDOW = 7 * 24 * 3600.0
# §5.2: uploads expire; for PDM they must be associated within 24 hours.
V2_UPLOAD_TTL = 24 * 3600

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS upload_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    uuid TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    company_id INTEGER NOT NULL,
    project_id INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    used_at REAL,
    status TEXT NOT NULL,
    segmented INTEGER NOT NULL,
    file_name TEXT,
    content_type TEXT,
    attachment INTEGER NOT NULL DEFAULT 0,
    declared_size INTEGER,
    declared_sha256 TEXT,
    declared_md5 TEXT,
    expires_at REAL,
    blob_key TEXT,
    blob_size INTEGER,
    blob_md5 TEXT
);
CREATE TABLE IF NOT EXISTS upload_parts (
    uuid TEXT NOT NULL,
    idx INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    md5 TEXT,
    etag TEXT,
    submitted TEXT,
    PRIMARY KEY (uuid, idx)
);
"""


class UploadError(Exception):
    """A refusal with one of the documented JSON error shapes (procore-api.md §6.3)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"upload error {status}")
        self.status = status
        self.body = body

    @classmethod
    def field(cls, status: int, name: str, message: str) -> UploadError:
        return cls(status, {"errors": {name: [message]}})

    @classmethod
    def plain(cls, status: int, message: str) -> UploadError:
        return cls(status, {"errors": message})

    def as_http(self) -> JsonError:
        return JsonError(self.status, self.body)


@dataclass(frozen=True)
class PartSpec:
    size: int
    sha256: str
    md5: str | None


@dataclass(frozen=True)
class PartRecord:
    index: int  # 0-based
    size: int
    sha256: str
    md5: str | None
    etag: str | None  # md5 hex of what storage received, unquoted; None until received
    submitted: str | None  # the ETag the client gave on completion (v2.1: may be partial)


@dataclass(frozen=True)
class UploadRecord:
    uuid: str
    api: str  # "v1.0" | "v1.1" | "v2.1"
    user_id: int
    company_id: int
    project_id: int | None
    created_at: float
    started_at: float | None
    completed_at: float | None
    used_at: float | None
    status: str
    segmented: bool
    file_name: str | None
    content_type: str | None
    attachment: bool
    declared_size: int | None
    declared_sha256: str | None
    declared_md5: str | None
    expires_at: float | None
    blob: BlobRef | None

    @property
    def storage_key(self) -> str:
        return f"companies/{self.company_id}/{self.uuid}"


def new_ulid(now: float) -> str:
    """A ULID (26 Crockford base32 characters: 48-bit milliseconds, 80 random bits)."""
    value = (int(now * 1000) & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


class UploadRegistry:
    """Uploads and their parts. Thread-safe: one connection behind a lock."""

    def __init__(self, db_path: Path, blobs: BlobStore, clock: Callable[[], float]) -> None:
        self.blobs = blobs
        self.clock = clock
        self.parts_root = blobs.root / "uploads"
        self.parts_root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None,
                                   timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=30000")
        # executescript commits on its own, so it runs outside _tx.
        with self._lock:
            self._db.executescript(_SCHEMA)
        with self._tx() as db:
            row = db.execute("SELECT key FROM upload_secret WHERE id = 1").fetchone()
            if row is None:
                key = secrets.token_bytes(32)
                db.execute("INSERT INTO upload_secret (id, key) VALUES (1, ?)", (key,))
            else:
                key = bytes(row["key"])
        # One secret per data directory, so presigned URLs survive an emulator restart.
        self.signer = Signer(key)
        # §5.1: an upload not associated within a week is deleted; the server keeps this in
        # step with its settings (``upload_associate_window``).
        self.associate_window = DEFAULT_ASSOCIATE_WINDOW
        self._finishing: dict[str, asyncio.Lock] = {}

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def reset(self) -> None:
        """Forget every upload and its part files (blobs stay: they are shared)."""
        with self._tx() as db:
            db.execute("DELETE FROM upload_parts")
            db.execute("DELETE FROM uploads")
        shutil.rmtree(self.parts_root, ignore_errors=True)
        self.parts_root.mkdir(parents=True, exist_ok=True)
        self.blobs.clear_staging()
        self._finishing.clear()

    # -- records ------------------------------------------------------------------------------

    def create(self, *, api: str, user_id: int, company_id: int, project_id: int | None,
               parts: Sequence[PartSpec] | None, file_name: str | None,
               content_type: str | None, attachment: bool = False,
               declared_size: int | None = None, declared_sha256: str | None = None,
               declared_md5: str | None = None, expires_at: float | None = None
               ) -> UploadRecord:
        now = self.clock()
        uuid = new_ulid(now)
        with self._tx() as db:
            db.execute(
                "INSERT INTO uploads (uuid, api, user_id, company_id, project_id, created_at, "
                "status, segmented, file_name, content_type, attachment, declared_size, "
                "declared_sha256, declared_md5, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?)",
                (uuid, api, user_id, company_id, project_id, now, parts is not None,
                 file_name, content_type, int(attachment), declared_size, declared_sha256,
                 declared_md5, expires_at))
            for index, part in enumerate(parts or ()):
                db.execute("INSERT INTO upload_parts (uuid, idx, size, sha256, md5) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (uuid, index, part.size, part.sha256.lower(),
                            part.md5.lower() if part.md5 else None))
        record = self.get(uuid)
        assert record is not None
        return record

    def get(self, uuid: str) -> UploadRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE uuid = ?", (uuid,)).fetchone()
        return None if row is None else _record(row)

    def parts(self, uuid: str) -> list[PartRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM upload_parts WHERE uuid = ? ORDER BY idx",
                                    (uuid,)).fetchall()
        return [PartRecord(index=r["idx"], size=r["size"], sha256=r["sha256"], md5=r["md5"],
                           etag=r["etag"], submitted=r["submitted"]) for r in rows]

    def part_path(self, uuid: str, index: int) -> Path:
        return self.parts_root / uuid / f"{index:05d}"

    def finishing_lock(self, uuid: str) -> asyncio.Lock:
        """Serialises completions of one upload (a retried PATCH racing the first one)."""
        return self._finishing.setdefault(uuid, asyncio.Lock())

    # -- reports from the storage origin ------------------------------------------------------

    def mark_started(self, uuid: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE uploads SET started_at = ? WHERE uuid = ? AND started_at IS NULL",
                       (self.clock(), uuid))

    def store_part(self, uuid: str, index: int, staged: Path, etag: str) -> None:
        """Keep a received, verified part body (moved from staging); a re-sent part wins."""
        target = self.part_path(uuid, index)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        with self._tx() as db:
            db.execute("UPDATE upload_parts SET etag = ? WHERE uuid = ? AND idx = ?",
                       (etag, uuid, index))

    def complete_with_blob(self, uuid: str, ref: BlobRef, status: str = "complete") -> None:
        with self._tx() as db:
            db.execute("UPDATE uploads SET status = ?, completed_at = ?, blob_key = ?, "
                       "blob_size = ?, blob_md5 = ? WHERE uuid = ?",
                       (status, self.clock(), ref.key, ref.size, ref.md5, uuid))
        shutil.rmtree(self.parts_root / uuid, ignore_errors=True)

    def set_status(self, uuid: str, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE uploads SET status = ? WHERE uuid = ?", (status, uuid))

    def submit_etags(self, uuid: str, etags: Sequence[str | None]) -> None:
        with self._tx() as db:
            for index, etag in enumerate(etags):
                if etag is not None:
                    db.execute("UPDATE upload_parts SET submitted = ? WHERE uuid = ? AND idx = ?",
                               (etag, uuid, index))

    def assemble(self, uuid: str) -> BlobRef:
        """Concatenate the part files into a blob. Blocking: run it in a worker thread."""
        paths = [self.part_path(uuid, p.index) for p in self.parts(uuid)]
        return self.blobs.put_files(paths)

    # -- life cycle -----------------------------------------------------------------------------

    def start_window_missed(self, record: UploadRecord, window: float) -> bool:
        """§5.1: the storage transfer must start within an hour of creation (v1 only)."""
        return (record.api != "v2.1" and record.started_at is None
                and self.clock() > record.created_at + window)

    def gone(self, record: UploadRecord, associate_window: float) -> bool:
        """Past its association window (v1: a week; v2.1: ``upload_expires_at``): deleted."""
        if record.api == "v2.1":
            return record.expires_at is not None and self.clock() >= record.expires_at
        return self.clock() > record.created_at + associate_window

    # -- use by file create / new version -------------------------------------------------------

    def check(self, uuid: str, user_id: int, company_id: int,
              project_id: int | None) -> BlobRef:
        """What ``consume`` would return, without marking the upload used."""
        record = self.get(uuid) if isinstance(uuid, str) else None
        return self._usable(record, uuid, user_id, company_id, project_id)

    def consume(self, uuid: str, user_id: int, company_id: int,
                project_id: int | None) -> BlobRef:
        """The blob of a complete upload of this user and scope, marked used (once only).

        Raises ``UploadError`` (422, ``{"errors": {"upload_uuid": [...]}}``) for an unknown,
        foreign, incomplete, expired or already used upload.
        """
        ref = self.check(uuid, user_id, company_id, project_id)
        with self._tx() as db:
            cursor = db.execute("UPDATE uploads SET used_at = ? WHERE uuid = ? AND "
                                "used_at IS NULL", (self.clock(), uuid))
            if cursor.rowcount != 1:
                raise UploadError.field(422, "upload_uuid", "has already been used")
        return ref

    def _usable(self, record: UploadRecord | None, uuid: object, user_id: int,
                company_id: int, project_id: int | None) -> BlobRef:
        if (record is None or record.user_id != user_id or record.company_id != company_id
                or record.project_id != project_id):
            # Someone else's upload, or another scope's, is not even acknowledged.
            raise UploadError.field(422, "upload_uuid", f"upload {uuid} not found")
        if record.used_at is not None:
            raise UploadError.field(422, "upload_uuid", "has already been used")
        if record.api == "v2.1" and record.status != "available":
            raise UploadError.field(422, "upload_uuid", "upload is not available yet")
        if record.blob is None or record.status not in ("complete", "available"):
            raise UploadError.field(422, "upload_uuid", "upload is not complete")
        if self.gone(record, self.associate_window):
            raise UploadError.field(422, "upload_uuid", "upload has expired")
        return record.blob


def _record(row: sqlite3.Row) -> UploadRecord:
    blob = None
    if row["blob_key"] is not None:
        blob = BlobRef(key=row["blob_key"], size=row["blob_size"], sha256=row["blob_key"],
                       md5=row["blob_md5"])
    return UploadRecord(
        uuid=row["uuid"], api=row["api"], user_id=row["user_id"],
        company_id=row["company_id"], project_id=row["project_id"],
        created_at=row["created_at"], started_at=row["started_at"],
        completed_at=row["completed_at"], used_at=row["used_at"], status=row["status"],
        segmented=bool(row["segmented"]), file_name=row["file_name"],
        content_type=row["content_type"], attachment=bool(row["attachment"]),
        declared_size=row["declared_size"], declared_sha256=row["declared_sha256"],
        declared_md5=row["declared_md5"], expires_at=row["expires_at"], blob=blob)


# ================================================================================================
# Request bodies: JSON, urlencoded or multipart, with Rails bracket keys (§4.10)
# ================================================================================================


def parse_bracket_params(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][]=1&a[b][]=2``, ``segments[][size]=...``, ``segments[0][size]=...`` as Rack
    would nest them; numbered hashes become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        tokens = _bracket_tokens(key)
        if tokens:
            _assign(root, tokens, value)
    return _listify(root)  # type: ignore[no-any-return]


def _bracket_tokens(key: str) -> list[str]:
    head, sep, rest = key.partition("[")
    tokens = [head]
    if sep:
        rest = "[" + rest
        tokens.extend(m.group(1) for m in re.finditer(r"\[([^\]]*)\]", rest))
    return tokens if head else []


def _assign(node: Any, tokens: list[str], value: str) -> None:
    key, more = tokens[0], tokens[1:]
    if not more:
        if isinstance(node, dict):
            node[key] = value
        return
    nxt = more[0]
    if not isinstance(node, dict):
        return
    if nxt == "":
        items = node.setdefault(key, [])
        if not isinstance(items, list):
            return
        if len(more) == 1:
            items.append(value)
            return
        sub = more[1]
        if not items or not isinstance(items[-1], dict) or sub in items[-1]:
            items.append({})
        _assign(items[-1], more[1:], value)
        return
    child = node.setdefault(key, {})
    _assign(child, more, value)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


async def read_params(request: web.Request) -> dict[str, Any]:
    """The request body as a dict, whatever the encoding; a malformed body is a 400."""
    if not request.body_exists:
        return {}
    ctype = request.content_type
    if ctype == "application/json" or ctype.endswith("+json"):
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise UploadError.plain(400, "Malformed JSON body") from None
        if not isinstance(body, dict):
            raise UploadError.plain(400, "The JSON body must be an object")
        return body
    if ctype == "application/x-www-form-urlencoded":
        text = (await request.read()).decode("utf-8", "replace")
        return parse_bracket_params(parse_qsl(text, keep_blank_values=True))
    if ctype.startswith("multipart/"):
        pairs: list[tuple[str, str]] = []
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name:
                pairs.append((part.name, (await part.read(decode=True)).decode("utf-8",
                                                                                  "replace")))
        return parse_bracket_params(pairs)
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise UploadError.plain(400, "Unsupported request body") from None
    return body if isinstance(body, dict) else {}


def _unwrap(params: Mapping[str, Any], root: str) -> Mapping[str, Any]:
    inner = params.get(root)
    return inner if isinstance(inner, Mapping) else params


def _as_int(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise UploadError.field(422, name, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise UploadError.field(422, name, "must be an integer")


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise UploadError.field(400, name, "must be a string")
    text = str(value)
    return text if text else None


def parse_parts(raw: object, *, v2: bool) -> list[PartSpec]:
    """Validate ``segments`` of a create body against the part-size rules (422)."""
    if not isinstance(raw, list) or not raw:
        raise UploadError.field(422, "segments", "must be a non-empty array")
    if len(raw) > MAX_PARTS:
        raise UploadError.field(422, "segments", f"must have at most {MAX_PARTS} parts")
    parts: list[PartSpec] = []
    minimum, maximum = (V2_MIN_PART, V2_MAX_PART) if v2 else (V1_MIN_PART, V1_MAX_PART)
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise UploadError.field(422, "segments", f"segment {index} must be an object")
        size = _as_int(item.get("size"), f"segments[{index}].size")
        sha256 = item.get("sha256")
        if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
            raise UploadError.field(422, f"segments[{index}].sha256",
                                    "is required: the hex SHA-256 of the segment")
        md5 = item.get("md5")
        if md5 in (None, ""):
            md5 = None
        elif not isinstance(md5, str) or not _HEX32.fullmatch(md5):
            raise UploadError.field(422, f"segments[{index}].md5", "must be a hex MD5")
        last = index == len(raw) - 1
        if size < 0 or size > maximum:
            raise UploadError.field(422, f"segments[{index}].size",
                                    f"must be at most {maximum} bytes")
        if not last and size < minimum:
            raise UploadError.field(
                422, f"segments[{index}].size",
                f"must be at least {minimum} bytes (only the last segment may be smaller)")
        parts.append(PartSpec(size=size, sha256=sha256.lower(),
                              md5=md5.lower() if isinstance(md5, str) else None))
    return parts


# ================================================================================================
# Shapes of the answers
# ================================================================================================


def _md5_b64(hex_md5: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_md5)).decode("ascii")


def part_put_path(record: UploadRecord) -> str:
    return f"/{BUCKET}/{record.storage_key}"


def v1_part_url(ctx: EmulatorContext, record: UploadRecord, index: int) -> str:
    # Signed as of creation time, so show answers the very same URLs; valid as long as the
    # upload may be associated (S3's cap is 7 days). The start window is enforced apart.
    return ctx.uploads.signer.presign_s3(
        "PUT", ctx.storage_url, part_put_path(record), now=record.created_at,
        expires_in=int(ctx.settings.upload_associate_window),
        params={"partNumber": str(index + 1), "uploadId": record.uuid})


def v1_form(ctx: EmulatorContext, record: UploadRecord) -> tuple[str, dict[str, str]]:
    conditions: dict[str, str] = {"bucket": BUCKET, "key": record.storage_key}
    if record.content_type:
        conditions["Content-Type"] = record.content_type
    if record.file_name:
        conditions["Content-Disposition"] = content_disposition(record.file_name,
                                                                record.attachment)
    signed = ctx.uploads.signer.sign_policy(
        now=record.created_at, expires_in=int(ctx.settings.upload_associate_window),
        conditions=conditions, max_size=MAX_SINGLE_OBJECT)
    fields = {k: v for k, v in conditions.items() if k != "bucket"}
    fields.update(signed)
    return f"{ctx.storage_url}/{BUCKET}", fields


def v1_json(ctx: EmulatorContext, record: UploadRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"uuid": record.uuid}
    if not record.segmented:
        url, fields = v1_form(ctx, record)
        body["url"] = url
        body["fields"] = fields
        body["status"] = record.status
        return body
    body["status"] = record.status
    segments = []
    for part in ctx.uploads.parts(record.uuid):
        headers = {"x-amz-content-sha256": part.sha256, "content-length": str(part.size)}
        if part.md5:
            headers["content-md5"] = _md5_b64(part.md5)
        seg: dict[str, Any] = {"size": part.size, "sha256": part.sha256, "md5": part.md5,
                               "url": v1_part_url(ctx, record, part.index), "headers": headers}
        if record.status == "complete" and part.etag:
            seg["etag"] = part.etag
        segments.append(seg)
    body["segments"] = segments
    return body


def v2_part_path(record: UploadRecord) -> str:
    scope = f"/rest/v2.1/companies/{record.company_id}"
    if record.project_id is not None:
        scope += f"/projects/{record.project_id}"
    return f"{scope}/uploads/{record.uuid}"


def v2_segments(ctx: EmulatorContext, record: UploadRecord,
                only_missing: bool) -> list[dict[str, Any]]:
    assert record.expires_at is not None
    now = ctx.now()
    url_expires = int(min(now + ctx.settings.storage_url_ttl, record.expires_at))
    out = []
    for part in ctx.uploads.parts(record.uuid):
        if only_missing and part.etag is not None:
            continue
        url = ctx.uploads.signer.presign_procore(
            "PUT", ctx.storage_url, v2_part_path(record), expires_at=url_expires,
            params={"part_number": str(part.index + 1), "user_id": str(record.user_id)})
        out.append({"part_number": part.index + 1, "url": url, "url_expires_at": url_expires,
                    "headers": {"Content-Length": str(part.size)}})
    return out


def sanitized_file_name(name: str) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip()
    return cleaned or "file"


def v2_status(ctx: EmulatorContext, record: UploadRecord) -> str:
    if record.status in ("ready", "receiving") and ctx.uploads.gone(
            record, ctx.settings.upload_associate_window):
        return "expired"
    return record.status


def v2_json(ctx: EmulatorContext, record: UploadRecord, *, created: bool) -> dict[str, Any]:
    status = v2_status(ctx, record)
    data: dict[str, Any] = {
        "upload_id": record.uuid, "file_name": record.file_name,
        "file_size": record.declared_size, "content_type": record.content_type,
        "upload_expires_at": int(record.expires_at or 0), "status": status,
    }
    if created:
        data["segments"] = v2_segments(ctx, record, only_missing=False)
    else:
        data["sanitized_file_name"] = sanitized_file_name(record.file_name or "")
        data["custom_metadata"] = {}
        data["segments"] = ([] if status not in ("ready", "receiving")
                            else v2_segments(ctx, record, only_missing=True))
    return {"data": data}


# ================================================================================================
# Route handlers (API origin)
# ================================================================================================


def _path_int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise UploadError.plain(404, "Not Found")
    return int(raw)


def _scope(ctx: EmulatorContext, request: web.Request, principal: Principal,
           company_id: int | None, project_id: int | None) -> tuple[int, int | None]:
    """Resolve and authorise the company/project an upload route names.

    A company or project the user cannot see is a 404 (Procore hides what one cannot read).
    """
    store = ctx.store
    # Control-API knobs may change the window between calls; consume() reads the copy.
    ctx.uploads.associate_window = float(ctx.settings.upload_associate_window)
    if project_id is not None:
        project = store.project(project_id)
        if project is None or (company_id is not None and project["company_id"] != company_id):
            raise UploadError.plain(404, "Not Found")
        company_id = int(project["company_id"])
    assert company_id is not None
    if store.company(company_id) is None or not store.is_member(principal.user_id, company_id):
        raise UploadError.plain(404, "Not Found")
    ctx.require_company_header(request, principal, company_id)
    return company_id, project_id


def _v1_scope(request: web.Request) -> tuple[int | None, int | None]:
    if "project_id" in request.match_info:
        return None, _path_int(request, "project_id")
    return _path_int(request, "company_id"), None


def _v1_api(request: web.Request) -> str:
    return "v1.1" if request.path.startswith("/rest/v1.1/") else "v1.0"


def _own_upload(ctx: EmulatorContext, request: web.Request, principal: Principal,
                company_id: int, project_id: int | None, *, v2: bool) -> UploadRecord:
    uuid = request.match_info["uuid"]
    record = ctx.uploads.get(uuid)
    if (record is None or record.user_id != principal.user_id
            or record.company_id != company_id or record.project_id != project_id
            or (record.api == "v2.1") != v2):
        raise UploadError.plain(404, "Not Found")
    return record


def _handler(func: Callable[[EmulatorContext, web.Request], Any]
             ) -> Callable[[EmulatorContext], Callable[[web.Request], Any]]:
    def bind(ctx: EmulatorContext) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                response: web.StreamResponse = await func(ctx, request)
            except UploadError as exc:
                raise exc.as_http() from None
            return response
        return handle
    return bind


@_handler
async def v1_create(ctx: EmulatorContext, request: web.Request) -> web.Response:
    principal = ctx.authenticate(request)
    company_id, project_id = _scope(ctx, request, principal, *_v1_scope(request))
    params = _unwrap(await read_params(request), "upload")
    api = _v1_api(request)
    file_name = _opt_str(params, "response_filename")
    if api == "v1.1" and not file_name:
        raise UploadError.field(400, "response_filename", "can't be blank")
    content_type = _opt_str(params, "response_content_type")
    attachment = _as_bool(params.get("attachment_content_disposition", False))
    size = params.get("size")
    declared = None if size in (None, "") else _as_int(size, "size")
    parts = None
    if params.get("segments") not in (None, ""):
        parts = parse_parts(params.get("segments"), v2=False)
        if declared is not None and declared != sum(p.size for p in parts):
            raise UploadError.field(422, "size", "does not match the sum of the segments")
    record = ctx.uploads.create(
        api=api, user_id=principal.user_id, company_id=company_id, project_id=project_id,
        parts=parts, file_name=file_name, content_type=content_type, attachment=attachment,
        declared_size=declared)
    return web.json_response(v1_json(ctx, record), status=201)


@_handler
async def v1_show(ctx: EmulatorContext, request: web.Request) -> web.Response:
    principal = ctx.authenticate(request)
    company_id, project_id = _scope(ctx, request, principal, *_v1_scope(request))
    record = _own_upload(ctx, request, principal, company_id, project_id, v2=False)
    if ctx.uploads.gone(record, ctx.settings.upload_associate_window):
        raise UploadError.plain(404, "Not Found")
    return web.json_response(v1_json(ctx, record))


def _strip_etag(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"').lower() or None


@_handler
async def v1_complete(ctx: EmulatorContext, request: web.Request) -> web.Response:
    principal = ctx.authenticate(request)
    company_id, project_id = _scope(ctx, request, principal, *_v1_scope(request))
    record = _own_upload(ctx, request, principal, company_id, project_id, v2=False)
    params = _unwrap(await read_params(request), "upload")
    registry = ctx.uploads
    if registry.gone(record, ctx.settings.upload_associate_window) or \
            registry.start_window_missed(record, ctx.settings.upload_start_window):
        raise UploadError.plain(410, "This upload has expired; create a new upload")
    if not record.segmented:
        raise UploadError.field(422, "segments", "only segmented uploads are completed by "
                                "PATCH; this one is complete once storage has the file")
    raw = params.get("segments")
    if not isinstance(raw, list):
        raise UploadError.field(422, "segments", "must list the ETag of every segment")
    async with registry.finishing_lock(record.uuid):
        record = registry.get(record.uuid) or record
        parts = registry.parts(record.uuid)
        if len(raw) != len(parts):
            raise UploadError.field(422, "segments",
                                    f"expected {len(parts)} segments, got {len(raw)}")
        given: list[str] = []
        for part, item in zip(parts, raw, strict=True):
            etag = _strip_etag(item.get("etag") if isinstance(item, Mapping) else None)
            if etag is None:
                raise UploadError.field(422, "segments",
                                        f"segment {part.index + 1} has no etag")
            if isinstance(item, Mapping):
                _check_echo(item, part)
            if part.etag is None:
                raise UploadError.field(422, "segments",
                                        f"segment {part.index + 1} was not uploaded")
            if etag != part.etag:
                raise UploadError.field(422, "segments",
                                        f"segment {part.index + 1}: etag does not match")
            given.append(etag)
        if record.status != "complete":
            registry.submit_etags(record.uuid, given)
            ref = await asyncio.to_thread(registry.assemble, record.uuid)
            registry.complete_with_blob(record.uuid, ref)
        record = registry.get(record.uuid) or record
    return web.json_response(v1_json(ctx, record))


def _check_echo(item: Mapping[str, Any], part: PartRecord) -> None:
    """§9.13: the spec has clients echo ``size`` and ``sha256``; if sent they must agree."""
    if item.get("size") not in (None, "") and \
            _as_int(item.get("size"), "segments.size") != part.size:
        raise UploadError.field(422, "segments", f"segment {part.index + 1}: size differs")
    sha = item.get("sha256")
    if isinstance(sha, str) and sha and sha.lower() != part.sha256:
        raise UploadError.field(422, "segments", f"segment {part.index + 1}: sha256 differs")


def _v2_scope(request: web.Request) -> tuple[int, int | None]:
    company_id = _path_int(request, "company_id")
    project_id = _path_int(request, "project_id") if "project_id" in request.match_info \
        else None
    return company_id, project_id


@_handler
async def v2_create(ctx: EmulatorContext, request: web.Request) -> web.Response:
    principal = ctx.authenticate(request)
    company_id, project_id = _scope(ctx, request, principal, *_v2_scope(request))
    params = _unwrap(await read_params(request), "upload")
    file_name = _opt_str(params, "file_name")
    if not file_name:
        raise UploadError.field(422, "file_name", "can't be blank")
    parts = parse_parts(params.get("segments"), v2=True)
    total = sum(p.size for p in parts)
    declared = params.get("file_size")
    file_size = total if declared in (None, "") else _as_int(declared, "file_size")
    if file_size != total:
        raise UploadError.field(422, "file_size", "does not match the sum of the segments")
    sha256 = params.get("sha256")
    if sha256 not in (None, "") and (not isinstance(sha256, str)
                                     or not _HEX64.fullmatch(sha256)):
        raise UploadError.field(422, "sha256", "must be a hex SHA-256")
    md5 = params.get("md5")
    if md5 not in (None, "") and (not isinstance(md5, str) or not _HEX32.fullmatch(md5)):
        raise UploadError.field(422, "md5", "must be a hex MD5")
    record = ctx.uploads.create(
        api="v2.1", user_id=principal.user_id, company_id=company_id, project_id=project_id,
        parts=parts, file_name=file_name,
        content_type=_opt_str(params, "content_type") or "application/octet-stream",
        declared_size=file_size,
        declared_sha256=sha256.lower() if isinstance(sha256, str) and sha256 else None,
        declared_md5=md5.lower() if isinstance(md5, str) and md5 else None,
        expires_at=float(int(ctx.now() + V2_UPLOAD_TTL)))
    return web.json_response(v2_json(ctx, record, created=True), status=201)


@_handler
async def v2_show(ctx: EmulatorContext, request: web.Request) -> web.Response:
    principal = ctx.authenticate(request)
    company_id, project_id = _scope(ctx, request, principal, *_v2_scope(request))
    record = _own_upload(ctx, request, principal, company_id, project_id, v2=True)
    return web.json_response(v2_json(ctx, record, created=False))


@_handler
async def v2_complete(ctx: EmulatorContext, request: web.Request) -> web.Response:
    principal = ctx.authenticate(request)
    company_id, project_id = _scope(ctx, request, principal, *_v2_scope(request))
    record = _own_upload(ctx, request, principal, company_id, project_id, v2=True)
    registry = ctx.uploads
    if v2_status(ctx, record) == "expired":
        raise UploadError.plain(410, "This upload has expired; create a new upload")
    params = _unwrap(await read_params(request), "upload")
    raw = params.get("part_etags")
    async with registry.finishing_lock(record.uuid):
        record = registry.get(record.uuid) or record
        parts = registry.parts(record.uuid)
        if not isinstance(raw, list) or len(raw) != len(parts):
            raise UploadError.field(422, "part_etags",
                                    f"must list {len(parts)} entries, in part order "
                                    "(null for a part not uploaded yet)")
        if record.status in ("ready", "receiving"):
            etags: list[str | None] = []
            for part, value in zip(parts, raw, strict=True):
                etag = _strip_etag(value)
                if value is not None and etag is None:
                    raise UploadError.field(422, "part_etags",
                                            f"entry {part.index + 1} must be a string or null")
                if etag is not None and etag != part.etag:
                    raise UploadError.field(
                        422, "part_etags",
                        f"part {part.index + 1}: "
                        + ("was not uploaded" if part.etag is None else "etag does not match"))
                etags.append(etag if etag is not None else part.submitted)
            registry.submit_etags(record.uuid, etags)
            if all(e is not None for e in etags):
                await _finish_v2(ctx, record)
            else:
                registry.set_status(record.uuid, "receiving")
        record = registry.get(record.uuid) or record
    # §5.2: PATCH answers "complete" once every ETag is in; GET then reports "available".
    status = "complete" if record.status == "available" else record.status
    return web.json_response({"data": {"upload_id": record.uuid, "status": status}})


async def _finish_v2(ctx: EmulatorContext, record: UploadRecord) -> None:
    registry = ctx.uploads
    registry.set_status(record.uuid, "complete")
    ref = await asyncio.to_thread(registry.assemble, record.uuid)
    ok = ((record.declared_sha256 is None or record.declared_sha256 == ref.sha256)
          and (record.declared_md5 is None or record.declared_md5 == ref.md5)
          and (record.declared_size is None or record.declared_size == ref.size))
    # A whole-file digest that disagrees is only found while "processing": inferred "failed"
    # (named in the history of the unified upload tutorial, §9.15).
    registry.complete_with_blob(record.uuid, ref, status="available" if ok else "failed")


def add_api_routes(app: web.Application, ctx: EmulatorContext) -> None:
    """Mount the upload routes (v1.0, v1.1, v2.1) and the /fas download redirect."""
    for version in ("v1.0", "v1.1"):
        for scope in ("projects/{project_id}", "companies/{company_id}"):
            base = f"/rest/{version}/{scope}/uploads"
            app.router.add_post(base, v1_create(ctx))
            app.router.add_get(base + "/{uuid}", v1_show(ctx))
            app.router.add_patch(base + "/{uuid}", v1_complete(ctx))
    for scope in ("companies/{company_id}/projects/{project_id}", "companies/{company_id}"):
        base = f"/rest/v2.1/{scope}/uploads"
        app.router.add_post(base, v2_create(ctx))
        app.router.add_get(base + "/{uuid}", v2_show(ctx))
        app.router.add_patch(base + "/{uuid}", v2_complete(ctx))
    add_download_routes(app, ctx)
