"""What the mount's root shows: one project, a company, or every company."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import MountFactory
from tests.mount.remote import Remote
from tests.mount.writing import stopped

pytestmark = pytest.mark.mount

PROJECT_DIR = f"{seed.PROJECT_NUMBER} - {seed.PROJECT_NAME}"
SECOND_DIR = f"{seed.SECOND_PROJECT_NUMBER} - {seed.SECOND_PROJECT_NAME}"


def test_a_company_mount_shows_its_documents_and_one_folder_per_project(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(project_id=None, company_id=seed.COMPANY_ID)
    names = set(os.listdir(mounted.path))
    assert {PROJECT_DIR, SECOND_DIR, "Standards", "Templates", "Safety"} <= names
    project = mounted.path / PROJECT_DIR
    assert os.getxattr(project, "user.procore.project_id") == str(seed.PROJECT_ID).encode()
    assert os.getxattr(project, "user.procore.company_id") == str(seed.COMPANY_ID).encode()
    rel = seed.MULTI_VERSION_PATHS[0]
    remote = mounted.remote()
    expected = remote.sha256(remote.tree()[rel])
    assert hashlib.sha256((project / rel).read_bytes()).hexdigest() == expected
    assert (mounted.path / seed.COMPANY_MULTI_VERSION_PATH).is_file()
    assert not (mounted.path / seed.COMPANY_DELETED_FILE_PATH).exists()


def test_an_all_companies_mount_shows_one_folder_per_company(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(project_id=None, company_id=None)
    assert os.listdir(mounted.path) == [seed.COMPANY_NAME]
    company = mounted.path / seed.COMPANY_NAME
    assert {PROJECT_DIR, SECOND_DIR, "Standards"} <= set(os.listdir(company))
    assert (company / PROJECT_DIR / seed.MULTI_VERSION_PATHS[0]).is_file()


def test_company_and_project_folders_cannot_be_renamed_or_removed(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(project_id=None, company_id=seed.COMPANY_ID)
    with pytest.raises(PermissionError):
        os.rename(mounted.path / PROJECT_DIR, mounted.path / "Renamed")
    with pytest.raises(PermissionError):
        os.rmdir(mounted.path / SECOND_DIR)
    assert (mounted.path / PROJECT_DIR).is_dir()


def test_moving_between_projects_is_exdev(mount_factory: MountFactory) -> None:
    mounted = mount_factory(project_id=None, company_id=seed.COMPANY_ID)
    source = mounted.path / PROJECT_DIR / seed.MULTI_VERSION_PATHS[0]
    with pytest.raises(OSError) as excinfo:
        os.rename(source, mounted.path / SECOND_DIR / "moved.pdf")
    assert excinfo.value.errno == errno.EXDEV  # so mv falls back to copy + delete
    assert source.is_file()


def test_mv_of_a_file_into_another_project_copies_it_there_and_removes_it_here(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory(project_id=None, company_id=seed.COMPANY_ID)
    rel = seed.MULTI_VERSION_PATHS[0]
    source = mounted.path / PROJECT_DIR / rel
    original = hashlib.sha256(source.read_bytes()).hexdigest()
    target = mounted.path / SECOND_DIR / "moved.pdf"
    done = subprocess.run(["mv", str(source), str(target)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert not source.exists()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == original
    remote = stopped(mounted)
    assert rel not in remote.tree()  # in the first project's recycle bin, not live
    second = Remote(remote.api_url, mounted.emulator.token(seed.DEMO_USER_LOGIN)["access_token"],
                    seed.COMPANY_ID, seed.SECOND_PROJECT_ID)
    try:
        moved = second.tree()["moved.pdf"]
        assert second.sha256(moved) == original
    finally:
        second.close()
