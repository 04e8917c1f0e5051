"""The seeds hold what the issue promises: the demo tree's edge cases are really there (asserted
on the Seed structure, without a server), the large seed has the requested counts, and every
seed is internally consistent (known users, unique sibling names, older versions older).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable

import pytest

from procorefs.emulator import samples, seed
from procorefs.emulator.seed import (
    BIG_FILE_PATH,
    CHECKED_OUT_PATH,
    DELETED_FILE_PATH,
    DELETED_FOLDER_PATH,
    EMPTY_FILE_PATH,
    FORBIDDEN_NAME_PATHS,
    LONG_PATH,
    MULTI_VERSION_PATHS,
    NON_ASCII_PATHS,
    PRIVATE_FOLDER_PATH,
    build_seed,
    demo_seed,
    empty_seed,
    find,
    large_seed,
    walk,
)
from procorefs.emulator.seedtypes import Content, Seed, SeedFile, SeedFolder

MiB = 1 << 20
WINDOWS_FORBIDDEN = set('<>:"|?*\\')


def _roots(s: Seed) -> list[SeedFolder]:
    roots = []
    for company in s.companies:
        roots.append(company.documents)
        roots.extend(project.documents for project in company.projects)
    return roots


def _files(s: Seed) -> list[tuple[str, SeedFile]]:
    return [(path, e) for root in _roots(s) for path, e in walk(root)
            if isinstance(e, SeedFile)]


def _gen(content: Content) -> samples.GeneratedContent:
    assert isinstance(content, samples.GeneratedContent)
    return content


def _file(root: SeedFolder, path: str) -> SeedFile:
    entry = find(root, path)
    assert isinstance(entry, SeedFile), path
    return entry


def _folder(root: SeedFolder, path: str) -> SeedFolder:
    entry = find(root, path)
    assert isinstance(entry, SeedFolder), path
    return entry


@pytest.fixture(scope="module")
def demo() -> Seed:
    return demo_seed()


@pytest.fixture(scope="module")
def project_root(demo: Seed) -> SeedFolder:
    project = next(p for p in demo.companies[0].projects if p.id == seed.PROJECT_ID)
    return project.documents


# --- consistency rules every seed keeps ----------------------------------------------------


@pytest.mark.parametrize("make", [empty_seed, demo_seed, lambda: large_seed(40, 300)],
                         ids=["empty", "demo", "large"])
def test_seed_is_consistent(make: Callable[[], Seed]) -> None:
    s = make()
    user_ids = {u.id for u in s.users}
    assert len(user_ids) == len(s.users)
    assert len({u.login for u in s.users}) == len(s.users)
    assert s.demo_user_id in user_ids
    for app in s.apps:
        assert app.service_user_id is None or app.service_user_id in user_ids
    project_ids = [p.id for c in s.companies for p in c.projects]
    assert len(set(project_ids)) == len(project_ids)
    for company in s.companies:
        assert set(company.member_user_ids) <= user_ids
        assert company.member_user_ids[0] == seed.DEMO_USER_ID  # the admin comes first
    for root in _roots(s):
        folders = [root] + [e for _, e in walk(root) if isinstance(e, SeedFolder)]
        for folder in folders:
            names = [c.name for c in folder.children]
            assert len(names) == len(set(names)), f"duplicate names in {folder.name}"
            for name in names:
                assert name and "/" not in name and name == name.strip()
                assert len(name.encode("utf-8")) <= 255  # NAME_MAX on Linux
                assert unicodedata.is_normalized("NFC", name)
    for path, f in _files(s):
        assert f.versions, path
        assert all(v.created_by in user_ids for v in f.versions)
        ages = [v.age_seconds for v in f.versions]
        assert ages == sorted(ages, reverse=True) and len(set(ages)) == len(ages), path
        assert f.checked_out_by is None or f.checked_out_by in user_ids


def test_empty_seed_has_the_identities_and_no_documents() -> None:
    s = empty_seed()
    logins = {u.login: u.id for u in s.users}
    assert logins[seed.DEMO_USER_LOGIN] == seed.DEMO_USER_ID == s.demo_user_id
    assert logins[seed.OTHER_USER_LOGIN] == seed.OTHER_USER_ID
    demo_app = next(a for a in s.apps if a.client_id == seed.DEMO_CLIENT_ID)
    assert demo_app.client_secret == seed.DEMO_CLIENT_SECRET
    assert demo_app.redirect_uris == (
        "http://localhost:8765/callback", "http://127.0.0.1:8765/callback",
        "urn:ietf:wg:oauth:2.0:oob")
    service = next(a for a in s.apps if a.client_id == seed.SERVICE_CLIENT_ID)
    assert service.service_user_id == seed.SERVICE_USER_ID
    assert service.client_secret == seed.SERVICE_CLIENT_SECRET
    [company] = s.companies
    assert company.id == seed.COMPANY_ID and 1_000_000 <= company.id < 10_000_000
    [project] = company.projects
    assert project.id == seed.PROJECT_ID and 100_000 <= project.id < 10_000_000
    assert company.documents.children == () and project.documents.children == ()
    assert s.extra["company_admin_user_ids"] == str(seed.DEMO_USER_ID)


# --- the demo seed -------------------------------------------------------------------------


def test_demo_has_one_company_two_projects_and_company_documents(demo: Seed) -> None:
    [company] = demo.companies
    assert company.name == seed.COMPANY_NAME
    assert [p.id for p in company.projects] == [seed.PROJECT_ID, seed.SECOND_PROJECT_ID]
    for project in company.projects:
        assert project.display_name == f"{project.project_number} - {project.name}"
        assert sum(1 for _, e in walk(project.documents) if isinstance(e, SeedFile)) >= 10
    top = {c.name for c in company.documents.children}
    assert {"Standards", "Templates", "Safety"} <= top


def test_demo_has_a_realistic_construction_tree(project_root: SeedFolder) -> None:
    drawings = _folder(project_root, "01 Drawings")
    disciplines = {c.name for c in drawings.children}
    assert {"Architectural", "Structural", "Mechanical", "Electrical", "Plumbing"} <= disciplines
    sheets = [p.rsplit("/", 1)[-1] for p, e in walk(drawings) if isinstance(e, SeedFile)]
    for prefix in ("A-1", "S-1", "M-", "E-", "P-"):
        assert any(name.startswith(prefix) for name in sheets), prefix
    _file(project_root, "02 Specifications/Division 03 - Concrete/"
                        "03 30 00 - Cast-in-Place Concrete.pdf")
    kinds = {path.rsplit(".", 1)[-1] for path, e in walk(project_root)
             if isinstance(e, SeedFile)}
    assert {"pdf", "docx", "xlsx", "dwg", "jpg", "txt", "las"} <= kinds
    by_kind = {_gen(f.versions[0].content).kind
               for _, f in walk(project_root) if isinstance(f, SeedFile)}
    assert {"pdf", "docx", "xlsx", "dwg", "jpeg", "text", "las", "empty"} <= by_kind
    for folder in ("03 Submittals", "04 RFIs", "05 Contracts", "06 Photos",
                   "07 Meeting Minutes", "08 Schedules", "09 Budget", "10 CAD"):
        assert _folder(project_root, folder).children, folder


def test_demo_content_matches_the_extension(demo: Seed) -> None:
    magic = {"pdf": b"%PDF-1.4", "docx": b"PK\x03\x04", "xlsx": b"PK\x03\x04",
             "dwg": b"AC1032", "jpg": b"\xff\xd8\xff\xe0", "las": b"LASF"}
    for path, f in _files(demo):
        ext = path.rsplit(".", 1)[-1]
        if ext not in magic:
            continue
        for version in f.versions:
            first = next(iter(version.content()))
            assert first.startswith(magic[ext]), path


def test_demo_file_checked_out_by_the_other_user(project_root: SeedFolder) -> None:
    f = _file(project_root, CHECKED_OUT_PATH)
    assert f.checked_out_by == seed.OTHER_USER_ID
    assert f.checked_out_for_seconds == seed.CHECKED_OUT_FOR_SECONDS > 0
    assert len(f.versions) >= 2
    checked_out = [p for p, e in walk(project_root)
                   if isinstance(e, SeedFile) and e.checked_out_by is not None]
    assert checked_out == [CHECKED_OUT_PATH]


def test_demo_private_folder_and_file(demo: Seed, project_root: SeedFolder) -> None:
    folder = _folder(project_root, PRIVATE_FOLDER_PATH)
    assert folder.private and folder.children
    assert _file(project_root, seed.PRIVATE_FILE_PATH).private
    assert _folder(demo.companies[0].documents, seed.COMPANY_PRIVATE_FOLDER_PATH).private


def test_demo_recycle_bin_holds_a_file_and_a_folder(demo: Seed,
                                                    project_root: SeedFolder) -> None:
    assert _file(project_root, DELETED_FILE_PATH).deleted
    folder = _folder(project_root, DELETED_FOLDER_PATH)
    assert folder.deleted and any(isinstance(c, SeedFile) for c in folder.children)
    assert _file(demo.companies[0].documents, seed.COMPANY_DELETED_FILE_PATH).deleted
    deleted = [p for p, e in walk(project_root) if e.deleted]
    assert set(deleted) >= {DELETED_FILE_PATH, DELETED_FOLDER_PATH}


def test_demo_names_windows_forbids(project_root: SeedFolder) -> None:
    names = {p.rsplit("/", 1)[-1] for p, _ in walk(project_root)}
    found = set().union(*(set(n) & WINDOWS_FORBIDDEN for n in names))
    assert {":", "?", '"', "|"} <= found
    assert "RFI 012: Beam size?.pdf" in names and 'Detail "A" | Section.dwg' in names
    for path in FORBIDDEN_NAME_PATHS:
        assert set(path.rsplit("/", 1)[-1]) & WINDOWS_FORBIDDEN
        _file(project_root, path)


def test_demo_has_a_path_longer_than_260_characters(project_root: SeedFolder) -> None:
    assert len(LONG_PATH) > 260
    assert isinstance(find(project_root, LONG_PATH), SeedFile)
    longest = max(len(p) for p, _ in walk(project_root))
    assert longest == len(LONG_PATH)


def test_demo_non_ascii_names(project_root: SeedFolder) -> None:
    names = "".join(p for p, _ in walk(project_root))
    for ch in ("é", "ü", "ñ", "現", "🎉"):
        assert ch in names, ch
    assert any(ord(ch) > 0xFFFF for ch in names)  # a UTF-16 surrogate pair on Windows
    for path in NON_ASCII_PATHS:
        _file(project_root, path)


def test_demo_zero_byte_file(project_root: SeedFolder) -> None:
    f = _file(project_root, EMPTY_FILE_PATH)
    assert [b"".join(v.content()) for v in f.versions] == [b""]


def test_demo_file_over_64_mib_streams(project_root: SeedFolder) -> None:
    f = _file(project_root, BIG_FILE_PATH)
    content = f.versions[0].content
    assert isinstance(content, samples.GeneratedContent)
    assert content.size == seed.BIG_FILE_SIZE > 64 * MiB
    total = 0
    digest = hashlib.sha256()
    for chunk in content():
        assert len(chunk) <= MiB
        total += len(chunk)
        digest.update(chunk)
    assert total == seed.BIG_FILE_SIZE
    # Same bytes from a fresh seed: the stream is a function of the seed string only.
    again = hashlib.sha256()
    for chunk in _file(demo_seed().companies[0].projects[0].documents,
                       BIG_FILE_PATH).versions[0].content():
        again.update(chunk)
    assert again.digest() == digest.digest()
    big = [p for p, e in walk(project_root) if isinstance(e, SeedFile)
           and _gen(e.versions[-1].content).size > 64 * MiB]
    assert big == [BIG_FILE_PATH]


def test_demo_multi_version_files(project_root: SeedFolder) -> None:
    for path in MULTI_VERSION_PATHS:
        f = _file(project_root, path)
        assert 2 <= len(f.versions) <= 4, path
        assert all(v.notes for v in f.versions), path
        bodies = [b"".join(v.content()) for v in f.versions]
        assert len(set(bodies)) == len(bodies), path  # each version has its own bytes
    authors = {v.created_by for p in MULTI_VERSION_PATHS
               for v in _file(project_root, p).versions}
    assert len(authors) >= 3
    assert len(_file(project_root, "08 Schedules/3-Week Lookahead.xlsx").versions) == 4


def test_demo_is_deterministic(demo: Seed) -> None:
    again = demo_seed()
    first = [(p, [_gen(v.content).key for v in f.versions]) for p, f in _files(demo)]
    second = [(p, [_gen(v.content).key for v in f.versions]) for p, f in _files(again)]
    assert first == second


# --- the large seed ------------------------------------------------------------------------


def _count(root: SeedFolder) -> tuple[int, int, int]:
    folders = files = depth = 0
    for path, e in walk(root):
        if isinstance(e, SeedFolder):
            folders += 1
        else:
            files += 1
        depth = max(depth, path.count("/") + 1)
    return folders, files, depth


def test_large_seed_has_the_requested_counts() -> None:
    s = large_seed(folders=200, files=2000, file_size=4096)
    root = s.companies[0].projects[0].documents
    folders, files, depth = _count(root)
    assert (folders, files) == (200, 2000)
    assert 3 <= depth <= 5  # a few levels deep, folders and a file below the deepest
    sizes = {_gen(f.versions[0].content).size for _, f in _files(s)}
    assert sizes == {4096}
    holders = [e for _, e in walk(root) if isinstance(e, SeedFolder)
               and any(isinstance(c, SeedFile) for c in e.children)]
    assert len(holders) == 200  # files are spread over every folder


def test_large_seed_listing_and_big_files() -> None:
    s = large_seed(folders=10, files=20, file_size=100, big_files=2,
                   big_file_size=300 * MiB, folder_files=1000)
    root = s.companies[0].projects[0].documents
    listing = _folder(root, "Listing 1000")
    assert len(listing.children) == 1000
    assert all(isinstance(c, SeedFile) for c in listing.children)
    big = _folder(root, seed.BIG_FILES_FOLDER)
    assert len(big.children) == 2
    for child in big.children:
        assert isinstance(child, SeedFile)
        assert _gen(child.versions[0].content).size == 300 * MiB
    assert _count(root)[:2] == (10 + 2, 20 + 1000 + 2)
    keys = {_gen(f.versions[0].content).key for _, f in _files(s)}
    assert len(keys) == 20 + 1000 + 2  # every file has its own bytes


def test_large_seed_edge_counts() -> None:
    root = large_seed(folders=0, files=5).companies[0].projects[0].documents
    assert _count(root) == (0, 5, 1)
    root = large_seed(folders=1, files=0).companies[0].projects[0].documents
    assert _count(root)[:2] == (1, 0)
    with pytest.raises(ValueError, match="files"):
        large_seed(files=-1)


def test_large_seed_builds_cheaply() -> None:
    s = large_seed(folders=2000, files=20_000)
    assert _count(s.companies[0].projects[0].documents)[:2] == (2000, 20_000)


# --- by name ---------------------------------------------------------------------------------


def test_build_seed_by_name() -> None:
    assert build_seed("empty").name == "empty"
    assert build_seed("demo").name == "demo"
    s = build_seed("large", folders="3", files=7, file_size=10)
    assert _count(s.companies[0].projects[0].documents)[:2] == (3, 7)


def test_build_seed_rejects_unknown_names_and_knobs() -> None:
    with pytest.raises(ValueError, match="empty, demo, large"):
        build_seed("huge")
    with pytest.raises(ValueError, match="folders"):
        build_seed("large", depth=3)
    with pytest.raises(ValueError, match="integer"):
        build_seed("large", files="many")
    with pytest.raises(ValueError, match="no knobs"):
        build_seed("demo", files=3)
