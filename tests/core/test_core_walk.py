"""Walking and reading the demo tree through ProcoreFS against the emulator (no kernel)."""

from __future__ import annotations

import hashlib
import os
import re

from procorefs.core.fs import Layout, ProcoreFS
from procorefs.emulator import seed
from procorefs.emulator.seedtypes import SeedFile, SeedFolder
from tests.core.conftest import CoreEnv


def _project_documents() -> SeedFolder:
    demo = seed.demo_seed()
    company = next(c for c in demo.companies if c.id == seed.COMPANY_ID)
    return next(p for p in company.projects if p.id == seed.PROJECT_ID).documents


def _visible(folder: SeedFolder, prefix: str = "") -> dict[str, SeedFile | SeedFolder]:
    """What a user should see: the seed minus deleted items (and everything under them)."""
    out: dict[str, SeedFile | SeedFolder] = {}
    for child in folder.children:
        if child.deleted:
            continue
        path = f"{prefix}/{child.name}"
        out[path] = child
        if isinstance(child, SeedFolder):
            out.update(_visible(child, path))
    return out


def _walk(fs: ProcoreFS, path: str = "/") -> dict[str, str]:
    """Every path under ``path`` with its kind, the way ``find`` + ``stat`` would see it."""
    out: dict[str, str] = {}
    for entry in fs.readdir(path):
        child = f"{path.rstrip('/')}/{entry.name}"
        stat = fs.getattr(child)
        assert stat == entry.stat
        out[child] = stat.kind
        if stat.kind == "dir":
            out.update(_walk(fs, child))
    return out


def _sha_of_seed(entry: SeedFile) -> str:
    h = hashlib.sha256()
    for chunk in entry.versions[-1].content():
        h.update(chunk)
    return h.hexdigest()


def _sha_of_core(fs: ProcoreFS, path: str) -> tuple[str, int]:
    handle = fs.open(path, os.O_RDONLY)
    h = hashlib.sha256()
    offset = 0
    try:
        while True:
            chunk = fs.read(handle, offset, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
            offset += len(chunk)
    finally:
        fs.release(handle)
    return h.hexdigest(), offset


def test_demo_tree_matches_the_seed_and_every_byte_is_right(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    expected = _visible(_project_documents())
    seen = _walk(fs)
    assert set(seen) == set(expected)
    for path, entry in expected.items():
        assert seen[path] == ("dir" if isinstance(entry, SeedFolder) else "file"), path
    files = {p: e for p, e in expected.items() if isinstance(e, SeedFile)}
    assert any(len(e.versions) > 1 for e in files.values())
    for path, entry in files.items():
        digest, size = _sha_of_core(fs, path)
        assert size == fs.getattr(path).size, path
        assert digest == _sha_of_seed(entry), path
    big = fs.getattr("/" + seed.BIG_FILE_PATH)
    assert big.size == seed.BIG_FILE_SIZE > 64 * 2**20


def test_cold_walk_costs_one_request_per_folder_and_warm_walk_none(
        core_env: CoreEnv) -> None:
    fs = core_env.fs()
    assert fs.whoami() is not None  # who am I (for check-outs) is learnt once, at start
    mark = core_env.mark()
    seen = _walk(fs)
    folders = 1 + sum(1 for kind in seen.values() if kind == "dir")
    cold = core_env.api_requests(mark)
    assert len(cold) == folders, [r["path"] for r in cold]
    assert all(re.search(r"/folders(/\d+)?$", r["path"]) for r in cold)
    mark = core_env.mark()
    core_env.clock.advance(fs.config.metadata_ttl - 1)
    assert _walk(fs) == seen
    assert core_env.api_requests(mark) == []


def test_company_and_all_layouts_show_the_same_project(core_env: CoreEnv) -> None:
    project = _walk(core_env.fs())
    company = core_env.fs(Layout("company", seed.COMPANY_ID), cache="cache-company")
    names = {e.name for e in company.readdir("/")}
    project_dir = next(n for n in names if seed.PROJECT_NAME in n)
    assert {p.removeprefix(f"/{project_dir}") for p in _walk(company, f"/{project_dir}")} == \
        set(project)
    assert "Safety" in names  # company-level Documents sit beside the projects
    everything = core_env.fs(Layout("all"), cache="cache-all")
    top = [e.name for e in everything.readdir("/")]
    assert top == [seed.COMPANY_NAME]
    assert {e.name for e in everything.readdir(f"/{seed.COMPANY_NAME}")} == names
    leaf = f"/{seed.COMPANY_NAME}/{project_dir}/{seed.CHECKED_OUT_PATH}"
    assert everything.getattr(leaf).remote_id == \
        core_env.fs(cache="cache-again").getattr("/" + seed.CHECKED_OUT_PATH).remote_id


def test_recycle_bin_and_deleted_items_are_hidden(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    seen = _walk(fs)
    assert "/" + seed.DELETED_FILE_PATH not in seen
    assert "/" + seed.DELETED_FOLDER_PATH not in seen
    assert not any("recycle" in p.lower() for p in seen)


def test_long_paths_work(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    path = "/" + seed.LONG_PATH
    assert len(path) > 260
    assert fs.getattr(path).kind == "file"
