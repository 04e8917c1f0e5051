"""``ProcoreClient``: the one object the rest of procorefs uses to talk to Procore.

It owns three httpx clients - the API origin (with ``ProcoreAuth``), the login origin (token
endpoint) and storage (never any credentials) - and composes the pieces of this package:
``http.ApiSession`` (limits, retries, errors), ``uploads.Uploader``, ``downloads.Downloader``
and lazy pagination. It is thread-safe: the mount calls it from many worker threads.

Documents calls exist at project level (``project_id`` in the query) and company level
(``company_id`` in the path); ``Scope`` picks one (shared/procore-api.md 4.1). Every call that
concerns a company sends ``Procore-Company-Id``; ``/me`` and ``/companies`` send it only for
service accounts, which need it there too (procore-api.md 2 and 9.5).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from procorefs.api.auth import (
    ClientCredentials,
    Credentials,
    OAuthClient,
    credentials_from_settings,
    new_http_client,
)
from procorefs.api.downloads import ByteSink, Downloader
from procorefs.api.errors import InvalidResponse, NotFound
from procorefs.api.http import ApiSession, json_body
from procorefs.api.models import (
    Company,
    DocumentEntry,
    File,
    FileVersion,
    Folder,
    Project,
    User,
)
from procorefs.api.pagination import PageInfo
from procorefs.api.ratelimit import Priority, RateLimitStatus
from procorefs.api.redact import install_log_redaction
from procorefs.api.retry import Backoff
from procorefs.api.uploads import Uploader, UploadState
from procorefs.clock import Clock, SystemClock
from procorefs.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# How far apart our clock and the server's may be when deciding whether an item found after
# a lost answer is the one we just created.
_SKEW = timedelta(minutes=10)
_MAX_PAGES = 100_000


@dataclass(frozen=True)
class Scope:
    company_id: int
    project_id: int | None = None  # None: company-level Documents


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ProcoreClient:
    def __init__(self, settings: Settings, credentials: Credentials, *,
                 clock: Clock | None = None, api_http: httpx.Client | None = None,
                 storage_http: httpx.Client | None = None,
                 login_http: httpx.Client | None = None, backoff: Backoff | None = None) -> None:
        install_log_redaction()
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._count_lock = threading.Lock()
        self._request_count = 0
        pool = httpx.Limits(max_connections=32 + 2 * max(settings.upload_parallel,
                                                         settings.download_parallel),
                            max_keepalive_connections=16)
        self._api_http = api_http or new_http_client(settings, limits=pool)
        self._storage_http = storage_http or new_http_client(
            settings, limits=pool, headers={"Accept": "*/*"})
        self._login_http = login_http
        for client in (self._api_http, self._storage_http):
            client.event_hooks["request"] = [*client.event_hooks["request"], self._count]
        self.credentials = credentials
        self.backoff = backoff or Backoff(max_retries=settings.max_retries)
        self._session = ApiSession(settings, self._api_http, credentials, self.clock,
                                   self.backoff)
        self._uploader = Uploader(self._session, self._storage_http, self.clock, self.backoff)
        self._downloader = Downloader(self._session, self._storage_http, self.clock,
                                      self.backoff)
        self._upload_sizes: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None,
                      transport: httpx.BaseTransport | None = None,
                      credentials: Credentials | None = None) -> ProcoreClient:
        """The client for ``settings``: credentials from the env, keyring or service account.

        ``transport`` replaces the network for all three origins (tests use
        ``httpx.MockTransport``)."""
        settings.prepare_dirs()
        clock = clock or SystemClock()
        extra: dict[str, Any] = {"transport": transport} if transport is not None else {}
        login_http = new_http_client(settings, **extra)
        if credentials is None:
            oauth = OAuthClient(settings.login_url, login_http, clock)
            credentials = credentials_from_settings(settings, oauth, clock)
        api_http = new_http_client(settings, **extra) if transport is not None else None
        storage_http = new_http_client(settings, headers={"Accept": "*/*"}, **extra) \
            if transport is not None else None
        return cls(settings, credentials, clock=clock, api_http=api_http,
                   storage_http=storage_http, login_http=login_http)

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        for client in (self._api_http, self._storage_http, self._login_http):
            if client is not None:
                client.close()

    def __enter__(self) -> ProcoreClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _count(self, request: httpx.Request) -> None:
        with self._count_lock:
            self._request_count += 1

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far, API and storage (401 retries included)."""
        with self._count_lock:
            return self._request_count

    def rate_limit(self) -> RateLimitStatus:
        limiter = self._session.last_limiter or self._session.limiter(self.settings.company_id)
        return limiter.status()

    # --- who and where ----------------------------------------------------------------------

    def _account_company(self) -> int | None:
        # Service accounts must name the company even on /me and /companies (procore-api 2).
        if isinstance(self.credentials, ClientCredentials):
            return self.settings.company_id
        return None

    def me(self) -> User:
        path = "/rest/v1.0/me"
        response = self._session.request("GET", path, company_id=self._account_company())
        return User.parse(json_body(response, "GET", path))

    def companies(self) -> list[Company]:
        return list(self._paginate("/rest/v1.0/companies", self._account_company(), {},
                                   None, Priority.INTERACTIVE, Company.parse))

    def projects(self, company_id: int) -> list[Project]:
        return list(self._paginate("/rest/v1.0/projects", company_id,
                                   {"company_id": company_id}, None, Priority.INTERACTIVE,
                                   lambda raw: Project.parse(raw, company_id)))

    # --- folders ----------------------------------------------------------------------------

    @staticmethod
    def _where(scope: Scope, kind: str, item_id: int | None = None
               ) -> tuple[str, dict[str, Any]]:
        suffix = f"/{item_id}" if item_id is not None else ""
        if scope.project_id is not None:
            return f"/rest/v1.0/{kind}{suffix}", {"project_id": scope.project_id}
        return f"/rest/v1.0/companies/{scope.company_id}/{kind}{suffix}", {}

    def _get_folder(self, scope: Scope, folder_id: int | None, priority: Priority) -> Folder:
        path, params = self._where(scope, "folders", folder_id)
        if scope.project_id is not None:
            params["show_latest_file_version_only"] = "true"
        response = self._session.request("GET", path, company_id=scope.company_id,
                                         params=params, priority=priority)
        folder = Folder.parse(json_body(response, "GET", path))
        for file in folder.files:
            self._remember(scope, file.versions)
        return folder

    def root_folder(self, scope: Scope, *, priority: Priority = Priority.INTERACTIVE) -> Folder:
        return self._get_folder(scope, None, priority)

    def folder(self, scope: Scope, folder_id: int, *,
               priority: Priority = Priority.INTERACTIVE) -> Folder:
        return self._get_folder(scope, folder_id, priority)

    def _parent(self, scope: Scope, parent_id: int | None) -> Folder:
        return self.root_folder(scope) if parent_id is None else self.folder(scope, parent_id)

    def create_folder(self, scope: Scope, name: str, parent_id: int | None) -> Folder:
        path, params = self._where(scope, "folders")
        body: dict[str, Any] = {"name": name}
        if parent_id is not None:
            body["parent_id"] = parent_id

        def find() -> Folder | None:
            try:
                parent = self._parent(scope, parent_id)
            except NotFound:
                return None
            match = next((f for f in parent.folders if f.name == name and not f.is_deleted),
                         None)
            # The listing shows children one level deep only; the folder itself is complete
            # for a new, empty folder, but fetch it to return the same shape as the POST.
            return self.folder(scope, match.id) if match is not None else None

        return self._session.create(path, company_id=scope.company_id, params=params,
                                    json={"folder": body}, parse=Folder.parse, find=find)

    def update_folder(self, scope: Scope, folder_id: int, *, name: str | None = None,
                      parent_id: int | None = None) -> Folder:
        path, params = self._where(scope, "folders", folder_id)
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if parent_id is not None:
            body["parent_id"] = parent_id
        # Setting a name or parent is idempotent: repeating it after a lost answer is safe.
        response = self._session.request("PATCH", path, company_id=scope.company_id,
                                         params=params, json={"folder": body}, idempotent=True)
        return Folder.parse(json_body(response, "PATCH", path))

    def delete_folder(self, scope: Scope, folder_id: int) -> None:
        path, params = self._where(scope, "folders", folder_id)
        self._session.request("DELETE", path, company_id=scope.company_id, params=params,
                              done_if_repeated=frozenset({404}))

    # --- files ------------------------------------------------------------------------------

    def file(self, scope: Scope, file_id: int, *, latest_only: bool = False,
             priority: Priority = Priority.INTERACTIVE) -> File:
        path, params = self._where(scope, "files", file_id)
        if latest_only:
            params["show_latest_version_only"] = "true"
        response = self._session.request("GET", path, company_id=scope.company_id,
                                         params=params, priority=priority)
        file = File.parse(json_body(response, "GET", path))
        self._remember(scope, file.versions)
        return file

    def _ours(self, version: FileVersion | None, started: datetime,
              upload_uuid: str) -> bool:
        """Is ``version`` (found after a lost answer) the one our request created?"""
        if version is None:
            return False
        if version.created_at is not None and version.created_at < started - _SKEW:
            return False
        size = self._upload_sizes.get(upload_uuid)
        return size is None or version.size == size

    def create_file(self, scope: Scope, name: str, parent_id: int | None,
                    upload_uuid: str) -> File:
        path, params = self._where(scope, "files")
        body: dict[str, Any] = {"name": name, "upload_uuid": upload_uuid}
        if parent_id is not None:
            body["parent_id"] = parent_id
        started = datetime.fromtimestamp(self.clock.time(), UTC)

        def find() -> File | None:
            try:
                parent = self._parent(scope, parent_id)
            except NotFound:
                return None
            match = next((f for f in parent.files if f.name == name and not f.is_deleted),
                         None)
            if match is None:
                return None
            full = self.file(scope, match.id)
            return full if self._ours(full.current_version, started, upload_uuid) else None

        def parse(raw: Any) -> File:
            file = File.parse(raw)
            self._remember(scope, file.versions)
            return file

        return self._session.create(path, company_id=scope.company_id, params=params,
                                    json={"file": body}, parse=parse, find=find)

    def update_file(self, scope: Scope, file_id: int, *, name: str | None = None,
                    parent_id: int | None = None) -> File:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if parent_id is not None:
            body["parent_id"] = parent_id
        return self._patch_file(scope, file_id, body)

    def checkout(self, scope: Scope, file_id: int, until: datetime | None) -> File:
        """Check the file out until ``until``; None checks it in (clears the checkout)."""
        return self._patch_file(scope, file_id,
                                {"checked_out_until": _iso(until) if until else None})

    def _patch_file(self, scope: Scope, file_id: int, body: Mapping[str, Any]) -> File:
        path, params = self._where(scope, "files", file_id)
        response = self._session.request("PATCH", path, company_id=scope.company_id,
                                         params=params, json={"file": dict(body)},
                                         idempotent=True)
        file = File.parse(json_body(response, "PATCH", path))
        self._remember(scope, file.versions)
        return file

    def delete_file(self, scope: Scope, file_id: int) -> None:
        path, params = self._where(scope, "files", file_id)
        self._session.request("DELETE", path, company_id=scope.company_id, params=params,
                              done_if_repeated=frozenset({404}))

    def create_version(self, scope: Scope, file_id: int, upload_uuid: str, *,
                       notes: str | None = None) -> FileVersion:
        path, params = self._where(scope, "file_versions")
        params["file_id"] = file_id
        body: dict[str, Any] = {"upload_uuid": upload_uuid}
        if notes is not None:
            body["notes"] = notes
        started = datetime.fromtimestamp(self.clock.time(), UTC)

        def find() -> FileVersion | None:
            try:
                current = self.file(scope, file_id).current_version
            except NotFound:
                return None
            return current if self._ours(current, started, upload_uuid) else None

        def parse(raw: Any) -> FileVersion:
            version = FileVersion.parse(raw)
            self._remember(scope, (version,))
            return version

        return self._session.create(path, company_id=scope.company_id, params=params,
                                    json={"file_version": body}, parse=parse, find=find)

    # --- the flat index ---------------------------------------------------------------------

    def documents(self, scope: Scope, *,
                  updated_between: tuple[datetime, datetime] | None = None,
                  folder_id: int | None = None, document_type: str | None = None,
                  in_recycle_bin: bool | None = False, per_page: int | None = None,
                  priority: Priority = Priority.BACKGROUND) -> Iterator[DocumentEntry]:
        """Folders and files of ``scope``, lazily, page by page (``view=extended``)."""
        if scope.project_id is not None:
            path = f"/rest/v1.0/projects/{scope.project_id}/documents"
        else:
            path = f"/rest/v1.0/companies/{scope.company_id}/documents"
        params: dict[str, Any] = {"view": "extended"}
        if updated_between is not None:
            start, end = updated_between
            params["filters[updated_at]"] = f"{_iso(start)}...{_iso(end)}"
        if folder_id is not None:
            params["filters[folder_id]"] = folder_id
        if document_type is not None:
            if document_type not in ("file", "folder"):
                raise ValueError("document_type is 'file' or 'folder'")
            params["filters[document_type]"] = document_type
        if in_recycle_bin is not None:
            params["filters[is_in_recycle_bin]"] = "true" if in_recycle_bin else "false"

        def parse(raw: Any) -> DocumentEntry:
            entry = DocumentEntry.parse(raw)
            if entry.current_version is not None:
                self._remember(scope, (entry.current_version,))
            return entry

        return self._paginate(path, scope.company_id, params, per_page, priority, parse)

    def _paginate(self, path: str, company_id: int | None, params: Mapping[str, Any],
                  per_page: int | None, priority: Priority,
                  parse: Callable[[Any], T]) -> Iterator[T]:
        query: dict[str, Any] | None = dict(params)
        assert query is not None
        if per_page is not None:
            query["per_page"] = per_page
        page = 1
        url = path
        seen = 0
        for _ in range(_MAX_PAGES):
            response = self._session.request("GET", url, company_id=company_id, params=query,
                                             priority=priority)
            body = json_body(response, "GET", path)
            if isinstance(body, Mapping) and isinstance(body.get("data"), list):
                body = body["data"]
            if not isinstance(body, list):
                raise InvalidResponse("expected a JSON array", status=response.status_code,
                                      method="GET", path=path)
            for raw in body:
                yield parse(raw)
            seen += len(body)
            info = PageInfo.from_headers(response.headers)
            if not info.more_after(len(body), seen, per_page):
                return
            page += 1
            next_url = info.next_url
            if next_url is not None and self._same_origin(next_url) and next_url != url:
                url, query = next_url, None
            else:
                url, query = path, {**params, "page": page}
                if per_page is not None:
                    query["per_page"] = per_page
        raise InvalidResponse(f"more than {_MAX_PAGES} pages", method="GET", path=path)

    def _same_origin(self, url: str) -> bool:
        api = httpx.URL(self.settings.api_url)
        target = httpx.URL(url)
        return (target.scheme, target.host, target.port) == (api.scheme, api.host, api.port)

    # --- content ----------------------------------------------------------------------------

    def _remember(self, scope: Scope, versions: tuple[FileVersion, ...]) -> None:
        for version in versions:
            self._downloader.remember_company(version.id, scope.company_id)

    def read_range(self, version: FileVersion, offset: int, length: int, *,
                   priority: Priority = Priority.INTERACTIVE) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the file)."""
        return self._downloader.read_range(version, offset, length, priority)

    def download_to(self, version: FileVersion, dest: Path | ByteSink, *, offset: int = 0,
                    length: int | None = None, parallel: int | None = None,
                    progress: Callable[[int], object] | None = None,
                    priority: Priority = Priority.INTERACTIVE) -> int:
        """Stream a version (or a slice) into a file or a writable binary stream.

        ``progress`` gets the running total of bytes written. Returns the byte count."""
        return self._downloader.download_to(
            version, dest, offset=offset, length=length,
            parallel=parallel if parallel is not None else self.settings.download_parallel,
            progress=progress, priority=priority)

    def upload(self, scope: Scope, path: Path, *, filename: str,
               state: UploadState | None = None,
               on_state: Callable[[UploadState], object] | None = None,
               progress: Callable[[int, int], object] | None = None) -> str:
        """Upload a local file; returns the completed upload's uuid for create_file or
        create_version. ``on_state`` receives a persistable ``UploadState`` after every part;
        pass it back as ``state`` to resume without re-sending finished parts."""
        uuid, size = self._uploader.upload(
            scope.company_id, scope.project_id, path, filename=filename,
            part_size=self.settings.upload_part_size, parallel=self.settings.upload_parallel,
            small_max=self.settings.small_upload_max, state=state, on_state=on_state,
            progress=progress)
        self._upload_sizes[uuid] = size
        while len(self._upload_sizes) > 1024:
            self._upload_sizes.pop(next(iter(self._upload_sizes)))
        return uuid

    @property
    def url_resolutions(self) -> int:
        """How many download URLs were resolved through the API (the rest came from cache)."""
        return self._downloader.resolutions
