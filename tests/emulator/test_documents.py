"""Contract tests: the Documents tool at project and company level (procore-api.md §4):
folders, files, versions, check-out, the recycle bin, privacy and the flat /documents index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from procorefs.emulator.seed import (
    COMPANY_ID,
    COMPANY_NAME,
    OTHER_USER_ID,
    OTHER_USER_LOGIN,
    PM_USER_LOGIN,
    PROJECT_ID,
    PROJECT_NAME,
)
from tests.emulator.test_rest_helpers import (
    PROJECT,
    api,
    documents,
    download,
    make_file,
    make_folder,
    root,
    upload,
)
from tests.support.emulator import Emulator

FOLDER_KEYS = ["id", "custom_fields", "name", "name_with_path", "parent_id", "updated_at",
               "is_deleted", "is_recycle_bin", "is_tracked", "tracked_folder", "has_children",
               "has_children_files", "has_children_folders", "folders", "files", "private",
               "read_only"]
FILE_KEYS = ["id", "name", "parent_id", "size", "description", "created_at", "updated_at",
             "checked_out_until", "checked_out_by", "name_with_path", "private", "is_tracked",
             "tracked_folder", "file_type", "legacy_id", "is_deleted", "read_only",
             "custom_fields", "file_versions"]
VERSION_KEYS = ["id", "number", "notes", "size", "url", "created_at", "created_by",
                "prostore_file", "file_id"]
NORMAL_KEYS = ["id", "created_at", "created_by", "custom_fields", "document_type", "is_deleted",
               "is_recycle_bin", "name", "name_with_path", "parent_id", "private", "read_only",
               "updated_at"]


def _names(folder: dict[str, Any]) -> list[str]:
    return [f["name"] for f in folder["folders"]] + [f["name"] for f in folder["files"]]


def _bin_id(emulator: Emulator) -> int:
    project = emulator.info()["companies"][0]["projects"][0]
    return int(project["recycle_bin_id"])


# -- folders ----------------------------------------------------------------------------------


def test_root_folder_is_one_object_with_documented_keys(emulator: Emulator) -> None:
    with api(emulator) as client:
        body = root(client)
    assert list(body) == FOLDER_KEYS
    assert body["parent_id"] is None
    assert body["name"] == PROJECT_NAME
    assert body["name_with_path"] == PROJECT_NAME
    assert body["folders"] == [] and body["files"] == []
    assert body["id"] == emulator.info()["companies"][0]["projects"][0]["root_folder_id"]


def test_show_folder_expands_one_level_only(emulator: Emulator) -> None:
    with api(emulator) as client:
        top = make_folder(client, "Drawings")
        mid = make_folder(client, "Architectural", top["id"])
        make_folder(client, "Details", mid["id"])
        make_file(client, "A-101.pdf", b"%PDF-1.7", mid["id"])
        shown = client.get(f"/rest/v1.0/folders/{top['id']}", params=PROJECT).json()
    assert list(shown) == FOLDER_KEYS
    child = shown["folders"][0]
    assert child["name"] == "Architectural"
    assert child["folders"] == [] and child["files"] == []
    assert child["has_children"] and child["has_children_files"]
    assert child["has_children_folders"]
    assert child["name_with_path"] == f"{PROJECT_NAME}/Drawings/Architectural"


def test_show_folder_flags(emulator: Emulator) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "F")
        make_folder(client, "Sub", folder["id"])
        made = make_file(client, "a.txt", b"one", folder["id"])
        version = client.post("/rest/v1.0/file_versions",
                              params={**PROJECT, "file_id": made["id"]},
                              json={"file_version": {"upload_uuid": upload(client, b"two")}})
        assert version.status_code == 201
        path = f"/rest/v1.0/folders/{folder['id']}"
        no_folders = client.get(path, params={**PROJECT, "exclude_folders": "true"}).json()
        no_files = client.get(path, params={**PROJECT, "exclude_files": "true"}).json()
        latest = client.get(path, params={**PROJECT,
                                          "show_latest_file_version_only": "true"}).json()
        full = client.get(path, params=PROJECT).json()
    assert no_folders["folders"] == [] and len(no_folders["files"]) == 1
    assert no_files["files"] == [] and len(no_files["folders"]) == 1
    assert [v["number"] for v in latest["files"][0]["file_versions"]] == [2]
    assert [v["number"] for v in full["files"][0]["file_versions"]] == [2, 1]


@pytest.mark.parametrize("encoding", ["json", "form", "multipart"])
def test_create_folder_in_every_body_encoding(emulator: Emulator, encoding: str) -> None:
    with api(emulator) as client:
        parent = make_folder(client, "Parent")
        fields = {"folder[name]": "Child", "folder[parent_id]": str(parent["id"]),
                  "folder[explicit_permissions]": "true"}
        if encoding == "json":
            answer = client.post("/rest/v1.0/folders", params=PROJECT, json={
                "folder": {"name": "Child", "parent_id": parent["id"],
                           "explicit_permissions": True}})
        elif encoding == "form":
            answer = client.post("/rest/v1.0/folders", params=PROJECT, data=fields)
        else:
            answer = client.post("/rest/v1.0/folders", params=PROJECT,
                                 files={k: (None, v) for k, v in fields.items()})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["parent_id"] == parent["id"]
    assert body["private"] is True
    assert body["folders"] == [] and body["files"] == []


def test_duplicate_folder_name_is_a_400(emulator: Emulator) -> None:
    with api(emulator) as client:
        make_folder(client, "Same")
        again = client.post("/rest/v1.0/folders", params=PROJECT,
                            json={"folder": {"name": "Same"}})
    assert again.status_code == 400
    assert again.json() == {"errors": {"name": ["has already been taken"]}}


def test_rename_and_move_recompute_name_with_path_for_the_subtree(emulator: Emulator) -> None:
    with api(emulator) as client:
        a = make_folder(client, "A")
        b = make_folder(client, "B")
        inner = make_folder(client, "Inner", a["id"])
        deep = make_file(client, "deep.txt", b"x", inner["id"])
        renamed = client.patch(f"/rest/v1.0/folders/{a['id']}", params=PROJECT,
                               json={"folder": {"name": "A2"}})
        assert renamed.status_code == 200
        assert renamed.json()["name_with_path"] == f"{PROJECT_NAME}/A2"
        moved = client.patch(f"/rest/v1.0/folders/{a['id']}", params=PROJECT,
                             data={"folder[parent_id]": str(b["id"])})
        assert moved.status_code == 200, moved.text
        file_now = client.get(f"/rest/v1.0/files/{deep['id']}", params=PROJECT).json()
        inner_now = client.get(f"/rest/v1.0/folders/{inner['id']}", params=PROJECT).json()
    assert moved.json()["parent_id"] == b["id"]
    assert file_now["name_with_path"] == f"{PROJECT_NAME}/B/A2/Inner/deep.txt"
    assert inner_now["name_with_path"] == f"{PROJECT_NAME}/B/A2/Inner"


def test_moving_a_folder_into_itself_or_its_subtree_is_refused(emulator: Emulator) -> None:
    with api(emulator) as client:
        a = make_folder(client, "A")
        inner = make_folder(client, "Inner", a["id"])
        into_self = client.patch(f"/rest/v1.0/folders/{a['id']}", params=PROJECT,
                                 json={"folder": {"parent_id": a["id"]}})
        into_child = client.patch(f"/rest/v1.0/folders/{a['id']}", params=PROJECT,
                                  json={"folder": {"parent_id": inner["id"]}})
        unchanged = client.get(f"/rest/v1.0/folders/{a['id']}", params=PROJECT).json()
    for answer in (into_self, into_child):
        assert answer.status_code == 422
        assert "parent_id" in answer.json()["errors"]
    assert unchanged["parent_id"] == root_id(emulator)


def root_id(emulator: Emulator) -> int:
    return int(emulator.info()["companies"][0]["projects"][0]["root_folder_id"])


def test_delete_folder_goes_to_the_recycle_bin(emulator: Emulator) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "Old")
        kept = make_file(client, "kept.txt", b"k", folder["id"])
        deleted = client.delete(f"/rest/v1.0/folders/{folder['id']}", params=PROJECT)
        assert deleted.status_code == 200
        assert deleted.content == b""
        shown = client.get(f"/rest/v1.0/folders/{folder['id']}", params=PROJECT).json()
        inside = client.get(f"/rest/v1.0/files/{kept['id']}", params=PROJECT).json()
        top = root(client)
        recycle = client.get(f"/rest/v1.0/folders/{_bin_id(emulator)}", params=PROJECT).json()
        again = client.post("/rest/v1.0/folders", params=PROJECT, json={"folder": {"name": "Old"}})
    assert shown["is_deleted"] is True and shown["id"] == folder["id"]
    assert inside["is_deleted"] is True
    assert "Old" not in _names(top)
    assert all(not f["is_recycle_bin"] for f in top["folders"])
    assert recycle["is_recycle_bin"] is True
    assert recycle["parent_id"] == top["id"]
    assert [f["id"] for f in recycle["folders"]] == [folder["id"]]
    assert again.status_code == 201


def test_the_root_and_the_bin_cannot_be_changed(emulator: Emulator) -> None:
    with api(emulator) as client:
        rid = root(client)["id"]
        renamed = client.patch(f"/rest/v1.0/folders/{rid}", params=PROJECT,
                               json={"folder": {"name": "x"}})
        binned = client.delete(f"/rest/v1.0/folders/{_bin_id(emulator)}", params=PROJECT)
    assert renamed.status_code == 422
    assert binned.status_code == 422


# -- files ------------------------------------------------------------------------------------


def test_create_file_returns_the_documented_file(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "Plan.pdf", b"%PDF" * 100, description="first")
        shown = client.get(f"/rest/v1.0/files/{made['id']}", params=PROJECT).json()
        data = download(client, made["file_versions"][0])
    assert list(made) == FILE_KEYS
    assert made == shown
    assert made["id"] > 2**32
    assert made["size"] == 400
    assert made["file_type"] == "PDF"
    assert made["description"] == "first"
    assert made["name_with_path"] == f"{PROJECT_NAME}/Plan.pdf"
    version = made["file_versions"][0]
    assert list(version) == VERSION_KEYS
    assert version["id"] > 2**32
    assert version["number"] == 1
    assert version["file_id"] == made["id"]
    assert version["prostore_file"]["name"] == "Plan.pdf"
    assert version["url"].startswith(emulator.api_url)
    assert data == b"%PDF" * 100
    assert made["created_at"].endswith("Z") and len(made["created_at"]) == 20


@pytest.mark.parametrize("encoding", ["form", "multipart"])
def test_create_file_with_bracket_keyed_forms(emulator: Emulator, encoding: str) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "Forms")
        fields = {"file[name]": "form.txt", "file[parent_id]": str(folder["id"]),
                  "file[upload_uuid]": upload(client, b"form body")}
        if encoding == "form":
            answer = client.post("/rest/v1.0/files", params=PROJECT, data=fields)
        else:
            answer = client.post("/rest/v1.0/files", params=PROJECT,
                                 files={k: (None, v) for k, v in fields.items()})
    assert answer.status_code == 201, answer.text
    assert answer.json()["parent_id"] == folder["id"]
    assert answer.json()["size"] == 9


def test_legacy_multipart_data_part(emulator: Emulator) -> None:
    with api(emulator) as client:
        answer = client.post("/rest/v1.0/files", params=PROJECT,
                             files={"file[name]": (None, "legacy.bin"),
                                    "file[data]": ("legacy.bin", b"\x00\x01" * 1000)})
        assert answer.status_code == 201, answer.text
        data = download(client, answer.json()["file_versions"][0])
    assert data == b"\x00\x01" * 1000


def test_duplicate_file_name_is_422_unless_unique_name(emulator: Emulator) -> None:
    with api(emulator) as client:
        make_file(client, "report.xlsx")
        clash = client.post("/rest/v1.0/files", params=PROJECT, json={
            "file": {"name": "report.xlsx", "upload_uuid": upload(client, b"2")}})
        first = make_file(client, "report.xlsx", unique_name=True)
        second = make_file(client, "report.xlsx", unique_name=True)
    assert clash.status_code == 422
    assert clash.json() == {"errors": {"name": ["has already been taken"]}}
    assert first["name"] == "report (1).xlsx"
    assert second["name"] == "report (2).xlsx"


def test_an_upload_is_used_once_and_only_by_its_owner(emulator: Emulator) -> None:
    with api(emulator) as client:
        uuid = upload(client, b"once")
        ok = client.post("/rest/v1.0/files", params=PROJECT,
                         json={"file": {"name": "a.txt", "upload_uuid": uuid}})
        reuse = client.post("/rest/v1.0/files", params=PROJECT,
                            json={"file": {"name": "b.txt", "upload_uuid": uuid}})
        mine = upload(client, b"mine")
    with api(emulator, OTHER_USER_LOGIN) as other:
        stolen = other.post("/rest/v1.0/files", params=PROJECT,
                            json={"file": {"name": "c.txt", "upload_uuid": mine}})
    assert ok.status_code == 201
    assert reuse.status_code == 422
    assert "upload_uuid" in reuse.json()["errors"]
    assert stolen.status_code == 422


def test_a_refused_create_does_not_use_up_the_upload(emulator: Emulator) -> None:
    with api(emulator) as client:
        make_file(client, "taken.txt")
        uuid = upload(client, b"keep me")
        clash = client.post("/rest/v1.0/files", params=PROJECT,
                            json={"file": {"name": "taken.txt", "upload_uuid": uuid}})
        retry = client.post("/rest/v1.0/files", params=PROJECT,
                            json={"file": {"name": "free.txt", "upload_uuid": uuid}})
    assert clash.status_code == 422
    assert retry.status_code == 201


def test_rename_move_and_new_version_through_patch(emulator: Emulator) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "Dest")
        made = make_file(client, "v.txt", b"one")
        emulator.advance_clock(10)
        patched = client.patch(f"/rest/v1.0/files/{made['id']}", params=PROJECT, json={
            "file": {"name": "w.txt", "parent_id": folder["id"],
                     "upload_uuid": upload(client, b"second!")}})
        assert patched.status_code == 200, patched.text
        body = patched.json()
        newest = max(body["file_versions"], key=lambda v: v["number"])
        content = download(client, newest)
    assert body["id"] == made["id"]
    assert body["name"] == "w.txt"
    assert body["name_with_path"] == f"{PROJECT_NAME}/Dest/w.txt"
    assert newest["number"] == 2
    assert body["size"] == 7
    assert content == b"second!"
    assert body["updated_at"] > made["updated_at"]


def test_file_versions_endpoints(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "doc.docx", b"v1")
        created = client.post("/rest/v1.0/file_versions",
                              params={**PROJECT, "file_id": made["id"]},
                              data={"file_version[upload_uuid]": upload(client, b"v2 bytes"),
                                    "file_version[notes]": "rev B"})
        assert created.status_code == 201, created.text
        version = created.json()
        shown = client.get(f"/rest/v1.0/file_versions/{version['id']}", params=PROJECT)
        file_now = client.get(f"/rest/v1.0/files/{made['id']}",
                              params={**PROJECT, "show_latest_version_only": "true"}).json()
        missing = client.post("/rest/v1.0/file_versions", params=PROJECT,
                              json={"file_version": {"upload_uuid": "x"}})
    assert list(version) == VERSION_KEYS
    assert version["number"] == 2
    assert version["notes"] == "rev B"
    assert version["size"] == 8
    assert shown.json() == version
    assert [v["id"] for v in file_now["file_versions"]] == [version["id"]]
    assert file_now["size"] == 8
    assert missing.status_code == 400


def test_delete_file_keeps_it_in_the_recycle_bin(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "gone.txt")
        deleted = client.delete(f"/rest/v1.0/files/{made['id']}", params=PROJECT)
        shown = client.get(f"/rest/v1.0/files/{made['id']}", params=PROJECT).json()
        again = client.delete(f"/rest/v1.0/files/{made['id']}", params=PROJECT)
        recycle = client.get(f"/rest/v1.0/folders/{_bin_id(emulator)}", params=PROJECT).json()
        top = root(client)
        recreated = make_file(client, "gone.txt")
    assert deleted.status_code == 200 and deleted.content == b""
    assert shown["is_deleted"] is True
    assert again.status_code == 404
    assert [f["id"] for f in recycle["files"]] == [made["id"]]
    assert "gone.txt" not in _names(top)
    assert recreated["id"] != made["id"]


# -- check-out ---------------------------------------------------------------------------------


def _checkout(client: httpx.Client, file_id: int, until: str | None) -> httpx.Response:
    return client.patch(f"/rest/v1.0/files/{file_id}", params=PROJECT,
                        json={"file": {"checked_out_until": until}})


def test_check_out_blocks_other_users_with_the_documented_409(emulator: Emulator) -> None:
    until = datetime.fromtimestamp(emulator.info()["now"] + 3600, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    with api(emulator, PM_USER_LOGIN) as owner:
        made = make_file(owner, "locked.dwg", b"dwg")
        out = _checkout(owner, made["id"], until)
        assert out.status_code == 200, out.text
        body = out.json()
        assert body["checked_out_until"] == until
        assert body["checked_out_by"]["login"] == PM_USER_LOGIN
        with api(emulator, OTHER_USER_LOGIN) as other:
            rename = other.patch(f"/rest/v1.0/files/{made['id']}", params=PROJECT,
                                 json={"file": {"name": "mine.dwg"}})
            delete = other.delete(f"/rest/v1.0/files/{made['id']}", params=PROJECT)
            version = other.post("/rest/v1.0/file_versions",
                                 params={**PROJECT, "file_id": made["id"]},
                                 json={"file_version": {"upload_uuid": upload(other, b"x")}})
            checkin_by_other = _checkout(other, made["id"], None)
            for answer in (rename, delete, version, checkin_by_other):
                assert answer.status_code == 409, answer.text
                conflict = answer.json()
                assert list(conflict) == ["errors", "error_type", "file"]
                assert conflict["errors"]["base"]
                assert conflict["file"]["id"] == made["id"]
                assert conflict["file"]["name"] == "locked.dwg"
            assert _checkout(owner, made["id"], None).status_code == 200
            renamed = other.patch(f"/rest/v1.0/files/{made['id']}", params=PROJECT,
                                  json={"file": {"name": "mine.dwg"}})
    assert renamed.status_code == 200
    assert renamed.json()["checked_out_by"] is None
    assert renamed.json()["checked_out_until"] is None


def test_the_owner_of_a_check_out_may_still_write(emulator: Emulator) -> None:
    until = datetime.fromtimestamp(emulator.info()["now"] + 600, UTC).isoformat()
    with api(emulator, OTHER_USER_LOGIN) as client:
        made = make_file(client, "mine.txt")
        assert _checkout(client, made["id"], until).status_code == 200
        renamed = client.patch(f"/rest/v1.0/files/{made['id']}", params=PROJECT,
                               data={"file[name]": "still-mine.txt"})
    assert renamed.status_code == 200
    assert renamed.json()["checked_out_by"]["id"] == OTHER_USER_ID


def test_an_admin_may_reset_a_check_out_and_expired_ones_lapse(emulator: Emulator) -> None:
    with api(emulator, OTHER_USER_LOGIN) as other:
        made = make_file(other, "held.txt")
    held = emulator.control("POST", f"remote/files/{made['id']}/checkout",
                            json={"login": OTHER_USER_LOGIN, "seconds": 600})
    assert held.json()["checked_out_by"]["id"] == OTHER_USER_ID
    with api(emulator) as admin:
        reset = _checkout(admin, made["id"], None)
    assert reset.status_code == 200
    assert reset.json()["checked_out_by"] is None
    emulator.control("POST", f"remote/files/{made['id']}/checkout",
                     json={"login": OTHER_USER_LOGIN, "seconds": 60})
    emulator.advance_clock(61)
    with api(emulator, PM_USER_LOGIN) as pm:
        lapsed = pm.get(f"/rest/v1.0/files/{made['id']}", params=PROJECT).json()
        renamed = pm.patch(f"/rest/v1.0/files/{made['id']}", params=PROJECT,
                           json={"file": {"name": "free.txt"}})
    assert lapsed["checked_out_by"] is None
    assert renamed.status_code == 200


# -- privacy ----------------------------------------------------------------------------------


def test_private_folders_are_seen_only_by_their_creator_and_admins(emulator: Emulator) -> None:
    with api(emulator, OTHER_USER_LOGIN) as creator:
        private = make_folder(creator, "Secret", explicit_permissions=True)
        inside = make_file(creator, "plan.txt", b"s", private["id"])
    with api(emulator, PM_USER_LOGIN) as outsider:
        listing = root(outsider)
        hidden = outsider.get(f"/rest/v1.0/folders/{private['id']}", params=PROJECT)
        hidden_file = outsider.get(f"/rest/v1.0/files/{inside['id']}", params=PROJECT)
        index = documents(outsider).json()
    with api(emulator) as admin:
        admin_listing = root(admin)
        admin_index = documents(admin, view="extended").json()
    assert "Secret" not in _names(listing)
    assert hidden.status_code == 404
    assert hidden_file.status_code == 404
    assert {d["id"] for d in index}.isdisjoint({private["id"], inside["id"]})
    assert "Secret" in _names(admin_listing)
    entry = next(d for d in admin_index if d["id"] == inside["id"])
    assert entry["private_parent"] == {"id": private["id"], "name": "Secret",
                                       "name_with_path": f"{PROJECT_NAME}/Secret"}


# -- the flat index ---------------------------------------------------------------------------


def test_documents_index_views(emulator: Emulator) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "Specs")
        made = make_file(client, "03 30 00.pdf", b"spec", folder["id"])
        normal = documents(client)
        extended = documents(client, view="extended").json()
    assert normal.status_code == 200
    rows = normal.json()
    assert all(list(row) == NORMAL_KEYS for row in rows)
    by_id = {row["id"]: row for row in rows}
    assert by_id[made["id"]]["document_type"] == "file"
    assert by_id[folder["id"]]["document_type"] == "folder"
    assert by_id[made["id"]]["created_by"]["company_name"] == COMPANY_NAME
    recycle = [row for row in rows if row["is_recycle_bin"]]
    assert len(recycle) == 1
    ext = {row["id"]: row for row in extended}
    details = ext[made["id"]]["file"]
    assert set(details) == {"checked_out_by", "checked_out_until", "current_version",
                            "description", "file_type"}
    assert details["current_version"]["size"] == 4
    assert details["file_type"] == "PDF"
    assert ext[folder["id"]]["children"] == {"has_children": True, "has_children_files": True,
                                             "has_children_folders": False}


def test_documents_filters(emulator: Emulator) -> None:
    with api(emulator) as client:
        keep = make_folder(client, "Keep")
        sub = make_folder(client, "Sub", keep["id"])
        in_sub = make_file(client, "in-sub.txt", b"1", sub["id"])
        other = make_folder(client, "Other")
        trashed = make_file(client, "trash.txt", b"2", other["id"])
        client.delete(f"/rest/v1.0/files/{trashed['id']}", params=PROJECT)
        subtree = documents(client, **{"filters[folder_id]": keep["id"]}).json()
        files_only = documents(client, **{"filters[document_type]": "file"}).json()
        binned = documents(client, **{"filters[is_in_recycle_bin]": "true"}).json()
        live = documents(client, **{"filters[is_in_recycle_bin]": "false"}).json()
        by_type = documents(client, **{"filters[file_type][]": "txt",
                                       "filters[search]": "sub"}).json()
        missing = documents(client, **{"filters[folder_id]": 1})
    assert {d["id"] for d in subtree} == {keep["id"], sub["id"], in_sub["id"]}
    assert {d["document_type"] for d in files_only} == {"file"}
    assert {d["id"] for d in binned} >= {trashed["id"]}
    assert all(d["is_deleted"] or d["is_recycle_bin"] for d in binned)
    assert trashed["id"] not in {d["id"] for d in live}
    assert not any(d["is_recycle_bin"] for d in live)
    assert [d["id"] for d in by_type] == [in_sub["id"]]
    assert missing.status_code == 404


def test_documents_updated_at_ranges_see_every_kind_of_change(emulator: Emulator) -> None:
    with api(emulator) as client:
        a = make_file(client, "a.txt")
        b = make_file(client, "b.txt")
        c = make_file(client, "c.txt")
        d = make_file(client, "d.txt")
        folder = make_folder(client, "F")
        untouched = make_file(client, "untouched.txt")
        emulator.advance_clock(3600)
        start = emulator.info()["now"]
        client.patch(f"/rest/v1.0/files/{a['id']}", params=PROJECT,
                     json={"file": {"name": "a2.txt"}})
        client.post("/rest/v1.0/file_versions", params={**PROJECT, "file_id": b["id"]},
                    json={"file_version": {"upload_uuid": upload(client, b"new")}})
        until = datetime.fromtimestamp(start + 600, UTC).isoformat()
        client.patch(f"/rest/v1.0/files/{c['id']}", params=PROJECT,
                     json={"file": {"checked_out_until": until}})
        client.delete(f"/rest/v1.0/files/{d['id']}", params=PROJECT)
        client.patch(f"/rest/v1.0/folders/{folder['id']}", params=PROJECT,
                     json={"folder": {"name": "G"}})
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        window = (f"{datetime.fromtimestamp(start - 1, UTC).strftime(fmt)}..."
                  f"{datetime.fromtimestamp(start + 60, UTC).strftime(fmt)}")
        changed = documents(client, **{"filters[updated_at]": window,
                                       "sort": "updated_at"}).json()
        day = datetime.fromtimestamp(start, UTC).date().isoformat()
        by_day = documents(client, **{"filters[updated_at]": f"{day}...{day}"}).json()
        created = documents(client, **{"filters[created_at]": window}).json()
        bad = documents(client, **{"filters[updated_at]": "yesterday...today"})
    ids = {row["id"] for row in changed}
    assert ids == {a["id"], b["id"], c["id"], d["id"], folder["id"]}
    assert untouched["id"] not in ids
    assert ids <= {row["id"] for row in by_day}
    assert created == []
    assert bad.status_code == 400


def test_documents_sort_orders(emulator: Emulator) -> None:
    with api(emulator) as client:
        for name in ("b.txt", "A.txt", "c.txt"):
            make_file(client, name)
        make_folder(client, "m-folder")
        by_name = documents(client, sort="name",
                            **{"filters[is_in_recycle_bin]": "false"}).json()
        desc = documents(client, sort="-name",
                         **{"filters[is_in_recycle_bin]": "false"}).json()
        typed = documents(client, sort="document_type_then_name",
                          **{"filters[is_in_recycle_bin]": "false"}).json()
        bad = documents(client, sort="size")
    assert [d["name"] for d in by_name] == ["A.txt", "b.txt", "c.txt", "m-folder"]
    assert [d["name"] for d in desc] == ["m-folder", "c.txt", "b.txt", "A.txt"]
    assert [d["document_type"] for d in typed] == ["file", "file", "file", "folder"]
    assert bad.status_code == 400


# -- company level ----------------------------------------------------------------------------


def test_company_level_documents(emulator: Emulator) -> None:
    base = f"/rest/v1.0/companies/{COMPANY_ID}"
    with api(emulator) as client:
        top = client.get(f"{base}/folders").json()
        folder = client.post(f"{base}/folders", json={"folder": {"name": "Safety"}})
        assert folder.status_code == 201, folder.text
        uuid = upload(client, b"company bytes", project_id=None)
        made = client.post(f"{base}/files", json={
            "file": {"name": "policy.pdf", "parent_id": folder.json()["id"],
                     "upload_uuid": uuid}})
        assert made.status_code == 201, made.text
        version = client.post(f"{base}/file_versions", params={"file_id": made.json()["id"]},
                              json={"file_version": {
                                  "upload_uuid": upload(client, b"v2", project_id=None)}})
        index = client.get(f"{base}/documents")
        project_scope = client.get(f"/rest/v1.0/files/{made.json()['id']}", params=PROJECT)
        content = download(client, version.json())
    assert top["name"] == COMPANY_NAME
    assert made.json()["name_with_path"] == f"{COMPANY_NAME}/Safety/policy.pdf"
    assert version.status_code == 201
    assert content == b"v2"
    assert {d["name"] for d in index.json()} >= {"Safety", "policy.pdf"}
    assert project_scope.status_code == 404


def test_demo_seed_ids_and_recycle_bin(demo_emulator: Emulator) -> None:
    with api(demo_emulator) as client:
        index = documents(client, per_page=10000, view="extended").json()
    files = [d for d in index if d["document_type"] == "file"]
    assert files and all(d["id"] > 2**32 for d in files)
    assert any(d["is_deleted"] for d in index)
    assert any(d["file"]["checked_out_by"] for d in files)
    assert all(d["file"]["current_version"]["id"] > 2**32 for d in files)


def test_project_id_is_not_reachable_from_another_project(demo_emulator: Emulator) -> None:
    info = demo_emulator.info()
    second = info["companies"][0]["projects"][1]
    with api(demo_emulator) as client:
        answer = client.get(f"/rest/v1.0/folders/{second['root_folder_id']}",
                            params={"project_id": PROJECT_ID})
    assert answer.status_code == 404


def test_a_read_only_item_answers_403_and_stays_as_it_was(demo_emulator: Emulator) -> None:
    from procorefs.emulator.seed import READ_ONLY_FILE_PATH
    name = READ_ONLY_FILE_PATH.rsplit("/", 1)[-1]
    with api(demo_emulator) as client:
        listed = documents(client, **{"view": "extended", "per_page": 1000}).json()
        (row,) = [d for d in listed if d["name"] == name and d["document_type"] == "file"]
        assert row["read_only"] is True
        before = client.get(f"/rest/v1.0/files/{row['id']}", params=PROJECT).json()
        rename = client.patch(f"/rest/v1.0/files/{row['id']}", params=PROJECT,
                              json={"file": {"name": "renamed.pdf"}})
        delete = client.delete(f"/rest/v1.0/files/{row['id']}", params=PROJECT)
        version = client.post("/rest/v1.0/file_versions",
                              params={**PROJECT, "file_id": row["id"]},
                              json={"file_version": {"upload_uuid": upload(client, b"x")}})
        for answer in (rename, delete, version):
            assert answer.status_code == 403, answer.text
            assert isinstance(answer.json()["errors"], str) and answer.json()["errors"]
        after = client.get(f"/rest/v1.0/files/{row['id']}", params=PROJECT).json()
    assert (after["name"], after["is_deleted"], after["read_only"]) == (name, False, True)
    assert len(after["file_versions"]) == len(before["file_versions"])
