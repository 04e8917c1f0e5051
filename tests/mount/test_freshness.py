"""Changes made by someone else show up through the mount once the TTL has passed."""

from __future__ import annotations

import os

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import MountFactory, wait_for
from tests.mount.control import control

pytestmark = pytest.mark.mount

TTL = 1.0
DEADLINE = 20.0


def test_a_remote_rename_and_a_new_file_appear_after_the_ttl(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(ttl=TTL)
    folder = mounted.path / "04 RFIs"
    before = set(os.listdir(folder))
    tree = mounted.remote().tree()
    victim = next(p for p in tree if p.startswith("04 RFIs/") and tree[p].kind == "file")
    old_name = victim.rsplit("/", 1)[1]

    control(mounted.emulator, "PATCH", f"/remote/items/{tree[victim].id}",
            json={"name": "Renamed by Alex.pdf"})
    control(mounted.emulator, "POST", "/remote/files",
            json={"project_id": seed.PROJECT_ID, "parent_id": tree["04 RFIs"].id,
                  "name": "RFI 099 - New from Alex.pdf", "content": "fresh bytes"})

    expected = (before - {old_name}) | {"Renamed by Alex.pdf", "RFI 099 - New from Alex.pdf"}
    wait_for(lambda: set(os.listdir(folder)) == expected, DEADLINE,
             "the remote rename and the new file to show in the listing")
    assert (folder / "RFI 099 - New from Alex.pdf").read_bytes() == b"fresh bytes"


def test_a_new_remote_version_is_read_after_the_ttl(mount_factory: MountFactory) -> None:
    mounted = mount_factory(ttl=TTL)
    rel = seed.MULTI_VERSION_PATHS[1]
    path = mounted.path / rel
    old = path.read_bytes()
    file_id = mounted.remote().tree()[rel].id
    new = b"revision from another user\n" * 100

    control(mounted.emulator, "POST", f"/remote/files/{file_id}/versions",
            json={"content": new.decode(), "notes": "Rev 9"})

    wait_for(lambda: path.stat().st_size == len(new) and path.read_bytes() == new, DEADLINE,
             "the new version's bytes to be served")
    assert old != new


def test_a_remote_delete_disappears_after_the_ttl(mount_factory: MountFactory) -> None:
    mounted = mount_factory(ttl=TTL)
    rel = seed.NON_ASCII_PATHS[0]
    assert (mounted.path / rel).exists()
    control(mounted.emulator, "DELETE", f"/remote/items/{mounted.remote().tree()[rel].id}")
    wait_for(lambda: not (mounted.path / rel).exists(), DEADLINE,
             "the remotely deleted file to vanish")
