"""Explorer on the WinFsp adapter: browse, copy out, names, long paths, rename, delete, mkdir.

Each test plays the callbacks in the order Windows makes them (``driver.py``) on the real
core against the emulator, and asserts on what Procore holds, read over plain HTTP.
"""

from __future__ import annotations

import hashlib

import pytest

from procorefs.adapters.winfsp import fileinfo as fi
from procorefs.adapters.winfsp import ntstatus
from procorefs.adapters.winfsp.names import WindowsNameCodec
from procorefs.emulator import seed
from tests.windows.conftest import USER_SID, WinEnv, wait_for
from tests.windows.driver import ATTRIBUTES, DELETE, READ, WRITE, NTStatus, winpath

codec = WindowsNameCodec()


def local(path: str) -> str:
    """A path of Procore names as the drive shows it."""
    return "/".join(codec.to_local(part) for part in path.split("/"))


def test_volume_label_and_security(win: WinEnv) -> None:
    info = win.ops.get_volume_info()
    assert info["volume_label"] == "Procore – Harbor View Medical O…"
    assert info["total_size"] >= info["free_size"] > 0
    attributes, descriptor, size = win.ops.get_security_by_name("\\01 Drawings")
    assert attributes & fi.FILE_ATTRIBUTE_DIRECTORY
    assert descriptor.startswith(f"O:{USER_SID}") and f"(A;OICI;FA;;;{USER_SID})" in descriptor
    assert size > 0
    win.ops.set_volume_label("Site files")
    assert win.ops.get_volume_info()["volume_label"] == "Site files"


def test_listing_with_a_pattern_and_markers(win: WinEnv) -> None:
    folder = "01 Drawings/Architectural"
    remote = win.children(*folder.split("/"))
    everything = win.windows.find_files(folder, per_call=2)
    names = [e["file_name"] for e in everything]
    assert names[:2] == [".", ".."]
    assert sorted(names[2:]) == sorted(codec.to_local(n) for n in remote)
    assert names[2:] == sorted(names[2:], key=str.upper)
    for entry in everything[2:]:
        item = remote[codec.to_remote(entry["file_name"])]
        assert entry["file_size"] == item.size
        assert entry["file_attributes"] & fi.FILE_ATTRIBUTE_ARCHIVE
        assert entry["index_number"] == item.id << 1

    pdfs = win.windows.find_files(folder, "*.PDF", per_call=1)
    assert [e["file_name"] for e in pdfs] == [n for n in names if n.lower().endswith(".pdf")]
    plans = win.windows.find_files(folder, "a-1??*", per_call=4)
    assert [e["file_name"] for e in plans] == ["A-101 First Floor Plan.pdf",
                                               "A-102 Second Floor Plan.pdf"]
    assert win.windows.find_files(folder, "desktop.ini") == []
    # The root shows neither "." nor "..".
    assert not {".", ".."} & {e["file_name"] for e in win.windows.find_files("")}


def test_explorer_asks_for_single_names_case_insensitively(win: WinEnv) -> None:
    context = win.windows.open("04 RFIs", READ, fi.FILE_DIRECTORY_FILE)
    try:
        info = win.windows.call("get_dir_info_by_name", context, "rfi log.XLSX")
        assert info["file_size"] == win.item("04 RFIs", "RFI Log.xlsx").size
        with pytest.raises(NTStatus) as missing:
            win.windows.call("get_dir_info_by_name", context, "desktop.ini")
        assert missing.value.status == ntstatus.STATUS_OBJECT_NAME_NOT_FOUND
    finally:
        win.windows.close(context)


def test_copy_out(win: WinEnv) -> None:
    path = "01 Drawings/Architectural/A-101 First Floor Plan.pdf"
    item = win.item(*path.split("/"))
    context = win.windows.open(path, READ, fi.FILE_NON_DIRECTORY_FILE)
    try:
        assert win.windows.call("get_file_info", context)["file_size"] == item.size
        data = win.windows.read_all(context, chunk=100_000)
        # Reading at the end answers END_OF_FILE, not an empty success.
        with pytest.raises(NTStatus) as eof:
            win.windows.call("read", context, item.size, 4096)
        assert eof.value.status == ntstatus.STATUS_END_OF_FILE
    finally:
        win.windows.close(context)
    assert len(data) == item.size
    assert hashlib.sha256(data).hexdigest() == win.remote.sha256(item)


