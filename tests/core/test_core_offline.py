"""Offline: the core answers from what it saw (in memory, or on disk after a restart)."""

from __future__ import annotations

import errno
import os

import pytest

from procorefs.emulator import seed
from procorefs.errors import FsError
from tests.core.conftest import CoreEnv


@pytest.mark.allow_log("Procore cannot be reached")
def test_restart_offline_answers_from_the_saved_metadata_and_content(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    listing = sorted(e.name for e in fs.readdir("/04 RFIs"))
    path = "/" + seed.MULTI_VERSION_PATHS[0]
    handle = fs.open(path, os.O_RDONLY)
    content = fs.read(handle, 0, 1 << 20)
    fs.release(handle)
    fs.close()
    client = core_env.client(max_retries=0)  # signed in while online
    core_env.emulator.stop()
    try:
        again = core_env.fs(client=client)
        assert sorted(e.name for e in again.readdir("/04 RFIs")) == listing
        handle = again.open(path, os.O_RDONLY)
        assert again.read(handle, 0, 1 << 20) == content  # from the content cache
        again.release(handle)
        with pytest.raises(FsError) as info:
            again.readdir("/06 Photos")  # listed by name, never opened
        assert info.value.errno == errno.EHOSTUNREACH
    finally:
        core_env.emulator.start()
