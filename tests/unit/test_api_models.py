"""Model parsing: documented shapes parse, garbage becomes InvalidResponse, never KeyError."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procorefs.api.errors import InvalidResponse
from procorefs.api.models import (
    Company,
    DocumentEntry,
    File,
    FileVersion,
    Folder,
    Project,
    Upload,
    User,
)

FILE = {
    "id": 600112233, "name": "A-101 Floor Plan.pdf", "parent_id": 929510260, "size": 2097152,
    "created_at": "2025-05-14T10:00:00Z", "updated_at": "2025-05-15T08:12:44Z",
    "checked_out_until": None, "checked_out_by": None, "file_type": "PDF", "legacy_id": 1,
    "unknown_future_field": {"x": 1},
    "file_versions": [
        {"id": 700000002, "number": 2, "size": 2097152, "url": "https://x/2",
         "created_at": "2025-05-15T08:12:44Z",
         "created_by": {"id": 174986, "login": "pm@example.com", "name": "Pat"}},
        {"id": 700000001, "number": 1, "size": 1980000, "url": "https://x/1",
         "created_at": "2025-05-14T10:00:00Z"}]}


def test_documented_file_parses_and_versions_are_sorted() -> None:
    f = File.parse(FILE)
    assert [v.number for v in f.versions] == [1, 2]
    assert f.current_version is not None and f.current_version.id == 700000002
    assert f.current_version.created_by is not None
    assert f.created_at is not None and f.created_at.tzinfo is not None


def test_ids_beyond_32_bits_and_string_ids() -> None:
    big = 2**40 + 7
    assert Company.parse({"id": big, "name": "C"}).id == big
    assert Company.parse({"id": str(big), "name": "C"}).id == big


def test_folder_with_children_one_level() -> None:
    folder = Folder.parse({"id": 1, "name": "Root", "parent_id": None,
                           "folders": [{"id": 2, "name": "A", "folders": [], "files": []}],
                           "files": [FILE], "is_recycle_bin": False})
    assert folder.folders[0].id == 2 and folder.files[0].id == FILE["id"]


@pytest.mark.parametrize("model, raw", [
    (User, None), (User, []), (User, {"id": None}), (User, {"id": True}),
    (Company, {"id": 1}), (Company, {"id": "x", "name": "C"}),
    (Project, {"id": 1}), (File, {"id": 1}), (File, "text"),
    (FileVersion, {"id": 1, "number": 1}), (Folder, {"name": "no id"}),
    (DocumentEntry, {"id": 1, "document_type": "photo"}), (Upload, {"status": "ready"}),
])
def test_garbage_is_an_invalid_response(model: Any, raw: object) -> None:
    with pytest.raises(InvalidResponse):
        model.parse(raw)


def test_document_entry_extended() -> None:
    entry = DocumentEntry.parse({
        "id": 5, "document_type": "file", "name": "a.txt", "parent_id": 1,
        "updated_at": "2025-01-01T00:00:00+02:00",
        "file": {"current_version": {"id": 9, "number": 3, "size": 12, "url": "u"},
                 "checked_out_until": "bad date"}})
    assert entry.size == 12 and entry.checked_out_until is None
    assert entry.updated_at is not None and entry.updated_at.hour == 22


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "name", "number", "url", "file_versions",
                                       "folders", "files", "document_type", "file", "size",
                                       "current_version", "segments", "uuid", "headers"]),
                      children, max_size=6),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([User, Company, Project, File, FileVersion, Folder,
                                     DocumentEntry, Upload]))
def test_any_json_either_parses_or_is_invalid_response(raw: object, model: Any) -> None:
    with contextlib.suppress(InvalidResponse):
        model.parse(raw)