def test_an_attributes_only_open_takes_no_core_handle(win: WinEnv) -> None:
    context = win.windows.open("10 CAD/Xref - Site Base.dwg", ATTRIBUTES)
    try:
        assert context.handle is None
        assert win.windows.call("get_file_info", context)["file_size"] == 921600
    finally:
        win.windows.close(context)


@pytest.mark.parametrize("path", seed.FORBIDDEN_NAME_PATHS)
def test_names_with_forbidden_characters_round_trip(win: WinEnv, path: str) -> None:
    folder, name = path.split("/")
    shown = codec.to_local(name)
    assert shown != name and not set('\\/:*?"<>|') & set(shown)
    assert shown in {e["file_name"] for e in win.windows.find_files(folder)}
    item = win.item(folder, name)
    assert win.windows.sha256(f"{folder}/{shown}") == win.remote.sha256(item)

    # Renamed with look-alikes typed by the user: Procore gets the real characters.
    new_local = "Renamed： ＜really＞？␠"
    assert codec.to_remote(new_local) == "Renamed: <really>? "
    win.windows.move(f"{folder}/{shown}", f"{folder}/{new_local}")
    after = win.children(folder)
    assert name not in after
    assert after["Renamed: <really>? "].id == item.id


def test_device_names_and_trailing_dots_reach_procore_as_typed(win: WinEnv) -> None:
    context = win.windows.create("04 RFIs/ＣON．", directory=True)
    win.windows.close(context)
    assert win.item("04 RFIs", "CON.").kind == "dir"
    assert "ＣON．" in {e["file_name"] for e in win.windows.find_files("04 RFIs")}
    win.windows.move("04 RFIs/ＣON．", "04 RFIs/ｐrn.txt")
    assert win.item("04 RFIs", "prn.txt").kind == "dir"


def test_a_path_over_260_characters(win: WinEnv) -> None:
    path = local(seed.LONG_PATH)
    assert len("P:" + winpath(path)) > 260
    item = win.item(*seed.LONG_PATH.split("/"))
    assert win.windows.sha256(path) == win.remote.sha256(item)

    deeper = path.rsplit("/", 1)[0] + "/" + "Coordination Review Comments Round 2 " * 3
    deeper = deeper.rstrip()
    context = win.windows.create(deeper, directory=True)
    win.windows.close(context)
    assert len(winpath(deeper)) > 360
    parent = seed.LONG_PATH.rsplit("/", 1)[0].split("/")
    assert win.item(*parent, deeper.rsplit("/", 1)[1]).kind == "dir"
    assert [e["file_name"] for e in win.windows.find_files(deeper)] == [".", ".."]


def test_create_folder(win: WinEnv) -> None:
    context = win.windows.create("04 RFIs/New folder", directory=True)
    assert win.windows.call("get_file_info", context)["file_attributes"] & \
        fi.FILE_ATTRIBUTE_DIRECTORY
    win.windows.close(context)
    folder = win.item("04 RFIs", "New folder")
    assert folder.kind == "dir"
    # Explorer names the next one "New folder (2)" because the first now exists.
    with pytest.raises(NTStatus) as exists:
        win.windows.create("04 RFIs/NEW FOLDER", directory=True)
    assert exists.value.status == ntstatus.STATUS_OBJECT_NAME_COLLISION
    with pytest.raises(NTStatus) as direct:
        win.windows.call("create", "\\04 RFIs\\New folder", fi.FILE_DIRECTORY_FILE, READ,
                         fi.FILE_ATTRIBUTE_DIRECTORY, None, 0)
    assert direct.value.status == ntstatus.STATUS_OBJECT_NAME_COLLISION


