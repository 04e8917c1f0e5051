"""Typed, frozen views of the Procore objects the drive uses, parsed defensively.

Parsing follows ``shared/procore-api.md``: unknown fields are ignored, ids are Python ints
(64-bit safe), timestamps become aware UTC datetimes, ``file_versions`` are sorted by
``number`` (the server's order is not guaranteed) and a missing or malformed required field
raises ``InvalidResponse`` rather than a ``KeyError`` deep inside the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from procorefs.api.errors import InvalidResponse

Json = Mapping[str, Any]


def _obj(value: object, what: str) -> Json:
    if not isinstance(value, Mapping):
        raise InvalidResponse(f"expected a JSON object for {what}, got {type(value).__name__}")
    return value


def _int(data: Json, key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or value is None:
        raise InvalidResponse(f"{what}.{key} is missing or not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidResponse(f"{what}.{key} is not an integer: {value!r}") from None


def _opt_int(data: Json, key: str) -> int | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(data: Json, key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidResponse(f"{what}.{key} is missing or not a string")
    return value


def _opt_str(data: Json, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _bool(data: Json, key: str) -> bool:
    return data.get(key) is True


def parse_time(value: object) -> datetime | None:
    """ISO-8601 (``2025-05-13T17:48:59Z``, offsets allowed) to an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class UserRef:
    id: int
    login: str | None
    name: str | None

    @classmethod
    def parse(cls, value: object) -> UserRef | None:
        if not isinstance(value, Mapping) or _opt_int(value, "id") is None:
            return None
        return cls(id=_int(value, "id", "user"), login=_opt_str(value, "login"),
                   name=_opt_str(value, "name"))


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str | None
    name: str | None

    @classmethod
    def parse(cls, value: object) -> User:
        data = _obj(value, "user")
        return cls(id=_int(data, "id", "user"), login=_opt_str(data, "login"),
                   name=_opt_str(data, "name"))


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    name: str
    is_active: bool = True

    @classmethod
    def parse(cls, value: object) -> Company:
        data = _obj(value, "company")
        active = data.get("is_active")
        return cls(id=_int(data, "id", "company"), name=_str(data, "name", "company"),
                   is_active=active is not False)


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    display_name: str
    company_id: int | None
    active: bool = True

    @classmethod
    def parse(cls, value: object, company_id: int | None = None) -> Project:
        data = _obj(value, "project")
        name = _str(data, "name", "project")
        company = data.get("company")
        cid = _opt_int(company, "id") if isinstance(company, Mapping) else None
        return cls(id=_int(data, "id", "project"), name=name,
                   display_name=_opt_str(data, "display_name") or name,
                   company_id=cid if cid is not None else company_id,
                   active=data.get("active") is not False)


@dataclass(frozen=True, slots=True)
class FileVersion:
    id: int
    number: int
    size: int
    url: str
    created_at: datetime | None
    created_by: UserRef | None = None
    notes: str | None = None

    @classmethod
    def parse(cls, value: object) -> FileVersion:
        data = _obj(value, "file_version")
        return cls(id=_int(data, "id", "file_version"), number=_int(data, "number", "file_version"),
                   size=_opt_int(data, "size") or 0, url=_str(data, "url", "file_version"),
                   created_at=parse_time(data.get("created_at")),
                   created_by=UserRef.parse(data.get("created_by")),
                   notes=_opt_str(data, "notes"))


