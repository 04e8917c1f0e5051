"""The Windows tier: the WinFsp adapter over the REAL core against the emulator, no kernel.

``fake_winfspy`` (session) installs ``tests/windows/fakewinfspy.py`` as ``winfspy`` and
imports the adapter against it; ``win`` (demo seed) builds a ``ProcoreFS`` with the Windows
name codec, signed in as the demo user with a token the emulator mints, wraps it in
``ProcoreOperations`` and hands out a ``WinEnv``: ``env.windows`` plays the callbacks in
Windows order (``driver.py``); ``env.item``/``env.children``/``env.names`` read what Procore
holds through the documented ``/documents`` index over plain HTTP (one request each: the
emulator rate-limits the user as Procore does), and ``env.remote`` (the mount tier's oracle)
downloads versions and reads single files.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from procorefs.adapters.winfsp.mountpoint import default_sddl, volume_label
from procorefs.adapters.winfsp.names import WindowsNameCodec
from procorefs.api import ProcoreClient
from procorefs.clock import SystemClock
from procorefs.config import Settings
from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
from procorefs.emulator import seed
from tests.mount.remote import Remote, RemoteItem
from tests.support.emulator import Emulator
from tests.windows import fakewinfspy
from tests.windows.driver import Windows

USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
COMMIT_DEADLINE = 30.0


@pytest.fixture(scope="session")
def fake_winfspy() -> Iterator[ModuleType]:
    fakewinfspy.install()
    try:
        yield importlib.import_module("procorefs.adapters.winfsp.operations")
    finally:
        fakewinfspy.uninstall()
        package = importlib.import_module("procorefs.adapters.winfsp")
        if hasattr(package, "operations"):
            delattr(package, "operations")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = COMMIT_DEADLINE,
             interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class WinEnv:
    emulator: Emulator
    tmp: Path
    operations_module: ModuleType
    token: str = ""
    fs: ProcoreFS | None = None
    ops: Any = None
    windows: Windows = field(init=False)
    remote: Remote = field(init=False)
    _client: ProcoreClient | None = None

    def start(self) -> None:
        self.token = str(self.emulator.token(seed.DEMO_USER_LOGIN)["access_token"])
        settings = Settings(environment="custom", api_url=self.emulator.api_url,
                            login_url=self.emulator.api_url, access_token=self.token,
                            company_id=seed.COMPANY_ID, config_dir=self.tmp / "config",
                            cache_dir=self.tmp / "client-cache", state_dir=self.tmp / "state")
        self._client = ProcoreClient.from_settings(settings, clock=SystemClock())
        config = CoreConfig(layout=Layout("project", seed.COMPANY_ID, seed.PROJECT_ID),
                            cache_dir=self.tmp / "cache", codec=WindowsNameCodec(),
                            poll_interval=3600.0)
        self.fs = ProcoreFS(self._client, config, clock=SystemClock())
        self.fs.start()
        self.ops = self.operations_module.ProcoreOperations(
            self.fs, label=volume_label(seed.PROJECT_NAME), sddl=default_sddl(USER_SID))
        self.windows = Windows(self.ops, fakewinfspy.NTStatusError)
        self.remote = Remote(self.emulator.api_url, self.token, seed.COMPANY_ID,
                             seed.PROJECT_ID)

    def close(self) -> None:
        if self.fs is not None:
            self.fs.close()
        if self._client is not None:
            self._client.close()
        self.remote.close()

    # -- Procore's side: the documented /documents index, one request per question -------
    def _documents(self, **params: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 1
        with httpx.Client(base_url=self.emulator.api_url, timeout=60.0, headers={
                "Authorization": f"Bearer {self.token}",
                "Procore-Company-Id": str(seed.COMPANY_ID)}) as http:
            while True:
                response = http.get(f"/rest/v1.0/projects/{seed.PROJECT_ID}/documents",
                                    params={"view": "extended", "page": page,
                                            "per_page": 1000, **params})
                response.raise_for_status()
                batch = response.json()
                rows += batch
                if len(batch) < 1000:
                    return rows
                page += 1

    def tree(self) -> dict[tuple[int | None, str], RemoteItem]:
        """Live items by (parent id, Procore name); the root folder under (None, "")."""
        rows = self._documents(**{"filters[is_in_recycle_bin]": "false"})
        ids = {int(row["id"]) for row in rows}
        # The index leaves the root folder out: it is the parent that is nobody's child.
        roots = {int(row["parent_id"]) for row in rows} - ids
        assert len(roots) == 1, roots
        out: dict[tuple[int | None, str], RemoteItem] = {
            (None, ""): RemoteItem("", "dir", roots.pop(), None, "", 0, 0.0)}
        for row in rows:
            version = (row.get("file") or {}).get("current_version") or {}
            out[(int(row["parent_id"]), str(row["name"]))] = RemoteItem(
                path=str(row["name_with_path"]),
                kind="file" if row["document_type"] == "file" else "dir",
                id=int(row["id"]), parent_id=int(row["parent_id"]), name=str(row["name"]),
                size=int(version.get("size") or 0), updated_at=0.0,
                version_id=version.get("id"), version_url=version.get("url"))
        return out

    def item(self, *names: str) -> RemoteItem:
        """The live item at a path of PROCORE names (not local ones)."""
        tree = self.tree()
        node = tree[(None, "")]
        for name in names:
            node = tree[(node.id, name)]
        return node

    def children(self, *names: str) -> dict[str, RemoteItem]:
        tree = self.tree()
        node = tree[(None, "")]
        for name in names:
            node = tree[(node.id, name)]
        return {name: item for (parent, name), item in tree.items() if parent == node.id}

    def names(self) -> set[str]:
        """Every file and folder name in the project, recycle bin included."""
        return {str(row["name"]) for row in self._documents()}

    def versions(self, file_id: int) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = self.remote.file(file_id).get("file_versions", [])
        return sorted(versions, key=lambda v: int(v["number"]))


@pytest.fixture
def win(fake_winfspy: ModuleType, demo_emulator: Emulator, tmp_path: Path) -> Iterator[WinEnv]:
    env = WinEnv(demo_emulator, tmp_path, fake_winfspy)
    env.start()
    try:
        yield env
    finally:
        env.close()
