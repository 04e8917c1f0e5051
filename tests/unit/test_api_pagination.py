"""Link and Total headers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from procorefs.api.pagination import PageInfo, parse_link_header

DOC_EXAMPLE = (
    '<https://api.procore.com/rest/v1.0/punch_items?page=1&per_page=5>; rel="first", '
    '<https://api.procore.com/rest/v1.0/punch_items?page=2&per_page=5>; rel="prev", '
    '<https://api.procore.com/rest/v1.0/punch_items?page=30&per_page=5>; rel="last", '
    '<https://api.procore.com/rest/v1.0/punch_items?page=4&per_page=5>; rel="next"')


def test_documented_example() -> None:
    links = parse_link_header(DOC_EXAMPLE)
    assert links["next"].endswith("page=4&per_page=5")
    assert links["last"].endswith("page=30&per_page=5")
    assert set(links) == {"first", "prev", "last", "next"}


def test_variants() -> None:
    assert parse_link_header('<a?x=1,2>; rel=next') == {"next": "a?x=1,2"}
    assert parse_link_header('<u>; title="t"; rel="next last"') == {"next": "u", "last": "u"}
    assert parse_link_header('<u>;REL="Next"') == {"next": "u"}
    assert parse_link_header("") == {}
    assert parse_link_header(None) == {}
    assert parse_link_header("garbage, <no-rel>") == {}


@given(st.text())
def test_never_crashes(text: str) -> None:
    assert isinstance(parse_link_header(text), dict)


def test_page_info_decides_whether_to_go_on() -> None:
    last = PageInfo.from_headers({"link": '<u?page=1>; rel="first"', "total": "12"})
    assert not last.more_after(2, 12, 10)
    nxt = PageInfo.from_headers({"link": '<u?page=2>; rel="next"'})
    assert nxt.more_after(10, 10, 10) and nxt.next_url == "u?page=2"
    by_total = PageInfo.from_headers({"total": "25"})
    assert by_total.more_after(10, 20, 10) and not by_total.more_after(5, 25, 10)
    bare = PageInfo.from_headers({})
    assert bare.more_after(10, 10, 10) and not bare.more_after(3, 13, 10)
    assert not bare.more_after(0, 0, 10)
    assert not PageInfo.from_headers({"total": "x"}).more_after(10, 10, None)
