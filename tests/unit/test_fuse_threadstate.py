"""Python thread states kept on threads Python did not start (adapters/fuse/threadstate.py).

A thread the C library starts (``pthread_create`` through ctypes) calls back into Python as
libfuse's workers do: ctypes makes a thread state for the call and, unless ``keep`` nested
one more ``PyGILState_Ensure`` in it, destroys that state when the call returns.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from procorefs.adapters.fuse.runner import _fuse_class
from procorefs.adapters.fuse.threadstate import ThreadStates

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="pthread_create through ctypes")

_api = ctypes.pythonapi
_api.PyInterpreterState_Get.restype = ctypes.c_void_p
_api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
_api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
_api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
_api.PyThreadState_Next.restype = ctypes.c_void_p
_api.PyThreadState_Get.restype = ctypes.c_void_p

_START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_libc = ctypes.CDLL(None)
_libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, _START,
                                 ctypes.c_void_p]
_libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]


def _states() -> set[int]:
    """Every thread state of this interpreter."""
    found: set[int] = set()
    state = _api.PyInterpreterState_ThreadHead(_api.PyInterpreterState_Get())
    while state:
        found.add(state)
        state = _api.PyThreadState_Next(state)
    return found


def _foreign_thread(body: Callable[[], None]) -> int:
    """Run ``body`` as the one callback of a thread the C library starts, wait until the
    thread has ended, and answer the thread state the callback ran in."""
    seen: list[int] = []
    errors: list[BaseException] = []

    def start(_: Any) -> None:
        seen.append(_api.PyThreadState_Get())
        try:
            body()
        except BaseException as exc:
            errors.append(exc)

    callback = _START(start)
    thread = ctypes.c_ulong()
    assert _libc.pthread_create(ctypes.byref(thread), None, callback, None) == 0
    assert _libc.pthread_join(thread, None) == 0   # drops the GIL while it waits
    if errors:
        raise errors[0]
    return seen[0]


def test_without_keep_a_foreign_threads_state_dies_with_each_call() -> None:
    state = _foreign_thread(lambda: None)
    assert state not in _states()


def test_a_kept_state_outlives_the_call_and_retire_deletes_it() -> None:
    states = ThreadStates()
    before = _states()
    state = _foreign_thread(states.keep)
    assert state in _states() and states.kept == 1   # ctypes' Release left it alive
    assert states.retire() == 1
    assert state not in _states() and _states() == before


def test_keep_is_once_per_thread() -> None:
    states = ThreadStates()

    def twice() -> None:
        states.keep()
        states.keep()

    state = _foreign_thread(twice)
    assert states.kept == 1
    states.retire()
    assert state not in _states()


def test_the_loops_own_thread_and_calls_after_retire_keep_nothing() -> None:
    states = ThreadStates()
    states.keep()                 # the thread that runs the loop (here: this one)
    assert states.kept == 0
    assert states.retire() == 0
    state = _foreign_thread(states.keep)   # a callback after the loop ended
    assert states.kept == 0 and state not in _states()


def test_every_callback_goes_through_keep() -> None:
    calls: list[str] = []

    class Recorder:
        def keep(self) -> None:
            calls.append("keep")

    cls = _fuse_class()
    fuse = cls.__new__(cls)   # no mount: only what _wrapper uses
    fuse._thread_states = Recorder()
    assert fuse._wrapper(lambda: calls.append("callback") or 7) == 7
    assert calls == ["keep", "callback"]


@pytest.mark.parametrize("retire", [True, False])
def test_the_interpreter_exits_cleanly_with_kept_states(tmp_path: Path, retire: bool) -> None:
    # Kept states of ended threads, deleted by retire or left to the interpreter's shutdown:
    # either way the process exits normally (no crash, no hang).
    script = tmp_path / "kept.py"
    script.write_text(textwrap.dedent(f"""
        import ctypes, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from procorefs.adapters.fuse.threadstate import ThreadStates
        START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
        libc = ctypes.CDLL(None)
        libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p,
                                        START, ctypes.c_void_p]
        libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
        states = ThreadStates()
        callback = START(lambda _: states.keep())
        for _ in range(8):
            thread = ctypes.c_ulong()
            assert libc.pthread_create(ctypes.byref(thread), None, callback, None) == 0
            assert libc.pthread_join(thread, None) == 0
        assert states.kept == 8
        if {retire!r}:
            assert states.retire() == 8
        print("done")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "done", "")
