"""The Documents calls against the emulator: folders, files, versions, index, pagination."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from procorefs.api import NotFound, Priority, ValidationFailed
from tests.api.conftest import World, count, log_when, write_file


def test_who_and_where(world: World) -> None:
    with world.connect() as client:
        me = client.me()
        assert me.login == world.demo_login
        companies = client.companies()
        assert [c.id for c in companies] == [world.company_id]
        projects = client.projects(world.company_id)
        assert world.project_id in [p.id for p in projects]
        assert client.rate_limit().remaining is not None


@pytest.mark.parametrize("level", ["project", "company"])
def test_folder_lifecycle(world: World, level: str) -> None:
    scope = world.project if level == "project" else world.company
    with world.connect() as client:
        root = client.root_folder(scope)
        a = client.create_folder(scope, "Drawings", None)
        b = client.create_folder(scope, "Archive", root.id)
        assert a.parent_id == root.id
        with pytest.raises(ValidationFailed):
            client.create_folder(scope, "Drawings", None)
        renamed = client.update_folder(scope, a.id, name="Plans")
        assert renamed.name == "Plans"
        moved = client.update_folder(scope, a.id, parent_id=b.id)
        assert moved.parent_id == b.id
        assert [f.name for f in client.folder(scope, b.id).folders] == ["Plans"]
        client.delete_folder(scope, a.id)
        assert [f.name for f in client.folder(scope, b.id).folders if not f.is_deleted] == []
        with pytest.raises(NotFound):
            client.folder(scope, 999_999_999)


@pytest.mark.parametrize("level", ["project", "company"])
def test_file_lifecycle(world: World, tmp_path: Path, level: str) -> None:
    scope = world.project if level == "project" else world.company
    one = tmp_path / "one.txt"
    one.write_bytes(b"first version\n")
    two = tmp_path / "two.txt"
    two.write_bytes(b"second version, longer\n")
    with world.connect() as client:
        folder = client.create_folder(scope, "Docs", None)
        created = client.create_file(scope, "notes.txt", folder.id,
                                     client.upload(scope, one, filename="notes.txt"))
        assert created.name == "notes.txt" and created.parent_id == folder.id
        assert created.current_version is not None
        assert client.read_range(created.current_version, 0, 100) == one.read_bytes()
        version = client.create_version(scope, created.id,
                                        client.upload(scope, two, filename="notes.txt"),
                                        notes="rev B")
        assert version.number == 2
        shown = client.file(scope, created.id)
        assert [v.number for v in shown.versions] == [1, 2]
        assert client.read_range(shown.versions[-1], 7, 7) == b"version"
        renamed = client.update_file(scope, created.id, name="renamed.txt")
        assert renamed.name == "renamed.txt"
        out = client.checkout(scope, created.id, datetime.now(UTC) + timedelta(hours=1))
        assert out.checked_out_until is not None and out.checked_out_by is not None
        back = client.checkout(scope, created.id, None)
        assert back.checked_out_until is None
        client.delete_file(scope, created.id)
        listing = client.folder(scope, folder.id)
        assert all(f.is_deleted for f in listing.files if f.id == created.id)


def test_documents_index_for_change_polling(world: World, tmp_path: Path) -> None:
    scope = world.project
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 10)
    with world.connect() as client:
        before = datetime.now(UTC) - timedelta(seconds=5)
        folder = client.create_folder(scope, "Polled", None)
        made = client.create_file(scope, "a.bin", folder.id,
                                  client.upload(scope, src, filename="a.bin"))
        after = datetime.now(UTC) + timedelta(seconds=5)
        changed = list(client.documents(scope, updated_between=(before, after)))
        ids = {e.id for e in changed}
        assert {folder.id, made.id} <= ids
        entry = next(e for e in changed if e.id == made.id)
        assert entry.document_type == "file" and entry.size == 10
        assert entry.current_version is not None
        assert client.read_range(entry.current_version, 0, 10) == b"x" * 10
        later = list(client.documents(scope, updated_between=(after, after + timedelta(1))))
        assert made.id not in {e.id for e in later}
        sub = list(client.documents(scope, folder_id=folder.id))
        assert {e.id for e in sub} == {folder.id, made.id}
        files_only = list(client.documents(scope, document_type="file"))
        assert all(e.document_type == "file" for e in files_only)


def test_pagination_over_several_pages(world: World, tmp_path: Path) -> None:
    scope = world.project
    with world.connect() as client:
        parent = client.create_folder(scope, "Many", None)
        for i in range(11):
            client.create_folder(scope, f"f{i:02d}", parent.id)
        mark = world.emulator.log_mark()
        entries = client.documents(scope, folder_id=parent.id, per_page=4,
                                   priority=Priority.BACKGROUND)
        first = next(entries)
        assert len(log_when(world.emulator, mark, bool)) == 1  # lazily: one page so far
        names = [first.name, *(e.name for e in entries)]
    assert sorted(names) == sorted(["Many", *(f"f{i:02d}" for i in range(11))])
    log = log_when(world.emulator, mark, lambda lg: count("GET", "/documents")(lg) >= 3)
    pages = [r for r in log if r["path"].endswith("/documents")]
    assert len(pages) == 3
    assert all(r["status"] == 200 for r in pages)


def test_small_files_take_the_single_upload(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "small.bin", 300_000)
    with world.connect() as client:
        mark = world.emulator.log_mark()
        uuid = client.upload(world.project, src, filename="small.bin")
        log = log_when(world.emulator, mark, lambda lg: len(lg) >= 2)
        assert [(r["origin"], r["method"]) for r in log] == [("api", "POST"), ("storage", "POST")]
        made = client.create_file(world.project, "small.bin", None, uuid)
        assert made.current_version is not None
        digest = hashlib.sha256()
        client.download_to(made.current_version, _Hasher(digest))
        assert digest.hexdigest() == hashlib.sha256(src.read_bytes()).hexdigest()


class _Hasher:
    def __init__(self, digest: hashlib._Hash) -> None:
        self.digest = digest
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)