def _versions(value: object) -> tuple[FileVersion, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(sorted((FileVersion.parse(v) for v in value), key=lambda v: v.number))


@dataclass(frozen=True, slots=True)
class File:
    id: int
    name: str
    parent_id: int | None
    size: int
    created_at: datetime | None
    updated_at: datetime | None
    name_with_path: str | None = None
    private: bool = False
    read_only: bool = False
    is_deleted: bool = False
    file_type: str | None = None
    checked_out_until: datetime | None = None
    checked_out_by: UserRef | None = None
    versions: tuple[FileVersion, ...] = ()

    @property
    def current_version(self) -> FileVersion | None:
        """The version with the highest ``number`` (what a reader of the file gets)."""
        return self.versions[-1] if self.versions else None

    @classmethod
    def parse(cls, value: object) -> File:
        data = _obj(value, "file")
        versions = _versions(data.get("file_versions"))
        size = _opt_int(data, "size")
        if size is None:
            size = versions[-1].size if versions else 0
        return cls(id=_int(data, "id", "file"), name=_str(data, "name", "file"),
                   parent_id=_opt_int(data, "parent_id"), size=size,
                   created_at=parse_time(data.get("created_at")),
                   updated_at=parse_time(data.get("updated_at")),
                   name_with_path=_opt_str(data, "name_with_path"),
                   private=_bool(data, "private"), read_only=_bool(data, "read_only"),
                   is_deleted=_bool(data, "is_deleted"), file_type=_opt_str(data, "file_type"),
                   checked_out_until=parse_time(data.get("checked_out_until")),
                   checked_out_by=UserRef.parse(data.get("checked_out_by")),
                   versions=versions)


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    name: str
    parent_id: int | None
    updated_at: datetime | None
    name_with_path: str | None = None
    private: bool = False
    read_only: bool = False
    is_deleted: bool = False
    is_recycle_bin: bool = False
    has_children: bool = False
    # One level only: the children of a child are always empty, as the API documents.
    folders: tuple[Folder, ...] = ()
    files: tuple[File, ...] = ()

    @classmethod
    def parse(cls, value: object) -> Folder:
        data = _obj(value, "folder")
        sub = data.get("folders")
        files = data.get("files")
        return cls(id=_int(data, "id", "folder"), name=_opt_str(data, "name") or "",
                   parent_id=_opt_int(data, "parent_id"),
                   updated_at=parse_time(data.get("updated_at")),
                   name_with_path=_opt_str(data, "name_with_path"),
                   private=_bool(data, "private"), read_only=_bool(data, "read_only"),
                   is_deleted=_bool(data, "is_deleted"),
                   is_recycle_bin=_bool(data, "is_recycle_bin"),
                   has_children=_bool(data, "has_children"),
                   folders=tuple(Folder.parse(f) for f in sub) if isinstance(sub, list) else (),
                   files=tuple(File.parse(f) for f in files) if isinstance(files, list) else ())


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """One row of the flat ``/documents`` index (``view=extended`` fills the file details)."""

    id: int
    document_type: Literal["file", "folder"]
    name: str
    parent_id: int | None
    name_with_path: str | None
    created_at: datetime | None
    updated_at: datetime | None
    is_deleted: bool = False
    is_recycle_bin: bool = False
    private: bool = False
    read_only: bool = False
    current_version: FileVersion | None = None
    checked_out_until: datetime | None = None
    checked_out_by: UserRef | None = None

    @property
    def size(self) -> int:
        return self.current_version.size if self.current_version else 0

    @classmethod
    def parse(cls, value: object) -> DocumentEntry:
        data = _obj(value, "document")
        kind = data.get("document_type")
        if kind not in ("file", "folder"):
            raise InvalidResponse(f"document.document_type is {kind!r}")
        details = data.get("file")
        current: FileVersion | None = None
        until: datetime | None = None
        by: UserRef | None = None
        if isinstance(details, Mapping):
            raw = details.get("current_version")
            current = FileVersion.parse(raw) if isinstance(raw, Mapping) else None
            until = parse_time(details.get("checked_out_until"))
            by = UserRef.parse(details.get("checked_out_by"))
        return cls(id=_int(data, "id", "document"), document_type=kind,
                   name=_opt_str(data, "name") or "", parent_id=_opt_int(data, "parent_id"),
                   name_with_path=_opt_str(data, "name_with_path"),
                   created_at=parse_time(data.get("created_at")),
                   updated_at=parse_time(data.get("updated_at")),
                   is_deleted=_bool(data, "is_deleted"),
                   is_recycle_bin=_bool(data, "is_recycle_bin"),
                   private=_bool(data, "private"), read_only=_bool(data, "read_only"),
                   current_version=current, checked_out_until=until, checked_out_by=by)


@dataclass(frozen=True, slots=True)
class UploadSegment:
    size: int
    sha256: str
    md5: str | None
    url: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    uuid: str
    status: str | None
    # Non-segmented uploads: a form POST of ``fields`` plus the ``file`` part to ``url``.
    url: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    segments: tuple[UploadSegment, ...] = ()

    @classmethod
    def parse(cls, value: object) -> Upload:
        data = _obj(value, "upload")
        segs: list[UploadSegment] = []
        raw_segments = data.get("segments")
        if isinstance(raw_segments, list):
            for raw in raw_segments:
                seg = _obj(raw, "upload.segment")
                headers = seg.get("headers")
                segs.append(UploadSegment(
                    size=_opt_int(seg, "size") or 0, sha256=_opt_str(seg, "sha256") or "",
                    md5=_opt_str(seg, "md5"), url=_opt_str(seg, "url"),
                    headers={str(k): str(v) for k, v in headers.items()}
                    if isinstance(headers, Mapping) else {},
                    etag=_opt_str(seg, "etag")))
        fields = data.get("fields")
        return cls(uuid=_str(data, "uuid", "upload"), status=_opt_str(data, "status"),
                   url=_opt_str(data, "url"),
                   fields={str(k): str(v) for k, v in fields.items()}
                   if isinstance(fields, Mapping) else {},
                   segments=tuple(segs))