def test_rename_of_a_folder_keeps_open_handles_valid(win: WinEnv) -> None:
    before = win.item("01 Drawings", "Structural")
    plan = win.item("01 Drawings", "Structural", "S-101 Foundation Plan.pdf")
    inside = win.windows.open("01 Drawings/Structural/S-101 Foundation Plan.pdf", READ)
    folder = win.windows.open("01 Drawings/Structural", READ, fi.FILE_DIRECTORY_FILE)
    try:
        first = win.windows.call("read", inside, 0, 1000)
        win.windows.move("01 Drawings/Structural", "02 Specifications/Structural (moved)")
        # Handles opened before the move still answer, under the new path.
        assert inside.path == "/02 Specifications/Structural (moved)/S-101 Foundation Plan.pdf"
        assert win.windows.call("get_file_info", inside)["file_size"] == plan.size
        assert win.windows.call("read", inside, 0, 1000) == first
        assert "S-101 Foundation Plan.pdf" in {
            e["file_name"] for e in win.windows.find_files("02 Specifications/Structural (moved)")}
        listed = win.windows.call("read_directory", folder, None, None)
        assert "S-101 Foundation Plan.pdf" in {e["file_name"] for e in listed}
    finally:
        win.windows.close(inside)
        win.windows.close(folder)
    after = win.item("02 Specifications", "Structural (moved)")
    assert after.id == before.id
    assert "Structural" not in win.children("01 Drawings")


def test_rename_with_and_without_replace(win: WinEnv) -> None:
    folder = "08 Schedules"
    source, target = "Baseline Schedule.xlsx", "3-Week Lookahead.xlsx"
    source_item = win.item(folder, source)
    with pytest.raises(NTStatus) as refused:
        win.windows.move(f"{folder}/{source}", f"{folder}/{target}")
    assert refused.value.status == ntstatus.STATUS_OBJECT_NAME_COLLISION
    # A case-only rename is a rename of the same file, not a collision.
    win.windows.move(f"{folder}/{source}", f"{folder}/BASELINE schedule.xlsx")
    assert win.item(folder, "BASELINE schedule.xlsx").id == source_item.id

    victim = win.windows.open(f"{folder}/{target}", READ)
    try:
        win.windows.move(f"{folder}/BASELINE schedule.xlsx", f"{folder}/{target}",
                         replace=True)
        # The replaced file's open handle keeps answering what it was.
        assert win.windows.call("get_file_info", victim)["file_size"] > 0
    finally:
        win.windows.close(victim)
    assert win.children(folder)[target].id == source_item.id
    # Windows never replaces a folder by MoveFileEx.
    with pytest.raises(NTStatus) as folder_target:
        win.windows.move("04 RFIs/RFI Log.xlsx", "05 Contracts", replace=True)
    assert folder_target.value.status == ntstatus.STATUS_ACCESS_DENIED


def test_delete_through_can_delete_and_cleanup(win: WinEnv) -> None:
    path = "07 Meeting Minutes/Café Tenant Fit-Out Kickoff.docx"
    item = win.item(*path.split("/"))
    win.windows.delete(path)
    # The Procore DELETE waits out the save-pattern grace period (a save may land on the path).
    # Each probe is an API request against the emulator's rate limit: ask twice a second.
    wait_for(lambda: win.remote.file(item.id)["is_deleted"] is True, "the delete in Procore",
             interval=0.5)
    assert "Café Tenant Fit-Out Kickoff.docx" not in {
        e["file_name"] for e in win.windows.find_files("07 Meeting Minutes")}
    with pytest.raises(NTStatus) as gone:
        win.windows.open(path)
    assert gone.value.status == ntstatus.STATUS_OBJECT_NAME_NOT_FOUND

    context = win.windows.create("12 Closeout/Empty", directory=True)
    win.windows.close(context)
    win.windows.delete("12 Closeout/Empty", directory=True)
    assert "Empty" not in win.children("12 Closeout")


