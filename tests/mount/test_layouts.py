"""What the mount's root shows: one project, a company, or every company."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import MountFactory

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
