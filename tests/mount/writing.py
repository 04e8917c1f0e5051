"""Helpers of the write tests on a real mount: local trees, Procore's trees, the request log."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.mount.conftest import Mounted
from tests.mount.remote import Remote, RemoteItem

FOLDER = "03 Submittals"      # a demo folder the save-pattern tests work in


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_tree(root: Path) -> dict[str, str]:
    """Relative path -> "dir" or the file's sha256 (symlinks are not expected)."""
    out: dict[str, str] = {}
    for base, dirs, files in os.walk(root):
        rel = os.path.relpath(base, root)
        for d in dirs:
            out[os.path.normpath(os.path.join(rel, d))] = "dir"
        for f in files:
            path = Path(base) / f
            out[os.path.normpath(os.path.join(rel, f))] = sha(path.read_bytes())
    return out


def remote_tree(remote: Remote, under: str) -> dict[str, str]:
    """What Procore holds under a folder: relative path -> "dir" or the latest sha256."""
    out: dict[str, str] = {}
    prefix = under.strip("/") + "/"
    for path, item in remote.tree().items():
        if not path.startswith(prefix):
            continue
        out[path[len(prefix):]] = "dir" if item.kind == "dir" else remote.sha256(item)
    return out


def item(remote: Remote, path: str) -> RemoteItem:
    found = remote.tree().get(path)
    assert found is not None, f"{path} is not in Procore"
    return found


def bin_names(remote: Remote) -> set[str]:
    return {str(row["name"]) for row in remote.recycle_bin()}


def creates(requests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The create-file calls of a request log (POST /files)."""
    return [r for r in requests if r["method"] == "POST" and r["origin"] == "api"
            and r["path"].rstrip("/").endswith("/files")]


def versions_created(requests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] == "POST" and r["origin"] == "api"
            and r["path"].rstrip("/").endswith("/file_versions")]


def no_duplicate_creates(requests: list[dict[str, Any]], remote: Remote) -> None:
    """Every successful POST /files made a distinct live file (none created twice)."""
    made = [r for r in creates(requests) if r["status"] == 201]
    live = {i.name for i in remote.tree().values() if i.kind == "file"}
    deleted = bin_names(remote)
    assert len(made) <= len(live) + len(deleted), (len(made), len(live))


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def stopped(mounted: Mounted) -> Remote:
    """Unmount (the queue is sent first) and hand back the oracle."""
    code = mounted.stop()
    assert code == 0, mounted.output.read_text(errors="replace")[-3000:]
    return mounted.remote()
