"""Loading mfusepy bound to libfuse 3, and saying which library was loaded.

mfusepy picks the library once, at import time, from environment variables. With libfuse 2
and 3 both installed it takes libfuse 2 by default, under which writes arrive as 4 KiB
requests (see shared/fuse-notes.md), so on Linux this module asks for ``fuse3`` before the
first import and refuses to go on if anything else was loaded. macOS has only the libfuse 2
API (macFUSE, FUSE-T), which mfusepy finds itself. Every other module of the adapter gets
mfusepy through :func:`load_mfusepy`, never by importing it directly.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: tuple[ModuleType, LibraryInfo] | None = None


@dataclass(frozen=True)
class LibraryInfo:
    path: str
    major: int
    minor: int

    def __str__(self) -> str:
        return f"libfuse {self.major}.{self.minor} ({self.path})"


class FuseUnavailable(RuntimeError):
    """No usable libfuse: not installed, or the wrong major version was loaded."""


def required_major() -> int | None:
    """The libfuse major version this platform must use (None: whatever mfusepy finds)."""
    return 3 if sys.platform.startswith("linux") else None


def load_mfusepy() -> tuple[ModuleType, LibraryInfo]:
    """Import mfusepy bound to the right libfuse (once per process) and log which one."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        need = required_major()
        if need == 3 and "mfusepy" not in sys.modules and not os.environ.get("FUSE_LIBRARY_PATH"):
            os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
        try:
            module = importlib.import_module("mfusepy")
        except (OSError, AttributeError) as exc:
            raise FuseUnavailable(f"libfuse cannot be loaded ({exc}); install fuse3 "
                                  "(Debian/Ubuntu: apt install fuse3)") from None
        info = LibraryInfo(
            path=str(getattr(module, "_libfuse_path", "?")),
            major=int(module.fuse_version_major),
            minor=int(module.fuse_version_minor),
        )
        if need is not None and info.major != need:
            raise FuseUnavailable(
                f"mfusepy loaded {info}, but procorefs needs libfuse {need} here; unset "
                "FUSE_LIBRARY_PATH or point it at libfuse3.so.3")
        log.info("FUSE binding: mfusepy on %s", info)
        _loaded = (module, info)
        return _loaded
