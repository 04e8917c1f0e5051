"""``page``/``per_page`` and the ``Total``, ``Per-Page`` and ``Link`` headers (procore-api.md §6.1).

``Link`` follows the documented pattern: page 1 has ``next`` and ``last``; page 2 adds
``first`` (its ``prev`` would be ``first``, and Procore leaves it out); page 3 and later have
all four; the last page has no ``next``. A result that fits one page gets no ``Link``.
Out-of-range sizes are clamped: ``per_page`` above the endpoint's maximum answers the maximum
(and says so in ``Per-Page``), non-numbers fall back to the default (inferred).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def parse_page(request: web.Request, default: int, maximum: int) -> Page:
    number = _int(request.query.get("page"))
    size = _int(request.query.get("per_page"))
    per_page = default if size is None or size < 1 else min(size, maximum)
    return Page(number=max(1, number or 1), per_page=per_page)


def page_headers(request: web.Request, base_url: str, page: Page, total: int) -> dict[str, str]:
    last = max(1, -(-total // page.per_page))
    headers = {"Total": str(total), "Per-Page": str(page.per_page)}
    links: list[tuple[int, str]] = []
    if page.number > 1:
        links.append((1, "first"))
    if page.number > 2:
        links.append((min(page.number - 1, last), "prev"))
    if page.number < last:
        links.append((page.number + 1, "next"))
    if last > 1:
        links.append((last, "last"))
    if links:
        headers["Link"] = ", ".join(
            f'<{_url(request, base_url, n, page.per_page)}>; rel="{rel}"' for n, rel in links)
    return headers


def _url(request: web.Request, base_url: str, number: int, per_page: int) -> str:
    query = [(k, v) for k, v in request.query.items() if k not in ("page", "per_page")]
    query += [("page", str(number)), ("per_page", str(per_page))]
    return f"{base_url}{request.path}?{urlencode(query)}"
