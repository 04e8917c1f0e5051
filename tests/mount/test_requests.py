"""What a walk of the mount costs in Procore requests (the rate limit is per user and hour)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import pytest

from tests.mount.conftest import MountFactory
from tests.mount.control import log_mark, requests_since

pytestmark = pytest.mark.mount

_FOLDER = re.compile(r"/folders/(\d+)$")


def test_a_cold_find_costs_one_request_per_folder_and_a_warm_one_none(
        demo_emulator: object, mount_factory: MountFactory) -> None:
    mounted = mount_factory(ttl=300, poll_budget=0)
    tree = mounted.remote().tree()
    folders = [item for item in tree.values() if item.kind == "dir"]
    # The mount may already have listed its root while coming up; count from before the walk
    # and allow the root to have been fetched already.
    mark = log_mark(mounted.emulator)

    cold = subprocess.run(["find", str(mounted.path)], capture_output=True, check=True)
    assert cold.stdout.count(b"\n") == len(tree)

    requests = requests_since(mounted.emulator, mark)
    listing = [r for r in requests if "/folders" in r["path"] or "/documents" in r["path"]]
    others = [f"{r['method']} {r['path']}" for r in requests if r not in listing]
    assert others == [], "a find needs no requests but listings"
    assert len(listing) <= len(folders)
    fetched = Counter(m.group(1) for r in listing if (m := _FOLDER.search(r["path"])))
    assert all(n == 1 for n in fetched.values()), fetched
    assert {int(i) for i in fetched} <= {item.id for item in folders}

    warm_mark = log_mark(mounted.emulator)
    warm = subprocess.run(["find", str(mounted.path)], capture_output=True, check=True)
    assert warm.stdout == cold.stdout
    subprocess.run(["ls", "-lR", str(mounted.path)], capture_output=True, check=True)
    # What Windows, macOS and desktop shells probe for, in every folder: answered from the
    # listing the mount already holds.
    for folder in folders:
        for probe in ("desktop.ini", ".DS_Store", ".hidden", "autorun.inf"):
            assert not (mounted.path / folder.path / probe).exists()
    assert requests_since(mounted.emulator, warm_mark) == []
