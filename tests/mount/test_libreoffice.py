"""A real LibreOffice (headless) saves straight onto the mount: a new file, then over it.

``soffice --convert-to docx --outdir <mount>/...`` performs the save dance traced in
shared/save-patterns.md (lock file, ``lu*.tmp``, O_EXCL create or rename over the target,
fsync). Procore must get one version per save, of the same file id, and never the lock or the
temp. LibreOffice is installed by ``scripts/ensure-libreoffice`` (``make test`` runs it); a
machine without it skips here and fails under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mount.conftest import MountFactory
from tests.mount.writing import FOLDER, bin_names, item, stopped

pytestmark = pytest.mark.mount


@pytest.fixture(scope="module")
def soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("soffice is missing: `make test` must run scripts/ensure-libreoffice")
        pytest.skip("LibreOffice is not installed (scripts/ensure-libreoffice installs it)")
    return found


def _convert(soffice: str, source: Path, outdir: Path, profile: Path) -> None:
    done = subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--convert-to", "docx", "--outdir", str(outdir), str(source)],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Error" not in done.stderr, done.stderr


def test_libreoffice_converts_onto_the_mount_then_saves_over_it(
        mount_factory: MountFactory, soffice: str, tmp_path: Path) -> None:
    mounted = mount_factory()
    profile = tmp_path / "lo-profile"
    source = tmp_path / "Site Meeting.txt"
    outdir = mounted.path / FOLDER
    before_bin = bin_names(mounted.remote())

    source.write_text("Site meeting minutes\n\n1. Slab pour moved to Tuesday.\n")
    _convert(soffice, source, outdir, profile)                 # a new file
    first = (outdir / "Site Meeting.docx").read_bytes()
    assert first[:2] == b"PK"                                   # a real .docx (a zip)
    file_id = item(mounted.remote(), f"{FOLDER}/Site Meeting.docx").id   # fsync'd: in Procore

    source.write_text("Site meeting minutes\n\n1. Slab pour moved to Wednesday.\n2. More.\n")
    _convert(soffice, source, outdir, profile)                 # saves over the existing one
    second = (outdir / "Site Meeting.docx").read_bytes()
    assert second != first
    leftovers = [n for n in os.listdir(outdir) if n.startswith((".~lock", "lu"))]
    assert leftovers == []

    remote = stopped(mounted)
    found = item(remote, f"{FOLDER}/Site Meeting.docx")
    assert found.id == file_id                                  # the same Procore file
    assert len(remote.versions(file_id)) == 2                   # one version per save
    names = {p.rsplit("/", 1)[-1] for p in remote.tree()} | bin_names(remote)
    assert not [n for n in names if n.startswith(".~lock") or n.endswith(".tmp")]
    assert bin_names(remote) == before_bin
