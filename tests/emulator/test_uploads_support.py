"""Shared helpers for the upload, storage and download contract tests (no tests in here).

They drive the emulator the way a client must (procore-api.md §4.9, §5.1, §5.2): over real
loopback HTTP with httpx, Bearer token and ``Procore-Company-Id`` on the API origin, nothing but
the presigned URL (and the headers the API gave) on the storage origin.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from procorefs.emulator.seed import COMPANY_ID, PROJECT_ID

MB = 1_000_000
MIB = 1024 * 1024


class EmulatorLike(Protocol):
    api_url: str
    storage_url: str

    def token(self, login: str | None = None, ttl: int | None = None) -> dict[str, Any]: ...


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def api(emulator: EmulatorLike, login: str | None = None, *,
        company_id: int | None = COMPANY_ID) -> httpx.Client:
    """A client of the API origin signed in as ``login`` (the demo user by default)."""
    token = emulator.token(login)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if company_id is not None:
        headers["Procore-Company-Id"] = str(company_id)
    return httpx.Client(base_url=emulator.api_url, headers=headers, timeout=30.0)


def storage() -> httpx.Client:
    """A client for presigned URLs: no auth, no base URL, no redirects."""
    return httpx.Client(timeout=30.0)


def segment_specs(parts: Sequence[bytes], *, with_md5: bool = True) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for part in parts:
        spec: dict[str, Any] = {"size": len(part), "sha256": hashlib.sha256(part).hexdigest()}
        if with_md5:
            spec["md5"] = hashlib.md5(part).hexdigest()
        specs.append(spec)
    return specs


def project_uploads(version: str = "v1.1", project_id: int = PROJECT_ID) -> str:
    return f"/rest/{version}/projects/{project_id}/uploads"


def company_uploads(version: str = "v1.1", company_id: int = COMPANY_ID) -> str:
    return f"/rest/{version}/companies/{company_id}/uploads"


def put_segment(client: httpx.Client, segment: dict[str, Any], body: bytes,
                **extra_headers: str) -> httpx.Response:
    headers = {**segment["headers"], "Content-Type": "application/octet-stream",
               **extra_headers}
    return client.put(segment["url"], content=body, headers=headers)


def segmented_upload(client: httpx.Client, parts: Sequence[bytes], *,
                     path: str | None = None, filename: str = "data.bin") -> dict[str, Any]:
    """Create, PUT every part, PATCH the ETags (quoted, as S3 sends them): the final upload."""
    created = client.post(path or project_uploads(),
                          json={"response_filename": filename,
                                "segments": segment_specs(parts)})
    assert created.status_code == 201, created.text
    upload = created.json()
    etags = []
    with storage() as s3:
        for segment, part in zip(upload["segments"], parts, strict=True):
            answer = put_segment(s3, segment, part)
            assert answer.status_code == 200, answer.text
            etags.append(answer.headers["ETag"])
    done = client.patch(f"{path or project_uploads()}/{upload['uuid']}",
                        json={"segments": [{"etag": e} for e in etags]})
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    assert body["status"] == "complete"
    return body


def form_upload(client: httpx.Client, data: bytes, *, path: str | None = None,
                filename: str = "small.txt") -> dict[str, Any]:
    """A non-segmented upload: create, then the multipart POST of ``fields`` + ``file``."""
    created = client.post(path or project_uploads(), json={"response_filename": filename})
    assert created.status_code == 201, created.text
    upload: dict[str, Any] = created.json()
    with storage() as s3:
        answer = s3.post(upload["url"], data=upload["fields"],
                         files={"file": (filename, data, "application/octet-stream")})
    assert answer.status_code == 204, answer.text
    return upload


def create_file(client: httpx.Client, name: str, upload_uuid: str,
                project_id: int = PROJECT_ID) -> httpx.Response:
    return client.post("/rest/v1.0/files", params={"project_id": project_id},
                       json={"file": {"name": name, "upload_uuid": upload_uuid}})


def latest_version_url(file_json: dict[str, Any]) -> str:
    versions = file_json["file_versions"]
    newest = max(versions, key=lambda v: v["number"])
    url: str = newest["url"]
    return url


def resolve(client: httpx.Client, version_url: str) -> str:
    """The presigned storage URL a version's download link redirects to."""
    answer = client.get(version_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["Location"]
    return location


def uploaded_file(client: httpx.Client, data: bytes, name: str = "file.bin") -> str:
    """Upload ``data`` (non-segmented), make a project file of it: its download link."""
    upload = form_upload(client, data, filename=name)
    made = create_file(client, name, upload["uuid"])
    assert made.status_code == 201, made.text
    return latest_version_url(made.json())