def test_delete_is_refused_where_windows_can_still_say_so(win: WinEnv) -> None:
    cases = {
        "01 Drawings": ntstatus.STATUS_DIRECTORY_NOT_EMPTY,
        seed.CHECKED_OUT_PATH: ntstatus.STATUS_ACCESS_DENIED,
        seed.READ_ONLY_FILE_PATH: ntstatus.STATUS_ACCESS_DENIED,
        "": ntstatus.STATUS_ACCESS_DENIED,
    }
    for path, status in cases.items():
        context = win.windows.open(path, DELETE)
        try:
            with pytest.raises(NTStatus) as refused:
                win.windows.call("can_delete", context, winpath(path))
            assert refused.value.status == status, path
        finally:
            win.windows.close(context)
    assert "01 Drawings" in win.children()
    assert win.item(*seed.CHECKED_OUT_PATH.split("/")).kind == "file"


@pytest.mark.parametrize("path", [seed.READ_ONLY_FILE_PATH, seed.CHECKED_OUT_PATH])
@pytest.mark.allow_log(r"cannot write .*: it is checked out in Procore by ")
def test_a_read_only_file_opened_for_writing_is_access_denied(win: WinEnv, path: str) -> None:
    attributes, _, _ = win.ops.get_security_by_name(winpath(path))
    assert attributes & fi.FILE_ATTRIBUTE_READONLY
    status = win.windows.status_of(lambda: win.windows.open(path, READ | WRITE))
    assert status == ntstatus.STATUS_ACCESS_DENIED
    assert status != ntstatus.STATUS_MEDIA_WRITE_PROTECTED
    # Reading it is fine.
    assert win.windows.read_file(path)


def test_times_and_attributes_set_by_applications_are_accepted_and_not_kept(
        win: WinEnv) -> None:
    path = "11 Survey/Survey Control Notes.txt"
    context = win.windows.open(path, READ | fi.FILE_WRITE_ATTRIBUTES)
    try:
        before = win.windows.call("get_file_info", context)
        after = win.windows.call("set_basic_info", context, fi.FILE_ATTRIBUTE_HIDDEN,
                                 1, 2, 3, 4, None)
        assert after == before
        win.windows.call("set_security", context, 4, None)
    finally:
        win.windows.close(context)


def test_opening_a_folder_as_a_file_and_a_file_as_a_folder(win: WinEnv) -> None:
    assert win.windows.status_of(
        lambda: win.windows.open("01 Drawings", READ, fi.FILE_NON_DIRECTORY_FILE)
    ) == ntstatus.STATUS_FILE_IS_A_DIRECTORY
    assert win.windows.status_of(
        lambda: win.windows.open("04 RFIs/RFI Log.xlsx", READ, fi.FILE_DIRECTORY_FILE)
    ) == ntstatus.STATUS_NOT_A_DIRECTORY
    assert win.windows.status_of(
        lambda: win.windows.open("04 RFIs/missing.pdf")
    ) == ntstatus.STATUS_OBJECT_NAME_NOT_FOUND


@pytest.mark.allow_log("Procore has both 'Punch List.txt' and 'PUNCH LIST.txt', which Windows "
                       "cannot tell apart")
def test_names_that_differ_only_by_case_are_both_reachable(
        win: WinEnv, caplog: pytest.LogCaptureFixture) -> None:
    folder = win.item("12 Closeout")
    for name, content in (("Punch List.txt", "older"), ("PUNCH LIST.txt", "newer")):
        response = win.emulator.control("POST", "remote/files", json={
            "project_id": seed.PROJECT_ID, "parent_id": folder.id, "name": name,
            "content": content})
        assert response.status_code == 201, response.text
    older = win.item("12 Closeout", "Punch List.txt")
    newer = win.item("12 Closeout", "PUNCH LIST.txt")
    assert older.id < newer.id
    shown = {e["file_name"] for e in win.windows.find_files("12 Closeout")}
    assert "Punch List.txt" in shown
    assert f"PUNCH LIST [{newer.id}].txt" in shown
    assert win.windows.read_file("12 Closeout/punch list.TXT") == b"older"
    assert win.windows.read_file(f"12 Closeout/PUNCH LIST [{newer.id}].txt") == b"newer"
    told = [r.getMessage() for r in caplog.records if "cannot tell apart" in r.getMessage()]
    assert len(told) == 1, told        # logged once, though the folder was listed again
    assert f"shown as 'PUNCH LIST [{newer.id}].txt'" in told[0]
