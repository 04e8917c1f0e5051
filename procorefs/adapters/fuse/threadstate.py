"""Python thread states kept alive on libfuse's worker threads, and deleted after the loop.

mfusepy's callbacks are ctypes callbacks, and libfuse calls them on threads Python did not
start. On such a thread ctypes makes a thread state for every call (``PyGILState_Ensure``)
and destroys it on return (``PyGILState_Release``). In Python 3.11 each of those costs a
16 KiB ``mmap`` and ``munmap`` (the first chunk of the frame stack; the ``munmap`` flushes the
TLB of every CPU the process runs on), a ``gettid`` and the runtime's thread-list lock: per
FUSE request, two thousand times for a 256 MiB read.

``ThreadStates.keep``, called at the start of every callback, makes one more
``PyGILState_Ensure`` on a thread the first time it calls back and never releases it: ctypes'
own Ensure/Release per call then nest inside it, find the state and leave it alive (Release
only drops the GIL). What a thread keeps is its state and a ``threading.local`` entry.

Lifetime:
- libfuse 3.12+ keeps its workers for the whole loop (``max_idle_threads`` is unlimited unless
  given) and cancels and joins them before ``fuse_main`` returns. The states they kept then
  belong to threads that have ended; ``retire`` (after the loop) clears and deletes them, with
  the GIL held, as CPython itself does for the states of ended threads at exit. Nothing is
  left for the interpreter's shutdown, and a process that mounts again does not pile them up.
- The thread that runs the loop is never given one: it is a Python thread with a state of its
  own, and libfuse calls back on it after the loop (``unlink`` of hidden files at unmount).
- A worker that libfuse ended early (only with ``max_idle_threads``) leaves its state until
  ``retire``: bounded by the threads libfuse started, and deleted there all the same.
"""

from __future__ import annotations

import ctypes
import threading

_api = ctypes.pythonapi  # called with the GIL held (PyDLL): none of these may release it
_ensure = _api.PyGILState_Ensure
_ensure.argtypes = []
_ensure.restype = ctypes.c_int
_current = _api.PyThreadState_Get
_current.argtypes = []
_current.restype = ctypes.c_void_p
_clear = _api.PyThreadState_Clear
_clear.argtypes = [ctypes.c_void_p]
_clear.restype = None
_delete = _api.PyThreadState_Delete
_delete.argtypes = [ctypes.c_void_p]
_delete.restype = None


class ThreadStates:
    """The thread states kept for one FUSE loop (see the module docstring)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._kept: list[int] = []
        self._owner = threading.get_ident()  # the loop's own thread: never kept
        self._retired = False

    def keep(self) -> None:
        """Keep this thread's state alive from now on (a no-op after the first call)."""
        local = self._local
        if getattr(local, "seen", False):
            return
        local.seen = True
        if threading.get_ident() == self._owner:
            return
        with self._lock:
            if self._retired:  # a callback after the loop: leave it to ctypes
                return
            _ensure()
            state = _current()
            assert state is not None
            self._kept.append(state)

    @property
    def kept(self) -> int:
        with self._lock:
            return len(self._kept)

    def retire(self) -> int:
        """Delete the kept states; only once every thread that kept one has ended (after
        ``fuse_main`` returned). Answers how many were deleted."""
        with self._lock:
            kept, self._kept = self._kept, []
            self._retired = True
        for state in kept:
            _clear(state)
            _delete(state)
        return len(kept)
