"""Procore names a POSIX path cannot hold, seen and renamed through the mount."""

from __future__ import annotations

import os

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import MountFactory
from tests.mount.control import control

pytestmark = pytest.mark.mount


def test_slashes_and_dot_names_appear_as_look_alikes_and_map_back(
        demo_emulator: object, mount_factory: MountFactory) -> None:
    info = control(demo_emulator, "GET", "/info")
    root_id = next(p["root_folder_id"] for c in info["companies"] for p in c["projects"]
                   if p["id"] == seed.PROJECT_ID)
    made = {}
    for name in ("Detail 5/A - Stair.pdf", ".."):
        made[name] = control(demo_emulator, "POST", "/remote/files",
                             json={"project_id": seed.PROJECT_ID, "parent_id": root_id,
                                   "name": name, "content": f"bytes of {name}"})["id"]
    mounted = mount_factory()

    slashed = mounted.path / "Detail 5／A - Stair.pdf"
    assert slashed.read_bytes() == b"bytes of Detail 5/A - Stair.pdf"
    assert (mounted.path / "．．").read_bytes() == b"bytes of .."

    os.rename(mounted.path / "Detail 5／A - Stair.pdf", mounted.path / "Detail 6／B.pdf")
    after = mounted.remote().root()
    names = {f["id"]: f["name"] for f in after["files"]}
    assert names[made["Detail 5/A - Stair.pdf"]] == "Detail 6/B.pdf"
