"""Procore list pagination: ``Link`` (RFC 8288) and ``Total`` headers, consumed lazily.

A list is walked page by page only as the caller iterates. The next page is the ``rel="next"``
link; without a ``Link`` header the walk falls back to ``page+1`` while ``Total`` says more
items exist, or, with neither header, until a short or empty page (as ProPyCore does against
the real API, shared/procore-api.md 6.1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_PARAM = re.compile(r";\s*([A-Za-z*]+)\s*=\s*(\"[^\"]*\"|[^;,\s]+)")


def parse_link_header(value: str | None) -> dict[str, str]:
    """``{rel: url}`` from a ``Link`` header; garbage yields what could be understood."""
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK.finditer(value):
        url, params = match.group(1).strip(), match.group(2)
        for key, raw in _PARAM.findall(params):
            if key.lower() != "rel":
                continue
            for rel in raw.strip('"').split():
                links.setdefault(rel.lower(), url)
    return links


def parse_total(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("total")
    try:
        total = int(raw) if raw is not None else None
    except ValueError:
        return None
    return total if total is not None and total >= 0 else None


@dataclass(frozen=True)
class PageInfo:
    next_url: str | None
    total: int | None
    has_link: bool

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> PageInfo:
        raw = headers.get("link")
        links = parse_link_header(raw)
        return cls(next_url=links.get("next"), total=parse_total(headers),
                   has_link=bool(links))

    def more_after(self, page_items: int, seen: int, per_page: int | None) -> bool:
        """Is there a page after this one (for servers that give no ``next`` link)?"""
        if self.has_link:
            return self.next_url is not None
        if page_items == 0:
            return False
        if self.total is not None:
            return seen < self.total
        return per_page is not None and page_items >= per_page
