"""The Windows mount runner over the fake winfspy: target, volume options, start and stop."""

from __future__ import annotations

import signal
import threading
from types import ModuleType

import pytest

from procorefs.adapters.winfsp.mountpoint import MountTargetError
from procorefs.adapters.winfsp.runner import WinMountOptions, run_mount
from procorefs.emulator import seed
from tests.windows import fakewinfspy
from tests.windows.conftest import USER_SID, WinEnv


def test_star_mounts_on_the_last_free_letter_and_serves_until_stopped(win: WinEnv) -> None:
    options = WinMountOptions(name=seed.PROJECT_NAME)
    seen: list[str] = []
    handler = signal.getsignal(signal.SIGTERM)

    def mounted(mountpoint: str) -> None:
        filesystem = fakewinfspy.FileSystem.instances[-1]
        assert filesystem.started
        # While it serves, SIGTERM stops it.
        assert signal.getsignal(signal.SIGTERM) is not handler
        seen.append(mountpoint)
        options.stop.set()

    assert win.fs is not None
    run_mount(win.fs, "*", options, on_mounted=mounted, used_letters={"C", "D", "Z"},
              user_sid=USER_SID)
    filesystem = fakewinfspy.FileSystem.instances[-1]
    assert seen == ["Y:"]
    assert filesystem.mountpoint == "Y:"
    assert (filesystem.starts, filesystem.stops, filesystem.started) == (1, 1, False)
    assert signal.getsignal(signal.SIGTERM) is handler
    params = filesystem.volume_params
    assert params["prefix"] == ""
    assert params["case_sensitive_search"] == 0 and params["case_preserved_names"] == 1
    assert params["file_info_timeout"] == 1000 and params["dir_info_timeout"] == 1000
    assert params["persistent_acls"] == 0
    ops = filesystem.operations
    assert ops.get_volume_info()["volume_label"] == "Procore – Harbor View Medical O…"
    assert ops.get_security_by_name("\\")[1].startswith(f"O:{USER_SID}")


def test_network_mode_on_a_chosen_letter(win: WinEnv) -> None:
    options = WinMountOptions(name="Harbor View", network=True)
    assert win.fs is not None
    runner = threading.Thread(target=run_mount, args=(win.fs, "p:", options),
                              kwargs={"used_letters": {"C"}, "user_sid": USER_SID})
    runner.start()
    options.stop.set()
    runner.join(30)
    assert not runner.is_alive()
    filesystem = fakewinfspy.FileSystem.instances[-1]
    assert filesystem.mountpoint == "P:"
    assert filesystem.volume_params["prefix"] == "\\procorefs\\Harbor-View"
    assert filesystem.stops == 1


def test_a_letter_in_use_is_refused_before_anything_mounts(
        win: WinEnv, fake_winfspy: ModuleType) -> None:
    count = len(fakewinfspy.FileSystem.instances)
    assert win.fs is not None
    with pytest.raises(MountTargetError, match="P: is already in use"):
        run_mount(win.fs, "P:", WinMountOptions(), used_letters={"C", "P"},
                  user_sid=USER_SID)
    assert len(fakewinfspy.FileSystem.instances) == count
