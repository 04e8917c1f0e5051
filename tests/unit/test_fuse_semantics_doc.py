"""docs/semantics.md names a test for every claim; each named test must exist.

References look like ``mount/test_browse.py::test_x`` (relative to ``tests/``); a following
``::test_y`` in the same table cell or paragraph refers to the same file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "semantics.md"
_REF = re.compile(r"`(?:(?P<file>[\w/]+\.py))?::(?P<test>test_\w+)`")


def _references() -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    for block in re.split(r"\n\s*\n|\n\|", DOC.read_text(encoding="utf-8")):
        current: str | None = None
        for match in _REF.finditer(block):
            current = match["file"] or current
            assert current is not None, f"'::{match['test']}' without a file before it"
            refs.append((current, match["test"]))
    return refs


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_test_the_semantics_page_cites_exists() -> None:
    refs = _references()
    assert len(refs) > 40
    missing = [f"{file}::{test}" for file, test in refs
               if test not in _functions(ROOT / "tests" / file)]
    assert missing == []
