"""The kernel's readahead window of this mount: raised to 1 MiB where the mounting user may.

A FUSE mount reads ahead by its backing device info's ``read_ahead_kb``, 128 KiB unless
someone changes it, and the ``max_readahead`` a filesystem answers at init can only lower
that. A sequential read through the mount is then a stream of 128 KiB FUSE requests, about two
in flight, each a round trip through the kernel, libfuse and Python. With 1 MiB the kernel
asks for up to 1 MiB per request (libfuse 3 negotiates 256 pages per request). Measured on the
2-core build machine, a cold 256 MiB read against the direct client's download of the same
bytes, 4 paired runs: 0.81 x (128 KiB) against 0.93 x (1 MiB) median, the mount's CPU the same.

Only root may write ``/sys/class/bdi/<major>:<minor>/read_ahead_kb``, so an unprivileged
mount keeps the kernel's 128 KiB and says so in its debug log; ``docs/performance.md`` gives
the command an administrator runs. Only this mount's own device is touched (every FUSE mount
has its own), and never lowered.

When: after the kernel has taken libfuse's reply to ``FUSE_INIT``, which sets the window to
the smaller of the device's and the reply's ``max_readahead`` (128 KiB, what the kernel
offered), so a window raised before it is lowered again (seen: 1 mount test in 3). libfuse
calls ``init``, where the mount is announced, before it sends that reply. So a thread of its
own waits until the mount is listed in ``/proc/self/mountinfo`` (the device is read there),
then ``stat``s the mountpoint: the kernel holds every request until ``FUSE_INIT`` is answered,
so when the ``stat`` returns the reply has been taken, and the window is raised after it.
A file opened in the few milliseconds before that keeps the 128 KiB it was opened with.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

READAHEAD_KB = 1024


def unescape_mount_field(text: str) -> str:
    r"""A path field of /proc/self/mounts or mountinfo, whose spaces and such are ``\040``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mount_device(mountpoint: str, mountinfo: str) -> str | None:
    """``major:minor`` of the last mount at ``mountpoint`` in mountinfo text, or None."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and unescape_mount_field(fields[4]) == mountpoint:
            found = fields[2]
    return found


def raise_readahead(mountpoint: str, *, kb: int = READAHEAD_KB, timeout: float = 5.0,
                    proc: Path = Path("/proc/self/mountinfo"),
                    sysfs: Path = Path("/sys/class/bdi"),
                    initialized: Callable[[str], object] = os.stat) -> int | None:
    """Wait (up to ``timeout``) for the mount to be listed, then (once ``initialized``
    returns) make its readahead at least ``kb`` KiB. Returns the readahead it has
    afterwards, or None if it could not be read."""
    deadline = time.monotonic() + timeout
    device = None
    while device is None:
        try:
            device = mount_device(mountpoint, proc.read_text(encoding="utf-8"))
        except OSError as exc:
            log.debug("readahead: cannot read %s: %s", proc, exc.strerror)
            return None
        if device is None:
            if time.monotonic() > deadline:
                log.debug("readahead: %s is not in %s", mountpoint, proc)
                return None
            time.sleep(0.02)
    try:
        initialized(mountpoint)
    except OSError as exc:
        log.debug("readahead: %s does not answer: %s", mountpoint, exc.strerror)
        return None
    knob = sysfs / device / "read_ahead_kb"
    try:
        now = int(knob.read_text(encoding="ascii"))
    except (OSError, ValueError) as exc:
        log.debug("readahead: cannot read %s: %s", knob, exc)
        return None
    if now >= kb:
        return now
    try:
        knob.write_text(f"{kb}\n", encoding="ascii")
    except OSError as exc:
        log.debug("readahead of %s stays %d KiB: %s is not writable (%s); see "
                  "docs/performance.md", mountpoint, now, knob, exc.strerror)
        return now
    log.debug("readahead of %s raised from %d to %d KiB", mountpoint, now, kb)
    return kb


def raise_readahead_soon(mountpoint: str) -> None:
    """``raise_readahead`` on a thread of its own, so ``init`` is not held up."""
    threading.Thread(target=raise_readahead, args=(mountpoint,), daemon=True,
                     name="procorefs-readahead").start()
