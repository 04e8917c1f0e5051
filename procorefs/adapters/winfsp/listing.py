"""Directory listings the way WinFsp asks for them: a stable order, markers, wildcard patterns.

Pure logic, no Windows import.

WinFsp reads a directory in pieces: ``ReadDirectory(marker)`` must return the entries after
``marker`` (the name of the last entry it already has) in an order that does not change
between calls. The order here is the one NTFS uses on a case-insensitive volume, "." and ".."
first, then by upper-cased name (the name itself breaking ties), and "after the marker" is a
comparison of keys, not a search for the marker itself: a marker that was renamed or deleted
between two calls neither restarts nor truncates the listing.

Patterns follow ``FsRtlIsNameInExpression`` with IgnoreCase: ``*`` any run, ``?`` one
character, and the DOS wildcards the Win32 layer rewrites ``*.*``, ``?`` and ``.`` into:
``<`` (DOS_STAR: any run not passing the name's last dot), ``>`` (DOS_QM: one character, or
nothing at a dot or at the end) and ``"`` (DOS_DOT: a dot, or nothing at the end). winfspy
lets the WinFsp driver apply the pattern itself (it does not support
PassQueryDirectoryPattern), so the adapter filters only when it is handed a pattern: the
Windows tier does, and so would a winfspy that passes patterns through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import TypeVar

T = TypeVar("T")

DOS_STAR = "<"
DOS_QM = ">"
DOS_DOT = '"'


def sort_key(name: str) -> tuple[int, str, str]:
    if name == ".":
        return (0, "", "")
    if name == "..":
        return (1, "", "")
    return (2, name.upper(), name)


def after_marker(items: Sequence[T], name_of: Callable[[T], str],
                 marker: str | None) -> list[T]:
    """``items`` sorted by ``sort_key``, keeping only those past ``marker`` (None: all)."""
    ordered = sorted(items, key=lambda item: sort_key(name_of(item)))
    if marker is None:
        return ordered
    bound = sort_key(marker)
    return [item for item in ordered if sort_key(name_of(item)) > bound]


def has_wildcards(pattern: str) -> bool:
    return any(c in "*?<>\"" for c in pattern)


def matches(pattern: str, name: str) -> bool:
    """Whether ``name`` is in the Windows expression ``pattern``, ignoring case."""
    if pattern in ("", "*"):
        return True
    return _matcher(pattern.upper())(name.upper())


@cache
def _matcher(pattern: str) -> Callable[[str], bool]:
    def match(name: str) -> bool:
        last_dot = name.rfind(".")

        @cache
        def at(p: int, n: int) -> bool:
            if p == len(pattern):
                return n == len(name)
            c = pattern[p]
            if c == "*":
                return any(at(p + 1, k) for k in range(n, len(name) + 1))
            if c == DOS_STAR:
                # Any run that does not consume the last dot of the name.
                stop = last_dot if last_dot >= n else len(name)
                return any(at(p + 1, k) for k in range(n, stop + 1))
            if c == DOS_QM:
                if n == len(name) or name[n] == ".":
                    return at(p + 1, n)
                return at(p + 1, n + 1)
            if c == DOS_DOT:
                if n < len(name) and name[n] == ".":
                    return at(p + 1, n + 1)
                return n == len(name) and at(p + 1, n)
            if n == len(name):
                return False
            if c == "?" or c == name[n]:
                return at(p + 1, n + 1)
            return False

        return at(0, 0)

    return match


def filter_pattern(items: Iterable[T], name_of: Callable[[T], str],
                   pattern: str | None) -> list[T]:
    if pattern is None:
        return list(items)
    if not has_wildcards(pattern):
        wanted = pattern.upper()
        return [item for item in items if name_of(item).upper() == wanted]
    return [item for item in items if matches(pattern, name_of(item))]
