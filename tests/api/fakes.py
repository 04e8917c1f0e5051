"""Helpers for unit tests that drive ``ProcoreClient`` through ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from procorefs.api.auth import Credentials, StaticCredentials
from procorefs.api.client import ProcoreClient
from procorefs.clock import ManualClock
from procorefs.config import Settings

API = "http://127.0.0.1:9"
STORAGE = "http://127.0.0.2:9"


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "environment": "custom", "api_url": API, "login_url": API,
        "config_dir": tmp_path / "config", "cache_dir": tmp_path / "cache",
        "state_dir": tmp_path / "state", "max_retries": 4}
    base.update(kw)
    return Settings(**base)


def make_client(tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response], *,
                clock: ManualClock | None = None, credentials: Credentials | None = None,
                **settings_kw: Any) -> ProcoreClient:
    return ProcoreClient.from_settings(
        make_settings(tmp_path, **settings_kw), clock=clock or ManualClock(),
        transport=httpx.MockTransport(handler),
        credentials=credentials or StaticCredentials("static-token-value"))


def jsonr(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", **(headers or {})})


def folder(fid: int, name: str, parent: int | None = None, *, folders: list[Any] | None = None,
           files: list[Any] | None = None) -> dict[str, Any]:
    return {"id": fid, "name": name, "parent_id": parent, "folders": folders or [],
            "files": files or [], "is_deleted": False, "is_recycle_bin": False}


def file(fid: int, name: str, parent: int, versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": fid, "name": name, "parent_id": parent, "file_versions": versions,
            "size": versions[-1]["size"] if versions else 0}


def version(vid: int, number: int, size: int, url: str, created_at: str = "2030-01-01T00:00:00Z"
            ) -> dict[str, Any]:
    return {"id": vid, "number": number, "size": size, "url": url, "created_at": created_at}
