"""The result table: rows of measured figures, their ratios and targets, as markdown and JSON.

A ``Cell`` is either the values of several runs (shown as ``median (min-max)``) or the reason
it could not be measured ("not available: ..."): a figure that was not measured is never
shown as a number. A ``Target`` is checked against the median of one column of its row.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.stats import Summary, paired_ratios

Column = Literal["procorefs", "reference", "rclone", "vs_reference", "vs_rclone"]
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Cell:
    values: tuple[float, ...] = ()
    reason: str | None = None

    @classmethod
    def measured(cls, values: Sequence[float]) -> Cell:
        if not values:
            raise ValueError("a measured cell needs values")
        return cls(tuple(float(v) for v in values))

    @classmethod
    def missing(cls, reason: str) -> Cell:
        return cls((), reason)

    @property
    def available(self) -> bool:
        return bool(self.values)

    @property
    def summary(self) -> Summary | None:
        return Summary.of(self.values) if self.values else None


def fmt_number(value: float) -> str:
    """Three significant figures, no exponent for everyday magnitudes."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        if value == round(value):
            return f"{value:.0f}"
        # 2.005 calls per file is not 2: keep the digits a target is judged on.
        return f"{value:.3f}".rstrip("0")
    if magnitude >= 0.1:
        return f"{value:.3f}"
    return f"{value:.3g}"


def fmt_cell(cell: Cell | None, *, reason: bool = True) -> str:
    """``median (min-max)``; a cell not measured shows its reason (or just "n/a")."""
    if cell is None:
        return "-"
    summary = cell.summary
    if summary is None:
        return f"not available: {cell.reason}" if reason else "n/a"
    if summary.n == 1 or summary.min == summary.max:
        return fmt_number(summary.median)
    return f"{fmt_number(summary.median)} ({fmt_number(summary.min)}-{fmt_number(summary.max)})"


@dataclass(frozen=True)
class Target:
    """``column op bound``, e.g. vs_reference >= 0.9, checked on that column's median."""

    column: Column
    op: str
    bound: float
    text: str

    def check(self, row: Row) -> bool | None:
        cell = row.cell(self.column)
        summary = cell.summary if cell is not None else None
        if summary is None:
            return None
        return _OPS[self.op](summary.median, self.bound)


@dataclass
class Row:
    key: str
    workload: str
    unit: str
    procorefs: Cell
    reference: Cell | None = None
    reference_name: str = ""
    rclone: Cell | None = None
    rss_mib: Cell | None = None
    targets: tuple[Target, ...] = ()
    note: str = ""
    vs_reference: Cell | None = field(default=None, init=False)
    vs_rclone: Cell | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.vs_reference = _ratio(self.procorefs, self.reference)
        self.vs_rclone = _ratio(self.procorefs, self.rclone)

    def cell(self, column: Column) -> Cell | None:
        cell: Cell | None = getattr(self, column)
        return cell

    def verdicts(self) -> list[tuple[Target, bool | None]]:
        return [(t, t.check(self)) for t in self.targets]


def _ratio(ours: Cell, theirs: Cell | None) -> Cell | None:
    if theirs is None:
        return None
    if not ours.available:
        return Cell.missing(ours.reason or "procorefs side not measured")
    if not theirs.available:
        return Cell.missing(theirs.reason or "not measured")
    ratios = paired_ratios(ours.values, theirs.values)
    if not ratios:
        return Cell.missing("the reference measured zero")
    return Cell.measured(ratios)


def _verdict_text(row: Row) -> str:
    texts = []
    for target, ok in row.verdicts():
        mark = "n/a" if ok is None else ("met" if ok else "MISSED")
        texts.append(f"{target.text}: {mark}")
    return "; ".join(texts) if texts else "-"


HEADER = ("Workload", "Unit", "procorefs", "Reference", "procorefs / ref.", "rclone",
          "procorefs / rclone", "Peak RSS MiB", "Target")


def render_markdown(rows: Sequence[Row], *, title: str, preamble: Sequence[str] = ()) -> str:
    """The table as GitHub markdown, with each row's notes listed under it."""
    lines = [f"# {title}", ""]
    lines += [*preamble, ""] if preamble else []
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "|".join("---" for _ in HEADER) + "|")
    for row in rows:
        ref = fmt_cell(row.reference)
        if row.reference is not None and row.reference_name:
            ref = f"{ref} ({row.reference_name})"
        cells = (row.workload, row.unit, fmt_cell(row.procorefs), ref,
                 fmt_cell(row.vs_reference, reason=False), fmt_cell(row.rclone),
                 fmt_cell(row.vs_rclone, reason=False), fmt_cell(row.rss_mib),
                 _verdict_text(row))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    notes: list[tuple[str, str]] = []
    for row in rows:
        # Rows of one workload share their notes; list them once, under the first.
        if row.note and all(row.note != text for _, text in notes):
            notes.append((row.workload.strip(" ."), row.note))
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {workload}: {note}" for workload, note in notes]
    return "\n".join(lines) + "\n"


def _cell_json(cell: Cell | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    summary = cell.summary
    if summary is None:
        return {"available": False, "reason": cell.reason}
    return {"available": True, "values": list(cell.values), "median": summary.median,
            "min": summary.min, "max": summary.max, "n": summary.n}


def rows_json(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    out = []
    for row in rows:
        out.append({
            "key": row.key, "workload": row.workload, "unit": row.unit,
            "procorefs": _cell_json(row.procorefs), "reference": _cell_json(row.reference),
            "reference_name": row.reference_name, "rclone": _cell_json(row.rclone),
            "procorefs_vs_reference": _cell_json(row.vs_reference),
            "procorefs_vs_rclone": _cell_json(row.vs_rclone),
            "peak_rss_mib": _cell_json(row.rss_mib),
            "targets": [{"text": t.text, "column": t.column, "op": t.op, "bound": t.bound,
                         "met": ok} for t, ok in row.verdicts()],
            "note": row.note,
        })
    return json.dumps({"meta": dict(meta), "rows": out}, indent=2) + "\n"
