"""The mount's composition root and CLI plumbing that needs no kernel: mountpoint checks,
per-mount file names, the background child's command line, and reading a dead child's error."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pytest

from procorefs import app
from procorefs.adapters.fuse.readahead import unescape_mount_field
from procorefs.cli import build_parser
from procorefs.cli.mount import child_argv
from procorefs.config import Settings, settings_from_args
from procorefs.core.fs import Layout


def test_a_missing_mountpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(app.MountError, match="does not exist"):
        app.check_mountpoint(tmp_path / "nope")


def test_a_file_is_not_a_mountpoint(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(app.MountError, match="not a directory"):
        app.check_mountpoint(tmp_path / "f")


def test_a_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(app.MountError, match="not empty"):
        app.check_mountpoint(tmp_path)


def test_something_already_mounted_is_refused() -> None:
    with pytest.raises(app.MountError, match="already a mount point"):
        app.check_mountpoint(Path("/proc"))


def test_an_empty_directory_is_accepted_and_made_absolute(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mnt").mkdir()
    monkeypatch.chdir(tmp_path)
    assert app.check_mountpoint(Path("mnt")) == tmp_path / "mnt"


def test_mount_slugs_are_readable_unique_and_file_safe() -> None:
    a = app.mount_slug(Path("/home/dana/Procore/Harbor View"))
    b = app.mount_slug(Path("/home/dana/Procore/Harbor-View"))
    assert a != b
    assert a.startswith("home-dana-Procore-Harbor-View-")
    assert "/" not in a and " " not in a
    assert app.mount_slug(Path("/")).startswith("root-")


def test_the_mount_table_unescapes_spaces() -> None:
    assert unescape_mount_field(r"/home/dana/My\040Docs") == "/home/dana/My Docs"


def test_unmounting_what_is_not_mounted_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(app.MountError, match="not mounted"):
        app.unmount(settings, tmp_path)


def test_unmounting_a_non_fuse_mount_is_refused(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/mounts")
    with pytest.raises(app.MountError, match="not a procorefs mount"):
        app.unmount(_settings(tmp_path), Path("/proc"))


def test_the_unmount_command_uses_fusermount3_on_linux(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux")
    argv = app.unmount_command(tmp_path)
    assert Path(argv[0]).name.startswith("fusermount") and argv[1:] == ["-u", str(tmp_path)]
    assert app.unmount_command(tmp_path, lazy=True)[1:] == ["-u", "-z", str(tmp_path)]


def test_a_dead_childs_last_words_become_the_error(tmp_path: Path) -> None:
    err = tmp_path / "err"
    err.write_text("Ignoring invalid max threads value 4294967295 > max (100000).\n"
                   "procorefs: not signed in to Procore (token expired)\n\n")
    assert app._child_failure(err, 2) == "not signed in to Procore (token expired)"
    err.write_text("")
    assert "status 3" in app._child_failure(err, 3)


def test_the_background_child_gets_the_same_flags_plus_foreground(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["-vv", "mount", str(tmp_path / "mnt"), "--api-url",
                              "http://127.0.0.1:9", "--project", "318842", "--ttl", "2.5",
                              "--poll-budget", "0", "--allow-other", "--cache-dir",
                              str(tmp_path / "c")])
    argv = child_argv(args)
    assert argv[:3] == [sys.executable, "-m", "procorefs"]
    assert argv[3:6] == ["-v", "-v", "mount"]
    assert argv[-3:] == ["--foreground", "--", str(tmp_path / "mnt")]
    flags = argv[6:-3]
    assert "--allow-other" in flags
    flags.remove("--allow-other")
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs == {"--api-url": "http://127.0.0.1:9", "--project": "318842", "--ttl": "2.5",
                     "--poll-budget": "0", "--cache-dir": str(tmp_path / "c")}
    # The child parses what it is given into the same settings.
    again = parser.parse_args(argv[3:])
    assert (again.foreground, again.ttl, again.project_id, again.allow_other) == (
        True, 2.5, 318842, True)


def test_mount_options_are_validated_by_the_parser() -> None:
    parser = build_parser()
    for bad in (["--ttl", "0"], ["--ttl", "-1"], ["--poll-budget", "-2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["mount", "/mnt", *bad])


def _settings(tmp_path: Path) -> Settings:
    env = {"PROCOREFS_STATE_DIR": str(tmp_path / "state"),
           "PROCOREFS_CACHE_DIR": str(tmp_path / "cache"),
           "PROCOREFS_CONFIG": str(tmp_path / "config.toml")}
    (tmp_path / "config.toml").write_text("")
    return settings_from_args(argparse.Namespace(), environ=env)


def test_the_log_path_is_per_mount(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    log = app.log_path(settings, Path("/mnt/a"))
    assert log.parent == tmp_path / "state" / "logs" and log.name.startswith("mount-mnt-a-")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_mount_process_that_exited_counts_as_gone_before_its_parent_reaps_it() -> None:
    # A foreground mount started by a shell or a test runner is not our child: once it exits
    # it stays a zombie until that parent waits, and `unmount` must not wait for it.
    import subprocess

    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, time\n"
         "pid = os.fork()\n"
         "if pid == 0:\n"
         "    os._exit(0)\n"
         "print(pid, flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        orphan = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while not app._is_zombie(orphan):
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        assert app._alive(orphan) is False
        assert app._alive(parent.pid) is True
    finally:
        parent.communicate("", timeout=10)


def test_the_local_only_name_set_follows_the_settings() -> None:
    base = Settings(environment="production", api_url="", login_url="")
    default = app.local_name_policy(base)
    assert default.is_local_only("notes.tmp") and not default.is_local_only("scratch-1.txt")
    changed = app.local_name_policy(dataclasses.replace(
        base, local_only=("scratch-*",), not_local_only=("*.tmp",), upload_dwg_backups=True))
    assert changed.is_local_only("scratch-1.txt")
    assert not changed.is_local_only("notes.tmp")
    assert changed.is_local_only("~WRD0001.tmp")     # another default glob still holds
    assert changed.is_local_only("~$Report.docx")
    assert not changed.is_local_only("Plan.bak", lambda name: name == "Plan.dwg")
    assert default.is_local_only("Plan.bak", lambda name: name == "Plan.dwg")
    with pytest.raises(app.MountError, match="not one of the default"):
        app.local_name_policy(dataclasses.replace(base, not_local_only=("*.docx",)))


def test_download_parallel_sets_how_many_ranges_the_mount_prefetches_at_once(
        tmp_path: Path) -> None:
    settings = Settings(environment="production", api_url="", login_url="",
                        download_parallel=2)
    request = app.MountRequest(mountpoint=tmp_path / "m", cache_dir=tmp_path / "cache")
    config = app.core_config(settings, request, Layout("all"))
    assert config.prefetch_workers == 2
    default = app.core_config(dataclasses.replace(settings, download_parallel=4), request,
                              Layout("all"))
    assert default.prefetch_workers == 4


def test_repeated_local_only_flags_reach_the_background_child(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["mount", str(tmp_path / "mnt"), "--local-only", "a-*",
                              "--local-only", "b-*", "--upload-dwg-backups"])
    again = parser.parse_args(child_argv(args)[3:])
    assert again.local_only == ["a-*", "b-*"]
    assert again.upload_dwg_backups is True
    assert settings_from_args(again, {}).local_only == ("a-*", "b-*")


@pytest.mark.allow_log("a warning from httpx")
@pytest.mark.parametrize(("verbosity", "kept"), [(0, False), (1, False), (2, True)])
def test_the_mount_log_keeps_httpxs_request_lines_only_at_vv(tmp_path: Path, verbosity: int,
                                                            kept: bool) -> None:
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_log = logging.getLogger("httpx")
    httpx_level = httpx_log.level
    settings = Settings(environment="production", api_url="", login_url="",
                        state_dir=tmp_path / "state")
    try:
        path = app.setup_mount_logging(settings, tmp_path / "mnt", verbosity)
        httpx_log.info('HTTP Request: GET https://api.procore.com/rest/v1.0/me "HTTP/1.1 200 OK"')
        httpx_log.warning("a warning from httpx")
        logging.getLogger("procorefs.core").info("mounted")
        for handler in root.handlers:
            handler.flush()
        text = path.read_text(encoding="utf-8")
    finally:
        for handler in root.handlers[len(handlers):]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
        httpx_log.setLevel(httpx_level)
    assert ("HTTP Request" in text) is kept
    assert "a warning from httpx" in text and "mounted" in text
