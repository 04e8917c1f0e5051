"""The result table: cells, ratios, targets, markdown and JSON."""

from __future__ import annotations

import json

import pytest

from bench.table import Cell, Row, Target, fmt_cell, fmt_number, render_markdown, rows_json


def test_numbers_keep_the_digits_that_matter() -> None:
    assert [fmt_number(v) for v in (0, 0.01234, 0.5, 1.234, 12.34, 123.4, 12345.6)] == \
        ["0", "0.0123", "0.500", "1.234", "12.3", "123", "12,346"]
    # Small counts: whole numbers stay whole, and 2.005 calls per file is not shown as 2.
    assert [fmt_number(v) for v in (2.0, 2.005, 1.5)] == ["2", "2.005", "1.5"]


def test_cells_show_median_min_max_or_why_not() -> None:
    assert fmt_cell(Cell.measured([3, 1, 2])) == "2 (1-3)"
    assert fmt_cell(Cell.measured([5, 5])) == "5"
    assert fmt_cell(Cell.measured([1.5, 2.25, 40])) == "2.25 (1.5-40.0)"
    assert fmt_cell(Cell.missing("no write path")) == "not available: no write path"
    assert fmt_cell(Cell.missing("no write path"), reason=False) == "n/a"
    assert fmt_cell(None) == "-"
    with pytest.raises(ValueError):
        Cell.measured([])


def test_ratios_are_paired_and_a_missing_side_gives_no_number() -> None:
    row = Row("cold_read", "Cold read", "MB/s", Cell.measured([100, 200]),
              reference=Cell.measured([200, 200]), rclone=Cell.missing("rclone missing"))
    assert row.vs_reference is not None and row.vs_reference.values == (0.5, 1.0)
    assert row.vs_rclone is not None and not row.vs_rclone.available
    assert row.vs_rclone.reason == "rclone missing"
    unmeasured = Row("write", "Write", "s", Cell.missing("read-only"),
                     reference=Cell.measured([1.0]))
    assert unmeasured.vs_reference is not None and not unmeasured.vs_reference.available


def test_targets_check_the_median_of_their_column() -> None:
    at_least = Target("vs_reference", ">=", 0.9, ">= 0.9 x direct")
    at_most = Target("procorefs", "<=", 2, "<= 2 per file")
    exactly = Target("procorefs", "==", 0, "0 calls")
    fast = Row("r", "r", "MB/s", Cell.measured([95, 80, 99]),
               reference=Cell.measured([100, 100, 100]), targets=(at_least,))
    assert fast.verdicts() == [(at_least, True)]
    slow = Row("r", "r", "MB/s", Cell.measured([50]), reference=Cell.measured([100]),
               targets=(at_least,))
    assert slow.verdicts() == [(at_least, False)]
    assert Row("c", "c", "calls", Cell.measured([2, 3, 1]), targets=(at_most,)).verdicts() \
        == [(at_most, True)]
    assert Row("c", "c", "calls", Cell.measured([0, 0]), targets=(exactly,)).verdicts() \
        == [(exactly, True)]
    assert Row("c", "c", "calls", Cell.missing("no"), targets=(at_most,)).verdicts() \
        == [(at_most, None)]


def test_markdown_has_one_line_per_row_and_notes_once() -> None:
    rows = [
        Row("a", "Find, cold", "s", Cell.measured([1.0, 2.0, 3.0]),
            rclone=Cell.measured([2.0, 2.0, 2.0]),
            targets=(Target("vs_rclone", "<=", 1.0, "<= rclone"),), note="21 folders"),
        Row("b", "  ... API calls", "calls", Cell.missing("write | path"), note="21 folders"),
    ]
    text = render_markdown(rows, title="T", preamble=["measured today"])
    lines = text.splitlines()
    assert lines[0] == "# T" and "measured today" in lines
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 3  # header and two rows
    assert "| Find, cold | s | 2 (1-3) | - | - | 2 | 1 (0.500-1.5) |" in table[1]
    assert "<= rclone: met" in table[1]
    assert "not available: write \\| path" in table[2]
    assert text.count("21 folders") == 1


def test_json_keeps_every_value_and_verdict() -> None:
    row = Row("w", "Write", "s", Cell.measured([1.1, 1.3]), reference=Cell.measured([1, 1]),
              reference_name="direct", targets=(Target("vs_reference", "<=", 1.15, "t"),))
    data = json.loads(rows_json([row], {"runs": 2}))
    assert data["meta"] == {"runs": 2}
    out = data["rows"][0]
    assert out["procorefs"]["values"] == [1.1, 1.3]
    assert out["procorefs_vs_reference"]["median"] == pytest.approx(1.2)
    assert out["targets"] == [{"text": "t", "column": "vs_reference", "op": "<=",
                               "bound": 1.15, "met": False}]
    assert out["rclone"] is None
    missing = json.loads(rows_json([Row("x", "X", "s", Cell.missing("why"))], {}))
    assert missing["rows"][0]["procorefs"] == {"available": False, "reason": "why"}
