"""Whether the mount tier can run here, and what to do when it cannot.

On a developer machine without FUSE the tier is skipped; under CI (the ``CI`` environment
variable is set) it fails instead, because CI must never skip the tier silently.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

import pytest


def fuse_unavailable() -> str | None:
    """Why a FUSE mount cannot work here, or None."""
    if not sys.platform.startswith("linux"):
        return "the mount tier runs on Linux"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (apt install fuse3)"
    from procorefs.adapters.fuse.library import FuseUnavailable, load_mfusepy
    try:
        load_mfusepy()
    except FuseUnavailable as exc:
        return str(exc)
    return None


def gate(reason: str | None, environ: Mapping[str, str]) -> None:
    if reason is None:
        return
    if environ.get("CI"):
        pytest.fail(f"CI must run the mount tier, but {reason}", pytrace=False)
    pytest.skip(f"no FUSE here: {reason}")
