"""Getting bytes into Procore storage: non-segmented for small files, segmented for the rest.

Small files (``Settings.small_upload_max``) take the non-segmented upload: one API call
(create) and one storage form POST. Larger files are segmented (shared/procore-api.md 5.1):
1. one streaming pass over the local file computes SHA-256 and MD5 per part (the create call
   needs them up front); parts are re-read from disk when sent, so memory stays at one buffer
   per worker whatever the file size. A caller that knows the digests already (the core
   hashes staged files as they are written) gives an ``UploadState`` without a uuid, and
   this pass is skipped: the state's parts must describe the file as it is (size and
   modification time are checked, and storage checks every part's hashes);
2. create the upload with the part list (safe to repeat: an orphan upload costs nothing);
3. PUT the parts in parallel to their presigned URLs - without the Bearer token - each part
   retried on its own;
4. PATCH the ETags in part order (with size and sha256, as the spec wants).
A 403 from storage means the one-hour start window closed: a new upload is created for the
same digests. ``UploadState`` (uuid, digests, ETags so far) is a JSON value the caller may
persist after every part; given back, only the missing parts are sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from procorefs.api.errors import ApiError, Forbidden, Gone, InvalidResponse, NetworkError, NotFound
from procorefs.api.http import ApiSession, error_for, json_body
from procorefs.api.models import Upload
from procorefs.api.ratelimit import Priority
from procorefs.api.redact import safe_url
from procorefs.api.retry import ANSWER_LOST_ERRORS, NOT_SENT_ERRORS, RETRYABLE_STATUS, Backoff
from procorefs.clock import Clock

log = logging.getLogger(__name__)

_BUFFER = 1024 * 1024
_STATE_VERSION = 1


@dataclass(frozen=True)
class PartDigest:
    size: int
    sha256: str
    md5: str  # hex


@dataclass(frozen=True)
class UploadState:
    """Where a segmented upload stands; JSON-serialisable so a crash loses no finished part."""

    uuid: str | None
    company_id: int
    project_id: int | None
    filename: str
    size: int
    mtime_ns: int
    part_size: int
    parts: tuple[PartDigest, ...]
    etags: tuple[str | None, ...]
    complete: bool = False

    @property
    def parts_done(self) -> int:
        return sum(1 for e in self.etags if e)

    @property
    def bytes_done(self) -> int:
        return sum(p.size for p, e in zip(self.parts, self.etags, strict=True) if e)

    def to_json(self) -> str:
        data = asdict(self)
        data["version"] = _STATE_VERSION
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> UploadState:
        try:
            data = json.loads(text)
            if data.pop("version", None) != _STATE_VERSION:
                raise ValueError("unknown state version")
            parts = tuple(PartDigest(**p) for p in data.pop("parts"))
            etags = tuple(data.pop("etags"))
            state = cls(parts=parts, etags=etags, **data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not an upload state: {exc}") from None
        if len(state.etags) != len(state.parts):
            raise ValueError("not an upload state: parts and etags differ in length")
        return state


def digest_parts(path: Path, part_size: int,
                 progress: Callable[[int], None] | None = None) -> tuple[PartDigest, ...]:
    """SHA-256 and MD5 of every part, in one streaming pass over the file."""
    parts: list[PartDigest] = []
    buffer = bytearray(_BUFFER)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        while True:
            sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
            while size < part_size:
                n = fh.readinto(view[: min(_BUFFER, part_size - size)])
                if not n:
                    break
                sha.update(view[:n])
                md5.update(view[:n])
                size += n
                if progress is not None:
                    progress(n)
            if size == 0:
                break
            parts.append(PartDigest(size=size, sha256=sha.hexdigest(), md5=md5.hexdigest()))
            if size < part_size:
                break
    return tuple(parts)


def _read_part(path: Path, offset: int, size: int,
               on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(offset)
        left = size
        while left > 0:
            chunk = fh.read(min(_BUFFER, left))
            if not chunk:
                raise NetworkError(f"{path.name} shrank while it was being uploaded")
            left -= len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
            yield chunk


class _RestartUpload(Exception):
    """The storage refused a part with 403: the upload window closed."""


class Uploader:
    def __init__(self, session: ApiSession, storage: httpx.Client, clock: Clock,
                 backoff: Backoff) -> None:
        self._session = session
        self._storage = storage
        self._clock = clock
        self._backoff = backoff

    # --- paths ------------------------------------------------------------------------------

    @staticmethod
    def _base(company_id: int, project_id: int | None) -> str:
        if project_id is not None:
            return f"/rest/v1.1/projects/{project_id}/uploads"
        return f"/rest/v1.1/companies/{company_id}/uploads"

    # --- entry point ------------------------------------------------------------------------

    def upload(self, company_id: int, project_id: int | None, path: Path, *, filename: str,
               part_size: int, parallel: int, small_max: int,
               state: UploadState | None = None,
               on_state: Callable[[UploadState], object] | None = None,
               progress: Callable[[int, int], object] | None = None) -> tuple[str, int]:
        """Upload ``path``; returns (completed upload uuid, size)."""
        stat = path.stat()
        size = stat.st_size
        if state is not None and not self._matches(state, company_id, project_id, path,
                                                   stat.st_size, stat.st_mtime_ns):
            log.info("upload state for %s does not match the file any more; starting over",
                     filename)
            state = None
        if state is None and size <= small_max:
            uuid = self._single(company_id, project_id, path, filename, size, progress)
            return uuid, size
        if state is None:
            parts = digest_parts(path, part_size)
            state = UploadState(uuid=None, company_id=company_id, project_id=project_id,
                                filename=filename, size=size, mtime_ns=stat.st_mtime_ns,
                                part_size=part_size, parts=parts,
                                etags=(None,) * len(parts))
        return self._segmented(state, path, parallel, on_state, progress), size

    @staticmethod
    def _matches(state: UploadState, company_id: int, project_id: int | None, path: Path,
                 size: int, mtime_ns: int) -> bool:
        return (state.company_id, state.project_id, state.size, state.mtime_ns) == \
            (company_id, project_id, size, mtime_ns) and \
            sum(p.size for p in state.parts) == size

    # --- non-segmented ----------------------------------------------------------------------

    def _single(self, company_id: int, project_id: int | None, path: Path, filename: str,
                size: int, progress: Callable[[int, int], object] | None) -> str:
        for _ in range(3):
            upload = self._create(company_id, project_id, filename, size, None)
            if not upload.url:
                raise InvalidResponse("the upload has no storage URL", method="POST",
                                      path=self._base(company_id, project_id))
            try:
                self._form_post(upload, path, filename)
            except _RestartUpload:
                continue
            if progress is not None:
                progress(size, size)
            return upload.uuid
        raise Forbidden("storage kept refusing the upload (window expired three times)")

    def _form_post(self, upload: Upload, path: Path, filename: str) -> None:
        assert upload.url is not None
        shown = safe_url(upload.url)
        content_type = upload.fields.get("Content-Type") or _content_type(filename)
        attempt = 0
        while True:
            attempt += 1
            try:
                with path.open("rb") as fh:
                    response = self._storage.post(
                        upload.url, data=dict(upload.fields),
                        files={"file": (filename, fh, content_type)})
            except (*NOT_SENT_ERRORS, *ANSWER_LOST_ERRORS) as exc:
                # Re-posting the same object key is harmless: storage keeps the last copy.
                self._pause(attempt, NetworkError(f"storage upload failed: "
                                                  f"{type(exc).__name__}", method="POST",
                                                  path=shown))
                continue
            if response.is_success:
                return
            if response.status_code == 403:
                raise _RestartUpload()
            error = error_for(response, "POST", shown)
            if response.status_code not in RETRYABLE_STATUS:
                raise error
            self._pause(attempt, error)

    # --- segmented --------------------------------------------------------------------------

    def _segmented(self, state: UploadState, path: Path, parallel: int,
                   on_state: Callable[[UploadState], object] | None,
                   progress: Callable[[int, int], object] | None) -> str:
        restarts = 0
        while True:
            upload: Upload | None = None
            if state.uuid is not None and not state.complete:
                upload = self._resume(state)
                if upload is None:
                    state = replace(state, uuid=None, etags=(None,) * len(state.parts))
                elif upload.status == "complete":
                    state = replace(state, complete=True)  # only our bookkeeping was behind
            if state.uuid is None:
                upload = self._create(state.company_id, state.project_id, state.filename,
                                      state.size, state.parts)
                state = replace(state, uuid=upload.uuid, etags=(None,) * len(state.parts))
                if on_state is not None:
                    on_state(state)
            if state.complete:
                assert state.uuid is not None
                return state.uuid
            assert upload is not None
            try:
                state = self._send_parts(state, upload, path, parallel, on_state, progress)
            except _RestartUpload:
                restarts += 1
                if restarts > 3:
                    raise Forbidden("storage kept refusing the parts (upload window expired "
                                    "three times)") from None
                log.info("upload %s expired at storage; starting a new one", state.filename)
                state = replace(state, uuid=None, etags=(None,) * len(state.parts))
                continue
            try:
                self._complete(state)
            except (Forbidden, Gone, NotFound):
                restarts += 1
                if restarts > 3:
                    raise
                state = replace(state, uuid=None, etags=(None,) * len(state.parts))
                continue
            state = replace(state, complete=True)
            if on_state is not None:
                on_state(state)
            assert state.uuid is not None
            return state.uuid

    def _create(self, company_id: int, project_id: int | None, filename: str, size: int,
                parts: tuple[PartDigest, ...] | None) -> Upload:
        body: dict[str, Any] = {"response_filename": filename,
                                "response_content_type": _content_type(filename),
                                "size": size}
        if parts is not None:
            body["segments"] = [{"size": p.size, "sha256": p.sha256, "md5": p.md5}
                                for p in parts]
        path = self._base(company_id, project_id)
        # Creating an upload twice leaves an unused one behind, which costs nothing: so the
        # POST is treated as idempotent.
        response = self._session.request("POST", path, company_id=company_id,
                                         json=body, idempotent=True,
                                         priority=Priority.INTERACTIVE)
        upload = Upload.parse(json_body(response, "POST", path))
        if parts is not None and len(upload.segments) != len(parts):
            raise InvalidResponse(f"the upload has {len(upload.segments)} segments, "
                                  f"{len(parts)} were asked for", method="POST", path=path)
        return upload

    def _resume(self, state: UploadState) -> Upload | None:
        """Fresh part URLs for an upload we started before; None if it cannot go on."""
        assert state.uuid is not None
        path = f"{self._base(state.company_id, state.project_id)}/{state.uuid}"
        try:
            response = self._session.request("GET", path, company_id=state.company_id)
        except (Forbidden, Gone, NotFound):
            return None
        upload = Upload.parse(json_body(response, "GET", path))
        if upload.status == "complete":
            return upload
        if len(upload.segments) != len(state.parts) or any(
                not s.url for s, e in zip(upload.segments, state.etags, strict=True) if not e):
            return None
        return upload

    def _send_parts(self, state: UploadState, upload: Upload, path: Path, parallel: int,
                    on_state: Callable[[UploadState], object] | None,
                    progress: Callable[[int, int], object] | None) -> UploadState:
        lock = threading.Lock()
        etags = list(state.etags)
        done_bytes = [state.bytes_done]
        offsets = [0]
        for part in state.parts[:-1]:
            offsets.append(offsets[-1] + part.size)
        todo = [i for i, etag in enumerate(etags) if not etag]
        if progress is not None:
            progress(done_bytes[0], state.size)

        def report(n: int) -> None:
            if progress is None:
                return
            with lock:
                done_bytes[0] += n
                progress(min(done_bytes[0], state.size), state.size)

        stop = threading.Event()

        def one(index: int) -> None:
            if stop.is_set():
                return  # another part failed: do not start more work
            try:
                put(index)
            except BaseException:
                stop.set()
                raise

        def put(index: int) -> None:
            etag = self._put_part(upload, index, path, offsets[index], state.parts[index],
                                  report)
            with lock:
                etags[index] = etag
                snapshot = replace(state, etags=tuple(etags))
                if on_state is not None:
                    on_state(snapshot)

        workers = max(1, min(parallel, len(todo)))
        with ThreadPoolExecutor(max_workers=workers,
                                thread_name_prefix="procorefs-upload") as pool:
            futures = [pool.submit(one, i) for i in todo]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in finished if f.exception()), None)
            if failure is not None:
                for f in futures:
                    f.cancel()
                wait(futures)
                raise failure
        return replace(state, etags=tuple(etags))

    def _put_part(self, upload: Upload, index: int, path: Path, offset: int,
                  part: PartDigest, report: Callable[[int], None]) -> str:
        segment = upload.segments[index]
        assert segment.url is not None
        shown = safe_url(segment.url)
        headers = {k: v for k, v in segment.headers.items()
                   if k.lower() not in ("authorization", "host")}
        lower = {k.lower() for k in headers}
        if "content-type" not in lower:
            headers["Content-Type"] = "application/octet-stream"
        if "content-length" not in lower:
            headers["Content-Length"] = str(part.size)
        if "x-amz-content-sha256" not in lower:
            headers["x-amz-content-sha256"] = part.sha256
        if "content-md5" not in lower:
            headers["Content-MD5"] = base64.b64encode(bytes.fromhex(part.md5)).decode()
        attempt = 0
        while True:
            attempt += 1
            sent = [0]

            def count(n: int, sent: list[int] = sent) -> None:
                sent[0] += n
                report(n)

            try:
                response = self._storage.put(segment.url,
                                             content=_read_part(path, offset, part.size, count),
                                             headers=headers)
            except (*NOT_SENT_ERRORS, *ANSWER_LOST_ERRORS) as exc:
                report(-sent[0])
                self._pause(attempt, NetworkError(f"part {index + 1} failed: "
                                                  f"{type(exc).__name__}", method="PUT",
                                                  path=shown))
                continue
            if response.is_success:
                etag = str(response.headers.get("etag", "")).strip().strip('"')
                if not etag:
                    raise InvalidResponse(f"storage gave part {index + 1} no ETag",
                                          method="PUT", path=shown)
                return etag
            report(-sent[0])
            if response.status_code == 403:
                raise _RestartUpload()
            error = error_for(response, "PUT", shown)
            if response.status_code not in RETRYABLE_STATUS:
                raise error
            self._pause(attempt, error)

    def _complete(self, state: UploadState) -> None:
        assert state.uuid is not None
        path = f"{self._base(state.company_id, state.project_id)}/{state.uuid}"
        body = {"segments": [{"size": p.size, "sha256": p.sha256, "etag": e}
                             for p, e in zip(state.parts, state.etags, strict=True)]}
        # Completing twice with the same ETags is harmless: PATCH is repeated if lost.
        self._session.request("PATCH", path, company_id=state.company_id, json=body,
                              idempotent=True)

    def _pause(self, attempt: int, error: ApiError) -> None:
        if not self._backoff.allows(attempt):
            raise error
        self._clock.sleep(self._backoff.delay(attempt))


def _content_type(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"
