"""Which libfuse the adapter loads, the libfuse options it mounts with, and rename flags."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from procorefs.adapters.fuse import library
from procorefs.adapters.fuse.operations import RENAME_EXCHANGE, RENAME_NOREPLACE
from procorefs.adapters.fuse.runner import MountOptions, _fuse_class, fuse_options

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux libfuse3")

_PROBE = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
from procorefs.adapters.fuse.library import load_mfusepy
module, info = load_mfusepy()
print("ENV", os.environ.get("FUSE_LIBRARY_NAME"))
print("LOADED", info.major, module._libfuse_path)
"""


@linux_only
def test_a_fresh_process_loads_libfuse3_and_says_so() -> None:
    env = {"PATH": "/usr/bin:/bin"}  # no FUSE_LIBRARY_* inherited from the caller
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "ENV fuse3" in out
    loaded = next(line for line in out.splitlines() if line.startswith("LOADED"))
    _, major, path = loaded.split(" ", 2)
    assert major == "3"
    assert "fuse3" in path
    assert "procorefs.adapters.fuse.library FUSE binding: mfusepy on libfuse 3." in out


@linux_only
def test_this_process_uses_libfuse3() -> None:
    module, info = library.load_mfusepy()
    assert info.major == 3 == module.fuse_version_major
    assert "fuse3" in info.path


def test_a_library_of_the_wrong_major_version_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, info = library.load_mfusepy()
    monkeypatch.setattr(library, "_loaded", None)
    monkeypatch.setattr(library, "required_major", lambda: info.major + 1)
    with pytest.raises(library.FuseUnavailable, match=f"needs libfuse {info.major + 1}"):
        library.load_mfusepy()


def test_default_options_make_a_private_multithreaded_foreground_mount() -> None:
    opts = fuse_options(MountOptions())
    assert opts["foreground"] is True and opts["nothreads"] is False
    assert "allow_other" not in opts and "default_permissions" not in opts
    assert opts["attr_timeout"] == opts["entry_timeout"] == opts["negative_timeout"] == 1.0
    assert "hard_remove" not in opts    # unlinked open files live on as .fuse_hidden*
    assert not {"direct_io", "kernel_cache", "auto_cache", "use_ino", "nullpath_ok",
                "nopath"} & set(opts)
    assert opts["fsname"] == "procorefs"


def test_allow_other_switches_on_kernel_permission_checks() -> None:
    opts = fuse_options(MountOptions(allow_other=True))
    assert opts["allow_other"] is True and opts["default_permissions"] is True


@pytest.mark.parametrize("flags", [0, RENAME_NOREPLACE, RENAME_EXCHANGE])
def test_the_fuse_class_hands_rename_flags_to_the_operations(flags: int) -> None:
    seen: list[tuple[str, str, int]] = []

    def rename(old: str, new: str, flags: int) -> int:
        seen.append((old, new, flags))
        return 0

    fake_self = SimpleNamespace(encoding="utf-8", errors="surrogateescape",
                                operations=SimpleNamespace(rename=rename))
    result = _fuse_class().rename_fuse_3(fake_self, "/ä".encode(), b"/b", flags)
    assert result == 0
    assert seen == [("/ä", "/b", flags)]
