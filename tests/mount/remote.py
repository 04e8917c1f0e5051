"""What Procore (the emulator) holds, read over plain HTTP: the oracle of the mount tests.

Deliberately independent of ``procorefs.api`` and ``procorefs.core``: it walks the documented
endpoints (shared/procore-api.md 4.4, 4.9) itself, so a bug shared by the client and the core
cannot hide from the comparison. Local names are derived with the core's name codec, the one
documented mapping of names a POSIX path cannot hold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from procorefs.core.names import PosixNameCodec

_codec = PosixNameCodec()


@dataclass(frozen=True)
class RemoteItem:
    path: str  # local path relative to the project root, "/"-joined, no leading slash
    kind: str  # "file" | "dir"
    id: int
    parent_id: int | None
    name: str  # the Procore name
    size: int
    updated_at: float
    version_id: int | None = None
    version_url: str | None = None
    created_at: float | None = None  # files only: folders carry no created_at


def _ts(value: object) -> float:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Remote:
    def __init__(self, api_url: str, token: str, company_id: int, project_id: int) -> None:
        self.api_url = api_url
        self.company_id = company_id
        self.project_id = project_id
        self._api_host = urlsplit(api_url).netloc
        self._http = httpx.Client(base_url=api_url, timeout=60.0, follow_redirects=False,
                                  headers={"Authorization": f"Bearer {token}",
                                           "Procore-Company-Id": str(company_id)})

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: str | int) -> Any:
        response = self._http.get(path, params={"project_id": self.project_id, **params})
        response.raise_for_status()
        return response.json()

    def root(self) -> dict[str, Any]:
        data: dict[str, Any] = self._get("/rest/v1.0/folders")
        return data

    def folder(self, folder_id: int) -> dict[str, Any]:
        data: dict[str, Any] = self._get(f"/rest/v1.0/folders/{folder_id}")
        return data

    def file(self, file_id: int) -> dict[str, Any]:
        data: dict[str, Any] = self._get(f"/rest/v1.0/files/{file_id}")
        return data

    def tree(self) -> dict[str, RemoteItem]:
        """Every live folder and file under the project root, by local path."""
        items: dict[str, RemoteItem] = {}
        root = self.root()
        items[""] = RemoteItem("", "dir", int(root["id"]), None, str(root["name"]), 0,
                               _ts(root["updated_at"]))
        pending = [("", root)]
        while pending:
            prefix, folder = pending.pop()
            for child in folder.get("folders", []):
                if child.get("is_deleted") or child.get("is_recycle_bin"):
                    continue
                path = f"{prefix}/{_codec.to_local(child['name'])}".lstrip("/")
                items[path] = RemoteItem(path, "dir", int(child["id"]), child.get("parent_id"),
                                         str(child["name"]), 0, _ts(child["updated_at"]))
                pending.append((path, self.folder(int(child["id"]))))
            for child in folder.get("files", []):
                if child.get("is_deleted"):
                    continue
                path = f"{prefix}/{_codec.to_local(child['name'])}".lstrip("/")
                versions = sorted(child.get("file_versions", []), key=lambda v: v["number"])
                latest = versions[-1] if versions else None
                items[path] = RemoteItem(
                    path, "file", int(child["id"]), child.get("parent_id"), str(child["name"]),
                    int(child["size"]), _ts(child["updated_at"]),
                    int(latest["id"]) if latest else None, latest["url"] if latest else None,
                    _ts(child["created_at"]))
        return items

    def versions(self, file_id: int) -> list[dict[str, Any]]:
        """Every version of a file, oldest first."""
        return sorted(self.file(file_id).get("file_versions", []), key=lambda v: v["number"])

    def recycle_bin(self) -> list[dict[str, Any]]:
        """Every deleted folder and file of the project (the documents index, 4.5)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            rows = self._http.get(f"/rest/v1.0/projects/{self.project_id}/documents",
                                  params={"filters[is_in_recycle_bin]": "true",
                                          "per_page": 1000, "page": page})
            rows.raise_for_status()
            data = rows.json()
            batch = data["data"] if isinstance(data, dict) else data
            if not batch:
                return out
            out.extend(r for r in batch if r.get("is_deleted"))
            page += 1

    def sha256(self, item: RemoteItem) -> str:
        """The hash of a file's latest version, downloaded the documented way (4.9)."""
        digest = hashlib.sha256()
        if item.size == 0 or item.version_url is None:
            return digest.hexdigest()
        url = item.version_url
        for _ in range(5):
            request = self._http.build_request("GET", url)
            if urlsplit(url).netloc != self._api_host:
                # The Bearer token goes to the API host only, never to storage.
                del request.headers["Authorization"]
                del request.headers["Procore-Company-Id"]
            response = self._http.send(request, stream=True)
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    url = response.headers["location"]
                    continue
                response.raise_for_status()
                for chunk in response.iter_bytes(1 << 20):
                    digest.update(chunk)
                return digest.hexdigest()
            finally:
                response.close()
        raise AssertionError(f"too many redirects downloading {item.path}")
