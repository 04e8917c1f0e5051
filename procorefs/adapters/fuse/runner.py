"""Running a FUSE mount of a ProcoreFS until it is unmounted.

Owns the libfuse options (one pure function, unit-tested) and the small mfusepy subclass that
passes renameat2 flags through (mfusepy 3.1.1 drops them, so without it
``renameat2(RENAME_EXCHANGE)`` would silently become an overwriting rename) and the handle of
an ftruncate (mfusepy 3.1.1 drops that too), answers readdir as readdirplus and reads with
``read_buf``, and keeps one Python thread state per libfuse worker (``threadstate``).

Reads: a read of a Procore version is answered with a ``fuse_bufvec`` that names the content
cache's data file (``FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK``, at the read's offset) instead of the
bytes, and the mount asks libfuse to splice replies (``FUSE_CAP_SPLICE_WRITE``): libfuse then
splices the cache file's pages into a pipe and the pipe into the kernel's reply, in C and
without the GIL. The ``read`` callback it replaces made three copies per byte (``pread`` into
a Python bytes, mfusepy's ``memmove`` into libfuse's buffer under the GIL, ``writev`` to
``/dev/fuse``); this makes one, in the kernel, and the callback releases the GIL once instead
of twice. Measured on a 256 MiB file whose blocks were all cached (the FUSE path alone):
1.15 GB/s and 0.15 CPU-seconds before, 1.8 GB/s and 0.09 after; without the splice 1.23 GB/s.
The core keeps the blocks present and the descriptor open (the handle's pin on the version)
until the handle's ``release``, and the kernel sends ``release`` only once every read of the
file was answered (a read holds the file; readahead holds the kernel's fuse_file), so
libfuse never reads a closed or reused descriptor.
Bytes being written (staged) are answered as a malloc'd copy, as ``read`` did. libfuse frees
the ``fuse_bufvec`` (and a copy) with ``free`` after the reply, so both come from the C
library's ``malloc``.

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

import ctypes
import errno
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
from procorefs.adapters.fuse.readahead import raise_readahead_soon
from procorefs.adapters.fuse.threadstate import ThreadStates

log = logging.getLogger(__name__)


# libfuse 3: enum fuse_readdir_flags, enum fuse_fill_dir_flags, fuse_conn_info.want bits.
FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
FUSE_CAP_SPLICE_WRITE = 1 << 7
# enum fuse_buf_flags
FUSE_BUF_IS_FD = 1 << 1
FUSE_BUF_FD_SEEK = 1 << 2
FUSE_BUF_FD_RETRY = 1 << 3


class FuseBuf(ctypes.Structure):
    """libfuse 3's ``struct fuse_buf``."""

    _fields_ = [("size", ctypes.c_size_t), ("flags", ctypes.c_int), ("mem", ctypes.c_void_p),
                ("fd", ctypes.c_int), ("pos", ctypes.c_int64)]


class FuseBufvec(ctypes.Structure):
    """libfuse 3's ``struct fuse_bufvec`` with its one inline buffer (mfusepy 3.1.1 declares
    ``buf`` as a pointer, which is not libfuse's layout)."""

    _fields_ = [("count", ctypes.c_size_t), ("idx", ctypes.c_size_t), ("off", ctypes.c_size_t),
                ("buf", FuseBuf * 1)]


# libfuse frees a read_buf answer with free(): it must come from the C library's malloc.
# PyDLL: called without dropping the GIL (malloc does not block; a drop costs a hand-off).
_libc = ctypes.PyDLL(None)
_malloc = _libc.malloc
_malloc.argtypes = [ctypes.c_size_t]
_malloc.restype = ctypes.c_void_p
_free = _libc.free
_free.argtypes = [ctypes.c_void_p]
_free.restype = None
_VOID_PP = ctypes.POINTER(ctypes.c_void_p)


def bufvec(answer: bytes | tuple[int, int, int]) -> int:
    """A malloc'd ``fuse_bufvec`` for a read's answer: a descriptor range libfuse reads
    (or splices) itself, or a copy of the bytes. libfuse frees it (and a copy) after the
    reply."""
    address: int | None = _malloc(ctypes.sizeof(FuseBufvec))
    if not address:
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
    vec = FuseBufvec.from_address(address)
    vec.count, vec.idx, vec.off = 1, 0, 0
    buf = vec.buf[0]
    if isinstance(answer, tuple):
        buf.fd, buf.pos, buf.size = answer
        buf.flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY
        buf.mem = None
        return address
    buf.flags, buf.fd, buf.pos, buf.size, buf.mem = 0, -1, 0, len(answer), None
    if answer:
        mem: int | None = _malloc(len(answer))
        if not mem:
            _free(address)
            raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
        ctypes.memmove(mem, answer, len(answer))
        buf.mem = mem
    return address


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
        ftruncate to ``Operations.truncate``, readdir answered as readdirplus, reads answered
        with the content cache's descriptor (``read_buf``), and a Python thread state kept
        per libfuse worker."""

        _thread_states: ThreadStates | None = None  # None: driven without a loop (tests)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # mfusepy's constructor is the whole loop (fuse_main). When it returns, libfuse
            # has joined its workers, so the thread states they kept can be deleted.
            self._thread_states = states = ThreadStates()
            try:
                super().__init__(*args, **kwargs)
            finally:
                log.debug("deleted the thread states of %d libfuse workers", states.retire())

        def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
            # mfusepy calls every callback through this: the first call on a libfuse worker
            # keeps that thread's Python state (module docstring of threadstate).
            states = self._thread_states
            if states is not None:
                states.keep()
            return super()._wrapper(func, *args, **kwargs)

        def init_fuse_3(self, conn: Any, config: Any) -> None:
            # See the module docstring: adaptive readdirplus leaves most of a big folder to
            # per-entry lookups.
            if conn:
                conn.contents.want &= ~FUSE_CAP_READDIRPLUS_AUTO
                # read_buf answers point at the cache file: libfuse splices them to the kernel
                # (no copy through its own buffer). Asking for more than the kernel offers
                # makes libfuse refuse the mount.
                if conn.contents.capable & FUSE_CAP_SPLICE_WRITE:
                    conn.contents.want |= FUSE_CAP_SPLICE_WRITE
            super().init_fuse_3(conn, config)

        def read_buf(self, path: bytes | None, bufpp: Any, size: int, offset: int,
                     fip: Any) -> int:
            # libfuse prefers read_buf to read when both exist. An error raised here never
            # sets *bufpp: libfuse then replies -errno and frees nothing.
            answer = self.operations.read_buf(
                None if path is None else path.decode(self.encoding, self.errors), size,
                offset, fip.contents)
            ctypes.cast(bufpp, _VOID_PP)[0] = bufvec(answer)
            return 0

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
        if sys.platform.startswith("linux"):
            raise_readahead_soon(mountpoint)  # 128 KiB FUSE reads otherwise (readahead.py)
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
