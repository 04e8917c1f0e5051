"""``procorefs mount P:`` end to end on the fake winfspy: the composition root picks WinFsp,
the Windows name codec, the project's name for the label, network mode, and sends what was
written before it returns, as the FUSE mount does."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from types import ModuleType

import pytest

from procorefs import app
from procorefs.adapters.winfsp import runner
from procorefs.config import Settings
from procorefs.emulator import seed
from tests.mount.remote import Remote
from tests.support.emulator import Emulator
from tests.windows import fakewinfspy
from tests.windows.conftest import USER_SID
from tests.windows.driver import Windows


def _settings(emulator: Emulator, tmp_path: Path) -> Settings:
    token = str(emulator.token(seed.DEMO_USER_LOGIN)["access_token"])
    return Settings(environment="custom", api_url=emulator.api_url, login_url=emulator.api_url,
                    access_token=token, project_id=seed.PROJECT_ID,
                    config_dir=tmp_path / "config", cache_dir=tmp_path / "cache",
                    state_dir=tmp_path / "state")


def test_a_drive_letter_mount_serves_the_project_and_commits_before_it_returns(
        fake_winfspy: ModuleType, demo_emulator: Emulator, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "current_user_sid", lambda: USER_SID)
    settings = _settings(demo_emulator, tmp_path)
    request = app.MountRequest(mountpoint=Path("*"), target="*", network=True,
                               commit_debounce=0.1)
    stop = threading.Event()
    seen: dict[str, object] = {}
    data = b"Is the beam W12x26 or W12x30?\r\n"

    def mounted(what: str) -> None:
        filesystem = fakewinfspy.FileSystem.instances[-1]
        seen.update(what=what, mountpoint=filesystem.mountpoint,
                    prefix=filesystem.volume_params["prefix"],
                    label=filesystem.operations.get_volume_info()["volume_label"])
        windows = Windows(filesystem.operations, fakewinfspy.NTStatusError)
        seen["listing"] = {e["file_name"] for e in windows.find_files("")}
        seen["recorded"] = app.running_mounts(settings)
        # A name typed with Windows look-alikes: only the Windows codec maps them back.
        windows.write_new_file("04 RFIs/Q： beam？.txt", data)
        stop.set()

    app.mount_foreground(settings, request, on_mounted=mounted, backend="winfsp", stop=stop)
    assert seen["mountpoint"] == "Z:"                 # "*": the first free letter from Z:
    assert seen["recorded"] == [Path("Z:")]  # found by its letter, not by "*"
    assert str(seen["prefix"]).startswith("\\procorefs\\")          # --network
    assert str(seen["label"]).startswith("Procore – ")
    assert seed.PROJECT_NAME.startswith(str(seen["label"])[len("Procore – "):].rstrip("…"))
    assert "01 Drawings" in seen["listing"]  # type: ignore[operator]
    assert fakewinfspy.FileSystem.instances[-1].started is False    # stopped, unmounted
    remote = Remote(demo_emulator.api_url, settings.access_token or "", seed.COMPANY_ID,
                    seed.PROJECT_ID)
    try:
        # Sent by the drain before mount_foreground returned: no waiting here.
        saved = remote.tree()["04 RFIs/Q: beam?.txt"]
        assert remote.sha256(saved) == hashlib.sha256(data).hexdigest()
    finally:
        remote.close()


def test_a_bad_drive_target_is_a_one_line_mount_error(
        fake_winfspy: ModuleType, demo_emulator: Emulator, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "current_user_sid", lambda: USER_SID)
    monkeypatch.setattr(runner, "used_drive_letters", lambda: {"C", "P"})
    request = app.MountRequest(mountpoint=Path("P:"), target="P:")
    with pytest.raises(app.MountError, match="P:"):
        app.mount_foreground(_settings(demo_emulator, tmp_path), request, backend="winfsp")


def test_no_free_drive_letter_is_a_one_line_mount_error(
        fake_winfspy: ModuleType, demo_emulator: Emulator, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "current_user_sid", lambda: USER_SID)
    monkeypatch.setattr(runner, "used_drive_letters",
                        lambda: {chr(c) for c in range(ord("A"), ord("Z") + 1)})
    request = app.MountRequest(mountpoint=Path("*"), target="*")
    with pytest.raises(app.MountError, match="no drive letter is free"):
        app.mount_foreground(_settings(demo_emulator, tmp_path), request, backend="winfsp")


def test_fuse_only_and_winfsp_only_options_are_refused_on_the_other(tmp_path: Path) -> None:
    settings = Settings(environment="production", api_url="", login_url="")
    (tmp_path / "mnt").mkdir()
    with pytest.raises(app.MountError, match="--network is for Windows"):
        app.mount_foreground(settings, app.MountRequest(mountpoint=tmp_path / "mnt",
                                                        network=True), backend="fuse")
    with pytest.raises(app.MountError, match="--allow-other is for FUSE"):
        app.mount_foreground(settings, app.MountRequest(mountpoint=Path("P:"), target="P:",
                                                        allow_other=True), backend="winfsp")
