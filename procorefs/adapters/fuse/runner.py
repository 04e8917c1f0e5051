"""Running a FUSE mount of a ProcoreFS until it is unmounted.

Owns the libfuse options (one pure function, unit-tested) and the small mfusepy subclass that
passes renameat2 flags through (mfusepy 3.1.1 drops them, so without it
``renameat2(RENAME_EXCHANGE)`` would silently become an overwriting rename) and the handle of
an ftruncate (mfusepy 3.1.1 drops that too), and answers readdir as readdirplus.

Readdirplus: mfusepy 3.1.1 never passes ``FUSE_FILL_DIR_PLUS``, so every entry of an ``ls -l``
cost a ``lookup`` into Python. The subclass fills each entry with its full stat and that flag,
and libfuse hands entry and attributes to the kernel in the same reply. Two details of libfuse
3.14 and the kernel decide whether that works, both measured with a debug mount:
- libfuse 3.14 drops the attributes of entries filled with offset 0 (its list mode replies
  ``ino = 0``, "ignore these attributes"; fixed in 3.17, libfuse PR #896), so entries carry
  their 1-based position as offset and a request resumes at the offset it is given.
- the kernel's adaptive mode (``FUSE_CAP_READDIRPLUS_AUTO``) asks for readdirplus only for
  the first request of a listing (one 128 KiB buffer: 780 entries of short names here) and
  for plain readdir after it, until lookups follow; ``ls -l`` reads all names before it stats
  any, so 222 of 1,000 entries still cost a lookup. The mount turns adaptive mode off: every
  listing request is readdirplus. The attributes come from the listing the core holds
  anyway, so a plain ``ls`` or ``find`` pays only the filling (about 4 us an entry in Python).

Choices made here, deliberately:
- libfuse always runs in the foreground of its process and multi-threaded; making a
  background process is the app's job (forking inside libfuse would fork a threaded Python).
- no ``hard_remove``: unlinking, or renaming over, a file that is still open makes libfuse
  rename it to ``.fuse_hiddenXXXX`` until its last handle closes, then unlink that. The core
  treats ``.fuse_hidden*`` as a local-only name, so such a file is *set aside*: never uploaded,
  and its Procore DELETE is journaled when libfuse unlinks it (after the save-pattern grace
  period); a file renamed over an open one (git's ``config.lock -> config``, sqlite) becomes a
  new version of the same Procore file. In exchange the open descriptor keeps working fully,
  ``fstat`` included (with ``hard_remove`` the kernel asks by a path libfuse no longer has,
  and fstat answers ESTALE). tests/mount/test_write.py and docs/semantics.md back both halves.
- attr/entry/negative timeouts of 1 s; the core's own TTL caches sit behind them.
- ``default_permissions`` stays off for a private mount: only the mounting user can enter it
  (the kernel's rule without ``allow_other``) and the files show that user's uid/gid. With
  ``--allow-other`` it is switched on, so other local users get what the mode bits say
  (read-only) rather than the mounting user's full access.
- no ``direct_io`` (mmap and the page cache keep working); ``keep_cache`` is set per open.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from procorefs.adapters.fuse.library import LibraryInfo, load_mfusepy
from procorefs.adapters.fuse.operations import CoreFS, FuseOperations

log = logging.getLogger(__name__)


# libfuse 3: enum fuse_readdir_flags, enum fuse_fill_dir_flags, fuse_conn_info.want bits.
FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14


@dataclass(frozen=True)
class MountOptions:
    allow_other: bool = False
    attr_timeout: float = 1.0
    entry_timeout: float = 1.0
    negative_timeout: float = 1.0
    fsname: str = "procorefs"
    debug: bool = False


def fuse_options(options: MountOptions) -> dict[str, Any]:
    """The keyword options given to ``mfusepy.FUSE`` (they become ``-o`` options)."""
    opts: dict[str, Any] = {
        "foreground": True,
        "nothreads": False,
        "fsname": options.fsname,
        "attr_timeout": options.attr_timeout,
        "entry_timeout": options.entry_timeout,
        "negative_timeout": options.negative_timeout,
    }
    if sys.platform.startswith("linux"):
        opts["subtype"] = "procorefs"
    if options.allow_other:
        opts["allow_other"] = True
        opts["default_permissions"] = True
    if options.debug:
        opts["debug"] = True
    return opts


@cache
def _fuse_class() -> type[Any]:
    mfusepy, _ = load_mfusepy()
    c_stat = mfusepy.c_stat
    fields = {f[0] for f in c_stat._fields_}
    timespecs = {key: key + "spec" for key in ("st_atime", "st_mtime", "st_ctime", "st_birthtime")
                 if key + "spec" in fields}

    def to_c_stat(attrs: dict[str, int]) -> Any:
        # What mfusepy's set_st_attrs makes of getattr's dict (times in ns, as use_ns asks),
        # at half its cost: a listing converts a dict per entry.
        st = c_stat()
        for key, value in attrs.items():
            spec = timespecs.get(key)
            if spec is not None:
                timespec = getattr(st, spec)
                timespec.tv_sec, timespec.tv_nsec = divmod(value, 1_000_000_000)
            elif key in fields:
                setattr(st, key, value)
        return st

    class ProcoreFUSE(mfusepy.FUSE):  # type: ignore[misc, name-defined]
        """mfusepy's FUSE with renameat2 flags handed to ``Operations.rename``, the handle of an
        ftruncate to ``Operations.truncate``, and readdir answered as readdirplus."""

        def init_fuse_3(self, conn: Any, config: Any) -> None:
            # See the module docstring: adaptive readdirplus leaves most of a big folder to
            # per-entry lookups.
            if conn:
                conn.contents.want &= ~FUSE_CAP_READDIRPLUS_AUTO
            super().init_fuse_3(conn, config)

        def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int,
                           fip: Any, flags: int) -> int:
            decoded = None if path is None else path.decode(self.encoding, self.errors)
            listing = self.operations.listing(decoded, fip.contents.fh, offset)
            plus = FUSE_FILL_DIR_PLUS if flags & FUSE_READDIR_PLUS else 0
            for position in range(offset, len(listing)):
                item = listing[position]
                if isinstance(item, str):
                    # "." and "..": libfuse looks up no dot entry; their type is enough.
                    name, fill = item, 0
                    st = c_stat(st_mode=stat.S_IFDIR)
                else:
                    name, attrs, _ = item
                    st, fill = to_c_stat(attrs), plus
                # Offset position + 1, never 0 (see the module docstring); 1 = buffer full,
                # the kernel asks again from the last offset it took.
                if filler(buf, name.encode(self.encoding, self.errors), st, position + 1,
                          fill):
                    break
            return 0

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            result: int = self.operations.rename(
                old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors),
                flags)
            return result

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            # mfusepy 3.1.1 drops the handle of an ftruncate(); the core wants it (the file
            # may have been renamed or unlinked since it was opened).
            fi = fip.contents if fip else None
            result: int = self.operations.truncate(
                None if path is None else path.decode(self.encoding, self.errors), length, fi)
            return result

    return ProcoreFUSE


def library() -> LibraryInfo:
    """Which libfuse this process uses (loading it if needed)."""
    return load_mfusepy()[1]


def run_mount(fs: CoreFS, mountpoint: str, options: MountOptions, *,
              on_mounted: Callable[[], None] | None = None) -> None:
    """Mount ``fs`` at ``mountpoint`` and serve it until unmounted (or SIGINT/SIGTERM/SIGHUP).

    libfuse installs its own handlers for those signals while it runs: each ends the loop
    and unmounts cleanly before this function returns. Raises ``MountFailed`` when libfuse
    cannot mount (its own message is on stderr).
    """
    info = library()
    live = threading.Event()

    def mounted() -> None:
        live.set()
        if on_mounted is not None:
            on_mounted()

    if sys.platform == "win32":
        raise MountFailed("FUSE mounts are for Linux and macOS; Windows uses WinFsp")
    operations = FuseOperations(fs, uid=os.getuid(), gid=os.getgid(), on_mounted=mounted)
    kwargs = fuse_options(options)
    log.info("mounting at %s with %s", mountpoint, info)
    try:
        _fuse_class()(operations, mountpoint, raw_fi=True, **kwargs)
    except RuntimeError as exc:
        if not live.is_set():
            raise MountFailed(f"libfuse could not mount {mountpoint} (status {exc})") from None
        # fuse_main reports a loop ended by a signal (SIGINT/SIGTERM/SIGHUP) as status 8,
        # the same as a failed session; either way libfuse has unmounted by now.
        log.info("unmounted %s (libfuse status %s: stopped by a signal)", mountpoint, exc)
        return
    log.info("unmounted %s", mountpoint)


class MountFailed(RuntimeError):
    """libfuse refused to mount (its reason is on stderr)."""
