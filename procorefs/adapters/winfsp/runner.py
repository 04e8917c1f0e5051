"""Running a WinFsp mount of a ProcoreFS until it is stopped (Windows).

``run_mount`` is the Windows counterpart of ``adapters.fuse.runner.run_mount``: it resolves
the target (``P:``, ``*`` or a directory, ``mountpoint.py``), asks Windows which drive letters
are taken and who the user is (the security descriptor gives that user full control), builds
the volume options, starts the WinFsp dispatcher and serves until ``stop`` is set, Ctrl-C or
Ctrl-Break arrives, or SIGTERM. The core must have been built with
``CoreConfig(codec=WindowsNameCodec())``: the names WinFsp hands over are local Windows names.

``operations`` (and with it winfspy) is imported only here, when a mount is made, so that this
module and its pure helpers import on any OS.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from procorefs.adapters.winfsp import fileinfo
from procorefs.adapters.winfsp.corefs import CoreFS
from procorefs.adapters.winfsp.mountpoint import (
    VolumeOptions,
    default_sddl,
    letters_from_mask,
    parse_target,
    resolve_target,
    volume_label,
    volume_params,
)

log = logging.getLogger(__name__)

# How often the serving loop wakes to let Ctrl-C through (Event.wait blocks it on Windows).
_WAKE = 0.5


@dataclass(frozen=True)
class WinMountOptions:
    name: str = ""  # what the label shows: the project's or company's name
    network: bool = False
    file_info_timeout_ms: int = 1000
    dir_info_timeout_ms: int = 1000
    debug: bool = False
    stop: threading.Event = field(default_factory=threading.Event, compare=False)


def used_drive_letters() -> set[str]:
    """The drive letters Windows has in use (empty elsewhere)."""
    if sys.platform == "win32":
        import ctypes

        return letters_from_mask(int(ctypes.windll.kernel32.GetLogicalDrives()))
    return set()


def free_drive_letter() -> str:
    """The letter ``*`` mounts on now: the first free one from Z: (``MountTargetError`` if
    none is)."""
    return resolve_target(parse_target("*"), used_drive_letters())


def current_user_sid() -> str:
    """The string SID of the user this process runs as (Windows only)."""
    if sys.platform != "win32":
        raise OSError("a Windows SID exists only on Windows")
    import ctypes
    from ctypes import wintypes

    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    kernel32.LocalFree.argtypes = [ctypes.c_void_p]
    advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD,
                                          ctypes.POINTER(wintypes.HANDLE)]
    advapi32.GetTokenInformation.argtypes = [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p,
                                             wintypes.DWORD, ctypes.POINTER(wintypes.DWORD)]
    advapi32.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p,
                                                ctypes.POINTER(wintypes.LPWSTR)]
    token_query, token_user = 0x0008, 1
    token = wintypes.HANDLE()
    if not advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), token_query,
                                     ctypes.byref(token)):
        raise ctypes.WinError(ctypes.get_last_error())
    try:
        size = wintypes.DWORD(0)
        advapi32.GetTokenInformation(token, token_user, None, 0, ctypes.byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        if not advapi32.GetTokenInformation(token, token_user, buffer, size,
                                            ctypes.byref(size)):
            raise ctypes.WinError(ctypes.get_last_error())
        # TOKEN_USER starts with SID_AND_ATTRIBUTES, whose first field is the PSID.
        sid = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_void_p))[0]
        text = wintypes.LPWSTR()
        if not advapi32.ConvertSidToStringSidW(sid, ctypes.byref(text)):
            raise ctypes.WinError(ctypes.get_last_error())
        try:
            return str(text.value)
        finally:
            kernel32.LocalFree(text)
    finally:
        kernel32.CloseHandle(token)


def run_mount(fs: CoreFS, target: str, options: WinMountOptions, *,
              on_mounted: Callable[[str], None] | None = None,
              used_letters: set[str] | None = None, user_sid: str | None = None) -> None:
    """Mount ``fs`` at ``target`` and serve it until ``options.stop`` is set or Ctrl-C.

    ``on_mounted`` gets the mountpoint once WinFsp serves it. Raises
    ``mountpoint.MountTargetError`` for a target that cannot be used.
    """
    from procorefs.adapters.winfsp import operations

    taken = used_drive_letters() if used_letters is None else used_letters
    mountpoint = resolve_target(parse_target(target), taken)
    label = volume_label(options.name or "Documents")
    volume = VolumeOptions(label_name=options.name, network=options.network,
                           share=options.name, file_info_timeout_ms=options.file_info_timeout_ms,
                           dir_info_timeout_ms=options.dir_info_timeout_ms)
    params = volume_params(volume, mountpoint,
                           creation_filetime=fileinfo.to_filetime(time.time()))
    sddl = default_sddl(user_sid or current_user_sid())
    ops = operations.ProcoreOperations(fs, label=label, sddl=sddl)
    filesystem = operations.create_file_system(mountpoint, ops, params, debug=options.debug)
    stop = options.stop
    restore = _stop_on_signals(stop)
    try:
        filesystem.start()
        log.info("mounted at %s (%s%s)", mountpoint, label,
                 ", network drive " + params["prefix"] if params["prefix"] else "")
        if on_mounted is not None:
            on_mounted(mountpoint)
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(_WAKE):
                pass
    finally:
        restore()
        with contextlib.suppress(Exception):
            filesystem.stop()
        log.info("unmounted %s", mountpoint)


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM (and SIGBREAK on Windows) set ``stop``; returns what restores the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    wanted = [signal.SIGTERM]
    if sys.platform == "win32":
        wanted.append(signal.SIGBREAK)
    previous = {}
    for sig in wanted:
        previous[sig] = signal.signal(sig, lambda *_: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
