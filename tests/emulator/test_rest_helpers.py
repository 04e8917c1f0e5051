"""Helpers for the server-side contract tests (OAuth, REST, Documents, limits, control); no
tests in here. Everything goes over real loopback HTTP with httpx, as a client would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from procorefs.emulator.seed import COMPANY_ID, PROJECT_ID
from tests.support.emulator import Emulator

PROJECT = {"project_id": PROJECT_ID}


def headers(token: str, company_id: int | None = COMPANY_ID) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if company_id is not None:
        out["Procore-Company-Id"] = str(company_id)
    return out


@contextmanager
def api(emulator: Emulator, login: str | None = None, *,
        company_id: int | None = COMPANY_ID) -> Iterator[httpx.Client]:
    """A client of the API origin as ``login`` (the demo user by default)."""
    token = emulator.token(login)["access_token"]
    with httpx.Client(base_url=emulator.api_url, headers=headers(token, company_id),
                      timeout=30.0) as client:
        yield client


def upload(client: httpx.Client, data: bytes, filename: str = "data.bin", *,
           project_id: int | None = PROJECT_ID, company_id: int = COMPANY_ID) -> str:
    """A finished non-segmented upload (create, then the storage form POST): its uuid."""
    path = (f"/rest/v1.1/projects/{project_id}/uploads" if project_id is not None
            else f"/rest/v1.1/companies/{company_id}/uploads")
    created = client.post(path, json={"response_filename": filename})
    assert created.status_code == 201, created.text
    body = created.json()
    with httpx.Client(timeout=30.0) as storage:
        sent = storage.post(body["url"], data=body["fields"],
                            files={"file": (filename, data, "application/octet-stream")})
    assert sent.is_success, sent.text
    return str(body["uuid"])


def root(client: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = client.get("/rest/v1.0/folders", params={**PROJECT, **params})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def make_folder(client: httpx.Client, name: str, parent_id: int | None = None,
                **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **extra}
    if parent_id is not None:
        body["parent_id"] = parent_id
    answer = client.post("/rest/v1.0/folders", params=PROJECT, json={"folder": body})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def make_file(client: httpx.Client, name: str, data: bytes = b"hello",
              parent_id: int | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "upload_uuid": upload(client, data, name), **extra}
    if parent_id is not None:
        body["parent_id"] = parent_id
    answer = client.post("/rest/v1.0/files", params=PROJECT, json={"file": body})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def download(client: httpx.Client, version: dict[str, Any]) -> bytes:
    """Follow a version's url the way a client must: Bearer to the API, none to storage."""
    hop = client.get(version["url"])
    assert hop.status_code in (301, 302, 303, 307, 308), hop.text
    with httpx.Client(timeout=30.0) as storage:
        got = storage.get(hop.headers["Location"])
    assert got.status_code == 200, got.text
    return got.content


def documents(client: httpx.Client, **params: Any) -> httpx.Response:
    return client.get(f"/rest/v1.0/projects/{PROJECT_ID}/documents", params=params)
