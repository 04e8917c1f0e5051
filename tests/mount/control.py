"""Remote changes "as another user" through the emulator's control API (docs/emulator.md)."""

from __future__ import annotations

from typing import Any

import httpx


def control(emulator: Any, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{emulator.api_url}/_emulator{path}", timeout=30.0,
                             **kwargs)
    response.raise_for_status()
    return response.json()


def requests_since(emulator: Any, since: int, origin: str | None = "api") -> list[dict[str, Any]]:
    params: dict[str, Any] = {"since": since}
    if origin:
        params["origin"] = origin
    entries: list[dict[str, Any]] = control(emulator, "GET", "/requests", params=params)[
        "requests"]
    return entries


def log_mark(emulator: Any) -> int:
    return int(control(emulator, "GET", "/requests", params={"since": 2**62})["last_seq"])
