"""Procore names <-> Windows names: the codec, the reserved-name rule and case collisions.

Pure logic, no Windows import: unit-tested on Linux (``tests/unit/test_win_names.py``).

Windows refuses, in one path component, the characters ``\\ / : * ? " < > |``, the control
characters U+0000..U+001F, a trailing dot or space (Win32 strips them silently), and the
device names CON, PRN, AUX, NUL, COM0-9, LPT0-9 (also with superscript 1-3, and also with any
extension: ``con.txt`` opens the console). Procore allows all of them. ``WindowsNameCodec``
maps them to look-alikes the way rclone's Windows encoding does, and back:

    ==========================  =========================================
    Procore                     Windows (local) name
    ==========================  =========================================
    ``\\ / : * ? " < > |``      ``＼ ／ ： ＊ ？ ＂ ＜ ＞ ｜`` (U+FF3C, FF0F, FF1A, FF0A,
                                FF1F, FF02, FF1C, FF1E, FF5C, fullwidth forms)
    U+0000..U+001F              U+2400..U+241F (``␀`` .. ``␟``, control pictures)
    a trailing ``.``            ``．`` (U+FF0E FULLWIDTH FULL STOP)
    a trailing space            ``␠`` (U+2420 SYMBOL FOR SPACE)
    a device name (``CON.txt``) its first letter in fullwidth (``Ｃon.txt`` for ``Con.txt``)
    ==========================  =========================================

Only the LAST character is subject to the trailing rule (``a. .`` becomes ``a. ．``): once the
name ends in something else Win32 strips nothing. The same quote as the POSIX codec (``‛``,
U+201B) marks a look-alike that stands for itself, so a Procore name that already contains
``：`` or ends in ``．`` still round-trips; a literal quote is doubled only where it would
otherwise be read as a quote. Decoding is total (any local string decodes), and a local name
is canonical when encoding its decoding gives it back (``core.names.is_canonical``).

The volume is case-insensitive and case-preserving: the core compares names with
``lookup_key`` (NFC, case-folded, because ``case_sensitive`` is False). Two Procore names in a
folder that differ only by case would make one unreachable, so one of them is shown with a
visible suffix; ``resolve_case_collisions`` is that rule as a pure function (built on the core's
``assign_local_names``, so the suffix is the core's `` [id]``) that also says who was renamed,
for the log, and ``WindowsNameCodec.assign_local_names`` offers it to the core through the
codec object the core already holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from procorefs.core.names import QUOTE, NameRequest, assign_local_names, lookup_key

log = logging.getLogger(__name__)

FORBIDDEN = '\\/:*?"<>|'
_FULLWIDTH_OFFSET = 0xFEE0  # '!' (U+0021) + offset = '！' (U+FF01)
CONTROL_PICTURES = 0x2400
DOT_LOOKALIKE = "\uff0e"
SPACE_LOOKALIKE = "\u2420"

_ENCODE_ALWAYS: dict[str, str] = {c: chr(ord(c) + _FULLWIDTH_OFFSET) for c in FORBIDDEN}
_ENCODE_ALWAYS.update({chr(i): chr(CONTROL_PICTURES + i) for i in range(0x20)})
_DECODE_ALWAYS: dict[str, str] = {v: k for k, v in _ENCODE_ALWAYS.items()}
_TRAILING: dict[str, str] = {".": DOT_LOOKALIKE, " ": SPACE_LOOKALIKE}
_TRAILING_DECODE: dict[str, str] = {v: k for k, v in _TRAILING.items()}

_RESERVED_STEMS = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789\u00b9\u00b2\u00b3"])


def _fullwidth_letter(c: str) -> str | None:
    return chr(ord(c) + _FULLWIDTH_OFFSET) if c.isascii() and c.isalpha() else None


def _ascii_of_fullwidth(c: str) -> str | None:
    code = ord(c)
    if 0xFF21 <= code <= 0xFF3A or 0xFF41 <= code <= 0xFF5A:
        return chr(code - _FULLWIDTH_OFFSET)
    return None


# After a quote, these stand for themselves; anything else makes the quote a literal quote.
def _quotable(c: str) -> bool:
    return (c in _DECODE_ALWAYS or c in _TRAILING_DECODE or c == QUOTE
            or _ascii_of_fullwidth(c) is not None)


def is_reserved_name(name: str) -> bool:
    """True for Windows device names: ``CON``, ``nul.txt``, ``COM1.tar.gz``, ``LPT²``."""
    stem = name.split(".", 1)[0].rstrip(" ")
    return stem.upper() in _RESERVED_STEMS


def is_valid_windows_name(name: str) -> bool:
    """Whether Windows can hold ``name`` as one path component exactly as written."""
    if not name or name in (".", ".."):
        return False
    if any(c in FORBIDDEN or ord(c) < 0x20 for c in name):
        return False
    return name[-1] not in ". " and not is_reserved_name(name)


class WindowsNameCodec:
    """The codec for WinFsp mounts (see the module docstring); case-insensitive lookups.

    It also carries the case-collision rule to the core, which holds the codec but may not
    import adapters: ``assign_local_names`` names a folder's children and logs each case
    collision once per mount.
    """

    case_sensitive = False

    def __init__(self) -> None:
        self._reported: set[tuple[int, str]] = set()
        self._reported_lock = threading.Lock()

    def assign_local_names(self, requests: Iterable[NameRequest], *,
                           folder: str = "") -> dict[int, str]:
        """``core.names.assign_local_names`` for this codec, logging new case collisions."""
        names, collisions = resolve_case_collisions(requests, self)
        with self._reported_lock:
            new = [c for c in collisions if (c.ident, c.shown) not in self._reported]
            self._reported.update((c.ident, c.shown) for c in new)
        log_case_collisions(folder or "a folder", new)
        return names

    def to_local(self, remote: str) -> str:
        if not remote:
            return remote
        tokens: list[str] = []
        last = len(remote) - 1
        for i, c in enumerate(remote):
            if c in _ENCODE_ALWAYS:
                tokens.append(_ENCODE_ALWAYS[c])
            elif i == last and c in _TRAILING:
                tokens.append(_TRAILING[c])
            elif c in _DECODE_ALWAYS or (i == last and c in _TRAILING_DECODE):
                tokens.append(QUOTE + c)
            else:
                tokens.append(c)
        first = remote[0]
        wide = _fullwidth_letter(first)
        if wide is not None and is_reserved_name(remote):
            tokens[0] = wide
        else:
            plain = _ascii_of_fullwidth(first)
            if plain is not None and is_reserved_name(plain + remote[1:]):
                tokens[0] = QUOTE + first
        # A literal quote is doubled only where the decoder would pair it with what follows.
        for i, token in enumerate(tokens):
            if token == QUOTE and i < last and _quotable(tokens[i + 1][0]):
                tokens[i] = QUOTE + QUOTE
        return "".join(tokens)

    def to_remote(self, local: str) -> str:
        out: list[str] = []
        first_decodable = False
        i = 0
        n = len(local)
        while i < n:
            c = local[i]
            if c == QUOTE and i + 1 < n and _quotable(local[i + 1]):
                out.append(local[i + 1])
                i += 2
                continue
            if c in _DECODE_ALWAYS:
                out.append(_DECODE_ALWAYS[c])
            elif i == n - 1 and c in _TRAILING_DECODE:
                out.append(_TRAILING_DECODE[c])
            else:
                if i == 0 and _ascii_of_fullwidth(c) is not None:
                    first_decodable = True
                out.append(c)
            i += 1
        if first_decodable:
            plain = _ascii_of_fullwidth(out[0])
            assert plain is not None
            candidate = plain + "".join(out[1:])
            if is_reserved_name(candidate):
                return candidate
        return "".join(out)

    def __repr__(self) -> str:
        return "WindowsNameCodec()"


@dataclass(frozen=True, slots=True)
class CaseCollision:
    """``remote_name`` is shown as ``shown`` because ``kept`` took its case-insensitive slot."""

    ident: int
    remote_name: str
    shown: str
    kept: str


def resolve_case_collisions(
    requests: Iterable[NameRequest], codec: WindowsNameCodec | None = None,
) -> tuple[dict[int, str], list[CaseCollision]]:
    """Local names for one folder's children, and who got a suffix because of a case twin.

    The plain name goes to the lowest ``rank`` (the core ranks by id: the oldest item keeps
    it); the others get the core's visible `` [id]`` suffix, so both are reachable.
    """
    codec = codec or WindowsNameCodec()
    ordered = sorted(requests, key=lambda r: r.rank)
    names = assign_local_names(codec, ordered)
    holders: dict[str, str] = {}
    for req in ordered:
        base = codec.to_local(req.remote_name)
        if names[req.ident] == base:
            holders[lookup_key(codec, base)] = base
    collisions: list[CaseCollision] = []
    for req in ordered:
        base = codec.to_local(req.remote_name)
        kept = holders.get(lookup_key(codec, base))
        if names[req.ident] != base and kept is not None and kept != base:
            collisions.append(CaseCollision(req.ident, req.remote_name, names[req.ident], kept))
    return names, collisions


def log_case_collisions(folder: str, collisions: Iterable[CaseCollision]) -> None:
    """One line per renamed entry, so a user who misses a file can find out why."""
    for c in collisions:
        log.warning("%s: Procore has both %r and %r, which Windows cannot tell apart; "
                    "the second is shown as %r (Procore id %d)", folder, c.kept,
                    c.remote_name, c.shown, c.ident)
