"""Reorganising through ProcoreFS against the emulator: all server-side, ids kept."""

from __future__ import annotations

import errno
import os
import unicodedata

import pytest

from procorefs.api import ProcoreClient, Scope
from procorefs.core.fs import Layout
from procorefs.emulator import seed
from procorefs.errors import FsError
from tests.core.conftest import CoreEnv


def _remote_children(client: ProcoreClient, scope: Scope, folder_id: int | None
                     ) -> dict[str, int]:
    folder = client.root_folder(scope) if folder_id is None else client.folder(scope, folder_id)
    return {**{f.name: f.id for f in folder.folders if not f.is_deleted and
               not f.is_recycle_bin},
            **{f.name: f.id for f in folder.files if not f.is_deleted}}


def _errno(call, *args, **kw) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(FsError) as info:
        call(*args, **kw)
    code = info.value.errno
    assert code is not None
    return code


def test_folder_with_children_renamed_and_moved_keeps_ids(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    check = core_env.client()
    scope = core_env.project
    arch = fs.getattr("/01 Drawings/Architectural")
    inside = {e.name: e.stat.remote_id for e in fs.readdir("/01 Drawings/Architectural")}
    fs.mkdir("/Issued")
    fs.rename("/01 Drawings/Architectural", "/Issued/Architectural IFC")
    issued = fs.getattr("/Issued").remote_id
    assert _remote_children(check, scope, issued) == {"Architectural IFC": arch.remote_id}
    assert {e.name: e.stat.remote_id for e in fs.readdir("/Issued/Architectural IFC")} == inside
    assert _remote_children(check, scope, arch.remote_id) == inside
    # a file renamed and moved keeps its id and its versions
    name, file_id = next((n, i) for n, i in inside.items() if n.endswith(".pdf"))
    version = fs.getattr(f"/Issued/Architectural IFC/{name}").version
    fs.rename(f"/Issued/Architectural IFC/{name}", "/Issued/moved.pdf")
    moved = fs.getattr("/Issued/moved.pdf")
    assert (moved.remote_id, moved.version) == (file_id, version)
    assert file_id is not None
    assert check.file(scope, file_id).name == "moved.pdf"


def test_mkdir_rmdir_unlink_reach_procore(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    check = core_env.client()
    scope = core_env.project
    fs.mkdir("/Scratch")
    scratch = fs.getattr("/Scratch").remote_id
    assert scratch is not None
    assert "Scratch" in _remote_children(check, scope, None)
    assert _errno(fs.mkdir, "/Scratch") == errno.EEXIST
    assert _errno(fs.rmdir, "/04 RFIs") == errno.ENOTEMPTY
    fs.rmdir("/Scratch")
    assert "Scratch" not in _remote_children(check, scope, None)
    victim = next(e for e in fs.readdir("/04 RFIs") if e.stat.kind == "file")
    fs.unlink(f"/04 RFIs/{victim.name}")
    rfis = fs.getattr("/04 RFIs").remote_id
    # Hidden at once; Procore hears of it after the grace period a save dance may need.
    assert victim.name not in {e.name for e in fs.readdir("/04 RFIs")}
    assert victim.name in _remote_children(check, scope, rfis)
    fs.run_commits()
    assert victim.name not in _remote_children(check, scope, rfis)
    assert victim.name not in {e.name for e in fs.readdir("/04 RFIs")}


def test_rmdir_sees_a_child_added_by_someone_else(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    fs.mkdir("/Quiet")
    assert fs.readdir("/Quiet") == []
    core_env.remote("POST", "files", project_id=core_env.project_id,
                    parent_id=fs.getattr("/Quiet").remote_id, name="late.txt", content="x")
    assert _errno(fs.rmdir, "/Quiet") == errno.ENOTEMPTY  # checked with a fresh listing


def test_rename_over_an_existing_file(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    check = core_env.client()
    rfis = [e for e in fs.readdir("/04 RFIs") if e.stat.kind == "file"][:2]
    (a, b) = rfis
    assert _errno(fs.rename, f"/04 RFIs/{a.name}", f"/04 RFIs/{b.name}",
                  replace=False) == errno.EEXIST
    fs.rename(f"/04 RFIs/{a.name}", f"/04 RFIs/{b.name}")
    assert fs.getattr(f"/04 RFIs/{b.name}").remote_id == a.stat.remote_id
    assert a.name not in {e.name for e in fs.readdir("/04 RFIs")}
    assert b.stat.remote_id is not None
    gone = check.file(core_env.project, b.stat.remote_id)
    assert gone.is_deleted  # the replaced file went to the recycle bin


@pytest.mark.allow_log("cannot write .*: it is checked out in Procore by Alex Other")
def test_checked_out_file_is_read_only(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    path = "/" + seed.CHECKED_OUT_PATH
    stat = fs.getattr(path)
    assert stat.read_only
    assert _errno(fs.unlink, path) == errno.EACCES
    assert _errno(fs.rename, path, "/10 CAD/renamed.dwg") == errno.EACCES
    assert _errno(fs.open, path, os.O_WRONLY) == errno.EACCES
    assert fs.getxattr(path, "user.procore.checked_out_by").decode().startswith(
        seed.OTHER_USER_NAME)
    assert fs.getxattr(path, "user.procore.checked_out_until").endswith(b"Z")
    handle = fs.open(path, os.O_RDONLY)  # still readable
    assert len(fs.read(handle, 0, 100)) == 100
    fs.release(handle)


def test_xattrs(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    path = "/" + seed.MULTI_VERSION_PATHS[0]
    stat = fs.getattr(path)
    assert fs.getxattr(path, "user.procore.id") == str(stat.remote_id).encode()
    assert fs.getxattr(path, "user.procore.version") == str(stat.version).encode()
    url = fs.getxattr(path, "user.procore.web_url").decode()
    assert url.endswith(f"/{seed.PROJECT_ID}/project/documents/files/{stat.remote_id}")
    assert set(fs.listxattr(path)) == {"user.procore.id", "user.procore.version",
                                       "user.procore.web_url"}
    assert _errno(fs.getxattr, path, "security.selinux") == errno.ENODATA


def test_names_with_a_slash_round_trip(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    check = core_env.client()
    rfis = fs.getattr("/04 RFIs").remote_id
    core_env.remote("POST", "files", project_id=core_env.project_id, parent_id=rfis,
                    name="RFI 020/021 combined.pdf", content="both")
    core_env.clock.advance(fs.config.metadata_ttl + 1)
    assert "RFI 020／021 combined.pdf" in {e.name for e in fs.readdir("/04 RFIs")}
    fs.mkdir("/04 RFIs/Level 1／2")
    assert "Level 1/2" in _remote_children(check, core_env.project, rfis)
    fs.rename("/04 RFIs/RFI 020／021 combined.pdf", "/04 RFIs/Level 1／2/a／b.pdf")
    level = fs.getattr("/04 RFIs/Level 1／2").remote_id
    assert list(_remote_children(check, core_env.project, level)) == ["a/b.pdf"]


def test_nfd_lookup_reaches_the_nfc_file(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    path = "/" + seed.NON_ASCII_PATHS[0]
    nfd = unicodedata.normalize("NFD", path)
    assert nfd != path
    assert fs.getattr(nfd).remote_id == fs.getattr(path).remote_id


def test_name_too_long(core_env: CoreEnv) -> None:
    fs = core_env.fs()
    assert _errno(fs.mkdir, "/" + "n" * 256) == errno.ENAMETOOLONG
    assert _errno(fs.getattr, "/" + "é" * 200) == errno.ENAMETOOLONG


def test_synthetic_folders_and_scopes(core_env: CoreEnv) -> None:
    fs = core_env.fs(Layout("company", seed.COMPANY_ID))
    project = next(e.name for e in fs.readdir("/") if seed.PROJECT_NAME in e.name)
    assert _errno(fs.rename, f"/{project}", "/Renamed") == errno.EPERM
    assert _errno(fs.rmdir, f"/{project}") == errno.EPERM
    assert _errno(fs.rename, f"/{project}/04 RFIs", "/RFIs") == errno.EXDEV
    fs.mkdir(f"/{project}/From company mode")
    assert "From company mode" in {e.name for e in fs.readdir(f"/{project}")}
    fs.mkdir("/Company level")
    assert "Company level" in _remote_children(core_env.client(), Scope(seed.COMPANY_ID), None)
