"""Contract tests: page/per_page with Total, Per-Page and Link (procore-api.md §6.1)."""

from __future__ import annotations

import re

from procorefs.emulator.seed import COMPANY_ID, PROJECT_ID
from tests.emulator.test_rest_helpers import api, documents, make_file
from tests.support.emulator import Emulator


def _links(header: str | None) -> dict[str, int]:
    if not header:
        return {}
    out = {}
    for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header):
        page = re.search(r"[?&]page=(\d+)", url)
        assert page is not None
        assert "per_page=2" in url
        assert "filters%5Bdocument_type%5D=file" in url
        out[rel] = int(page.group(1))
    return out


def test_link_headers_on_every_page(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = [make_file(client, f"f{n}.txt", bytes([n]))["id"] for n in range(7)]
        seen: list[int] = []
        pages = {}
        for page in (1, 2, 3, 4):
            answer = documents(client, page=page, per_page=2, sort="name",
                               **{"filters[document_type]": "file"})
            assert answer.status_code == 200
            assert answer.headers["Total"] == "7"
            assert answer.headers["Per-Page"] == "2"
            pages[page] = _links(answer.headers.get("Link"))
            seen += [row["id"] for row in answer.json()]
        beyond = documents(client, page=5, per_page=2, **{"filters[document_type]": "file"})
    assert seen == made
    assert pages[1] == {"next": 2, "last": 4}
    assert pages[2] == {"first": 1, "next": 3, "last": 4}
    assert pages[3] == {"first": 1, "prev": 2, "next": 4, "last": 4}
    assert pages[4] == {"first": 1, "prev": 3, "last": 4}
    assert beyond.json() == []
    assert "next" not in _links(beyond.headers.get("Link"))


def test_link_urls_point_at_the_api_origin(emulator: Emulator) -> None:
    with api(emulator) as client:
        for n in range(3):
            make_file(client, f"g{n}.txt")
        answer = documents(client, per_page=2, **{"filters[document_type]": "file"})
    first = re.findall(r"<([^>]+)>", answer.headers["Link"])[0]
    assert first.startswith(f"{emulator.api_url}/rest/v1.0/projects/{PROJECT_ID}/documents?")


def test_documents_default_and_maximum_page_size(emulator: Emulator) -> None:
    with api(emulator) as client:
        default = documents(client)
        huge = documents(client, per_page=10**9)
        junk = documents(client, per_page="lots", page="x")
    assert default.headers["Per-Page"] == "100"
    assert huge.headers["Per-Page"] == "10000"
    assert junk.headers["Per-Page"] == "100"
    assert "Link" not in default.headers


def test_projects_are_paginated_too(demo_emulator: Emulator) -> None:
    with api(demo_emulator) as client:
        first = client.get("/rest/v1.1/projects",
                           params={"company_id": COMPANY_ID, "per_page": 1})
        second = client.get("/rest/v1.1/projects",
                            params={"company_id": COMPANY_ID, "per_page": 1, "page": 2})
        capped = client.get("/rest/v1.1/projects",
                            params={"company_id": COMPANY_ID, "per_page": 1000})
    assert first.headers["Total"] == "2"
    assert 'rel="next"' in first.headers["Link"]
    assert 'rel="next"' not in second.headers["Link"]
    assert len(first.json()) == len(second.json()) == 1
    assert first.json()[0]["id"] != second.json()[0]["id"]
    assert capped.headers["Per-Page"] == "300"
