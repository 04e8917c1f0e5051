"""Listing order, markers and Windows wildcards (adapters/winfsp/listing.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procorefs.adapters.winfsp.listing import after_marker, filter_pattern, matches, sort_key


def ident(name: str) -> str:
    return name


def test_dot_entries_first_then_case_insensitive_order() -> None:
    names = ["b.txt", "..", "A.txt", "a.txt", ".", "C"]
    assert after_marker(names, ident, None) == [".", "..", "A.txt", "a.txt", "b.txt", "C"]


@given(st.lists(st.text(min_size=1, max_size=6), unique_by=str.upper, max_size=30),
       st.integers(min_value=1, max_value=7))
def test_reading_in_pieces_gives_every_entry_once(names: list[str], per_call: int) -> None:
    got: list[str] = []
    marker = None
    while True:
        piece = after_marker(names, ident, marker)[:per_call]
        if not piece:
            break
        got += piece
        marker = piece[-1]
    assert sorted(got) == sorted(names)
    assert got == sorted(names, key=sort_key)


def test_a_marker_that_vanished_still_continues_after_it() -> None:
    names = ["a", "c", "d"]
    assert after_marker(names, ident, "b") == ["c", "d"]
    assert after_marker(names, ident, ".") == ["a", "c", "d"]
    assert after_marker([".", "..", "a"], ident, ".") == ["..", "a"]
    assert after_marker([".", "..", "a"], ident, "..") == ["a"]


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("*", "anything.pdf", True),
    ("*.pdf", "A-101 Plan.PDF", True),
    ("*.pdf", "A-101 Plan.dwg", False),
    ("a-1??*", "A-101 Plan.pdf", True),
    ("a-1??", "A-101 Plan.pdf", False),
    ("?", "ab", False),
    ("Report.docx", "report.DOCX", True),
    ("*plan*", "A-101 First Floor Plan.pdf", True),
    # DOS wildcards, as the Win32 layer rewrites "*.*", "*." and "?" patterns.
    ("<.pdf", "a.b.pdf", True),
    ("<.pdf", "a.pdf.txt", False),
    ('<"<', "noext", True),
    ('<"<', "has.ext", True),
    (">>>", "ab", True),
    (">>>", "abcd", False),
    ('x"', "x", True),
    ('x"', "x.", True),
    ('x"y', "x.y", True),
])
def test_wildcards(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


def test_filter_pattern_exact_name_is_case_insensitive() -> None:
    names = ["Report.docx", "Other.docx"]
    assert filter_pattern(names, ident, "REPORT.DOCX") == ["Report.docx"]
    assert filter_pattern(names, ident, "*.DOCX") == names
    assert filter_pattern(names, ident, None) == names
