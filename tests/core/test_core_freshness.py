"""Changes made by others reach the core: TTL expiry, the change poller, negative lookups."""

from __future__ import annotations

import os
import re

import pytest

from procorefs.emulator import seed
from procorefs.errors import FsNotFound
from tests.core.conftest import CoreEnv

RFIS = "/04 RFIs"


def _names(fs, path: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {e.name for e in fs.readdir(path)}


def _read_all(fs, path: str) -> tuple[bytes, bool]:  # type: ignore[no-untyped-def]
    handle = fs.open(path, os.O_RDONLY)
    try:
        return fs.read(handle, 0, 1 << 20), fs.keep_kernel_cache(handle)
    finally:
        fs.release(handle)


def test_remote_changes_appear_after_the_ttl(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    rfis = fs.getattr(RFIS).remote_id
    before = _names(fs, RFIS)
    core_env.remote("POST", "files", project_id=core_env.project_id, parent_id=rfis,
                    name="RFI 099 - From the field.pdf", content="field note")
    core_env.clock.advance(fs.config.metadata_ttl / 2)
    assert _names(fs, RFIS) == before  # still the cached listing
    core_env.clock.advance(fs.config.metadata_ttl / 2 + 1)
    assert _names(fs, RFIS) == before | {"RFI 099 - From the field.pdf"}


def test_a_new_version_is_read_after_the_ttl(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    path = "/" + seed.MULTI_VERSION_PATHS[0]
    first, _ = _read_all(fs, path)
    again, keep = _read_all(fs, path)
    assert again == first and keep
    file_id = fs.getattr(path).remote_id
    core_env.remote("POST", f"files/{file_id}/versions", content="revision from the field")
    core_env.clock.advance(fs.config.metadata_ttl + 1)
    data, keep = _read_all(fs, path)
    assert data == b"revision from the field"
    assert not keep  # the kernel must drop its pages of the old version


def test_the_poller_applies_changes_without_relisting(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    fs.whoami()
    fs.readdir("/")
    fs.readdir(RFIS)
    fs.readdir("/07 Meeting Minutes")
    rfi = next(e for e in fs.readdir(RFIS) if e.stat.kind == "file")
    minutes = fs.getattr("/07 Meeting Minutes").remote_id
    core_env.remote("PATCH", f"items/{rfi.stat.remote_id}", name="Moved RFI.pdf",
                    parent_id=minutes)
    core_env.clock.advance(fs.config.poll_interval + 1)
    mark = core_env.mark()
    assert fs.poll_changes() == 1
    assert rfi.name not in _names(fs, RFIS)
    assert fs.getattr("/07 Meeting Minutes/Moved RFI.pdf").remote_id == rfi.stat.remote_id
    paths = [r["path"] for r in core_env.api_requests(mark)]
    assert paths and all(re.search(r"/documents$", p) for p in paths), paths
    # a quiet poll later, the listings still answer for themselves
    core_env.clock.advance(fs.config.poll_interval + 1)
    fs.poll_changes()
    mark = core_env.mark()
    _names(fs, RFIS)
    _names(fs, "/07 Meeting Minutes")
    assert core_env.api_requests(mark) == []


def test_remote_deletion_seen_by_the_poller(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    fs.whoami()
    victim = next(e for e in fs.readdir(RFIS) if e.stat.kind == "file")
    core_env.remote("DELETE", f"items/{victim.stat.remote_id}")
    core_env.clock.advance(fs.config.poll_interval + 1)
    fs.poll_changes()
    assert victim.name not in _names(fs, RFIS)
    with pytest.raises(FsNotFound):
        fs.getattr(f"{RFIS}/{victim.name}")


def test_probes_cost_no_request_once_the_parent_is_listed(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    fs.readdir("/")
    fs.readdir(RFIS)
    mark = core_env.mark()
    for _ in range(3):
        for probe in ("desktop.ini", ".DS_Store", ".hidden", "autorun.inf", "Thumbs.db"):
            with pytest.raises(FileNotFoundError):
                fs.getattr(f"{RFIS}/{probe}")
            with pytest.raises(FileNotFoundError):
                fs.getattr(f"/{probe}")
    assert core_env.api_requests(mark) == []
