"""Procore names <-> local names: the codec, lookup keys, and unique local names for a listing.

Procore allows characters in a name that a POSIX path cannot hold ('/' and NUL) and names that
mean something else locally ("." and ".."). ``PosixNameCodec`` maps them to look-alikes the
way rclone does, so users who know rclone see the same thing:

    '/'  -> '／' (U+FF0F FULLWIDTH SOLIDUS)
    NUL  -> '␀' (U+2400 SYMBOL FOR NULL)
    "." and ".." as whole names -> "．" and "．．" (U+FF0E FULLWIDTH FULL STOP)

A Procore name that already contains a look-alike must still round-trip, so a look-alike that
stands for itself is quoted with '‛' (U+201B). The quote itself is doubled only where it would
otherwise be read as a quote (just before a look-alike or another quote), so ordinary names
that happen to contain '‛' are shown unchanged. Decoding any local string is total; a local
string is *canonical* when encoding its decoding gives it back, and the core creates only
canonical names (see ``is_canonical``) so that what a user types is what the listing shows.

Lookups compare ``lookup_key`` values: NFC-normalised (macOS hands us NFD, Linux usually NFC),
and case-folded for a case-insensitive codec. Two remote names with the same key in one folder
would make one of them unreachable, so ``assign_local_names`` keeps the plain name for the
first (lowest sort key, i.e. the oldest id) and gives the others a visible " [id]" suffix. The
same happens to a name whose encoding is longer than the OS allows in one component.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

NAME_MAX = 255
"""Bytes (UTF-8) in one path component, the limit of Linux, macOS and most filesystems."""

SLASH_LOOKALIKE = "\uff0f"
NUL_LOOKALIKE = "\u2400"
DOT_LOOKALIKE = "\uff0e"
QUOTE = "\u201b"

_QUOTED_BY_DECODER = frozenset((SLASH_LOOKALIKE, NUL_LOOKALIKE, QUOTE))
# Remote characters whose local form starts with a character the decoder would pair with a
# preceding quote, so a literal quote before them has to be doubled.
_QUOTE_BEFORE = frozenset(("/", "\0", SLASH_LOOKALIKE, NUL_LOOKALIKE, QUOTE, DOT_LOOKALIKE))


class NameCodec(Protocol):
    """Maps Procore names to local names and back; ``to_remote(to_local(n)) == n`` for all n."""

    case_sensitive: bool

    def to_local(self, remote: str) -> str: ...

    def to_remote(self, local: str) -> str: ...


def _is_dot_name(remote: str) -> bool:
    return 1 <= len(remote) <= 2 and all(c in (".", DOT_LOOKALIKE) for c in remote)


def _is_encoded_dot_name(local: str) -> bool:
    tokens = 0
    i = 0
    while i < len(local):
        if local[i] == QUOTE and i + 1 < len(local) and local[i + 1] == DOT_LOOKALIKE:
            i += 2
        elif local[i] == DOT_LOOKALIKE:
            i += 1
        else:
            return False
        tokens += 1
    return 1 <= tokens <= 2


class PosixNameCodec:
    """The codec for Linux and macOS mounts: '/' and NUL become look-alikes, reversibly."""

    case_sensitive = True

    def to_local(self, remote: str) -> str:
        if _is_dot_name(remote):
            return "".join(DOT_LOOKALIKE if c == "." else QUOTE + DOT_LOOKALIKE for c in remote)
        out: list[str] = []
        last = len(remote) - 1
        for i, c in enumerate(remote):
            if c == "/":
                out.append(SLASH_LOOKALIKE)
            elif c == "\0":
                out.append(NUL_LOOKALIKE)
            elif c in (SLASH_LOOKALIKE, NUL_LOOKALIKE):
                out.append(QUOTE + c)
            elif c == QUOTE and i < last and remote[i + 1] in _QUOTE_BEFORE:
                out.append(QUOTE + QUOTE)
            else:
                out.append(c)
        return "".join(out)

    def to_remote(self, local: str) -> str:
        if _is_encoded_dot_name(local):
            out_dots: list[str] = []
            i = 0
            while i < len(local):
                if local[i] == QUOTE:
                    out_dots.append(DOT_LOOKALIKE)
                    i += 2
                else:
                    out_dots.append(".")
                    i += 1
            return "".join(out_dots)
        out: list[str] = []
        i = 0
        n = len(local)
        while i < n:
            c = local[i]
            if c == QUOTE and i + 1 < n and local[i + 1] in _QUOTED_BY_DECODER:
                out.append(local[i + 1])
                i += 2
                continue
            if c == SLASH_LOOKALIKE:
                out.append("/")
            elif c == NUL_LOOKALIKE:
                out.append("\0")
            else:
                out.append(c)
            i += 1
        return "".join(out)

    def __repr__(self) -> str:
        return "PosixNameCodec()"


def lookup_key(codec: NameCodec, local: str) -> str:
    """What two local names must share to be the same entry: NFC (and case-folded if asked)."""
    key = unicodedata.normalize("NFC", local)
    return key if codec.case_sensitive else key.casefold()


def is_canonical(codec: NameCodec, local: str) -> bool:
    """True when ``local`` is exactly what the listing would show for its remote name."""
    return codec.to_local(codec.to_remote(local)) == local


def too_long(local: str) -> bool:
    return len(local.encode("utf-8", "surrogatepass")) > NAME_MAX


def _fit(stem: str, rest: str) -> str:
    """``stem + rest`` cut (in the stem, by whole characters) to at most NAME_MAX bytes."""
    budget = NAME_MAX - len(rest.encode("utf-8", "surrogatepass"))
    encoded = stem.encode("utf-8", "surrogatepass")
    if len(encoded) > budget:
        stem = encoded[:max(budget, 0)].decode("utf-8", "ignore")
    return stem + rest


def with_suffix(local: str, tag: str, *, is_file: bool) -> str:
    """``"Plan.pdf"`` -> ``"Plan [tag].pdf"``; folders and extensionless names end in it."""
    stem, ext = local, ""
    if is_file:
        dot = local.rfind(".")
        if dot > 0 and len(local) - dot <= 16:
            stem, ext = local[:dot], local[dot:]
    return _fit(stem, f" [{tag}]{ext}")


@dataclass(frozen=True, slots=True)
class NameRequest:
    """One child to name: ``rank`` orders who keeps the plain name when names collide."""

    remote_name: str
    ident: int
    is_file: bool
    rank: tuple[int, int]
    tag: int | None = None  # what a suffix shows; ``ident`` when None


def assign_names_in(codec: NameCodec, requests: Iterable[NameRequest],
                    folder: str) -> dict[int, str]:
    """``assign_local_names`` through the codec's own version when it has one: the Windows
    codec reports the names it had to change (case twins) in the log, naming ``folder``."""
    own = getattr(codec, "assign_local_names", None)
    if callable(own):
        names: dict[int, str] = own(requests, folder=folder)
        return names
    return assign_local_names(codec, requests)


def assign_local_names(codec: NameCodec, requests: Iterable[NameRequest]) -> dict[int, str]:
    """Local names for one directory's children, unique under ``lookup_key``, keyed by ident."""
    ordered = sorted(requests, key=lambda r: r.rank)
    taken: set[str] = set()
    result: dict[int, str] = {}
    losers: list[tuple[NameRequest, str]] = []
    for req in ordered:
        base = codec.to_local(req.remote_name)
        if not base:
            losers.append((req, ""))
            continue
        if too_long(base):
            losers.append((req, base))
            continue
        key = lookup_key(codec, base)
        if key in taken:
            losers.append((req, base))
            continue
        taken.add(key)
        result[req.ident] = base
    for req, base in losers:
        n = 1
        while True:
            shown = req.ident if req.tag is None else req.tag
            tag = str(shown) if n == 1 else f"{shown}-{n}"
            name = with_suffix(base, tag, is_file=req.is_file) if base else f"[{tag}]"
            key = lookup_key(codec, name)
            if key not in taken:
                break
            n += 1
        taken.add(key)
        result[req.ident] = name
    return result
