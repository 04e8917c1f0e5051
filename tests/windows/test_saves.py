"""Writing through the WinFsp adapter: copy-in, and the save dances of Word, Excel and AutoCAD.

The callbacks come in the order Windows makes them for each application
(``shared/save-patterns.md``); the assertions are on Procore's side, after the commit:
one save is ONE new version of the SAME file id, with the new bytes, and no temp, lock,
owner or backup file ever reaches Procore (not even its recycle bin).
"""

from __future__ import annotations

import hashlib
import os

import pytest

from procorefs.adapters.winfsp import fileinfo as fi
from procorefs.adapters.winfsp import ntstatus
from procorefs.adapters.winfsp.names import WindowsNameCodec
from tests.windows.conftest import WinEnv, wait_for
from tests.windows.driver import DELETE, READ, WRITE, NTStatus, winpath

codec = WindowsNameCodec()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def committed(env: WinEnv, *names: str, digest: str) -> bool:
    try:
        item = env.item(*names)
    except KeyError:
        return False
    return item.version_url is not None and env.remote.sha256(item) == digest


def test_copy_in(win: WinEnv) -> None:
    data = os.urandom(3 * 2**20 + 17)
    win.windows.write_new_file("04 RFIs/Field Report 2024-05-01.pdf", data)
    # The new file is there at once, with its size, before Procore has it.
    listed = {e["file_name"]: e for e in win.windows.find_files("04 RFIs", "*.pdf")}
    assert listed["Field Report 2024-05-01.pdf"]["file_size"] == len(data)
    assert win.windows.sha256("04 RFIs/Field Report 2024-05-01.pdf") == sha(data)
    wait_for(lambda: committed(win, "04 RFIs", "Field Report 2024-05-01.pdf",
                               digest=sha(data)), "the copied file in Procore")

    # A name typed with look-alikes arrives in Procore with the real characters.
    small = b"Is the beam W12x26 or W12x30?\r\n"
    win.windows.write_new_file("04 RFIs/Q： beam size？.txt", small)
    wait_for(lambda: committed(win, "04 RFIs", "Q: beam size?.txt", digest=sha(small)),
             "the file with a look-alike name in Procore")


def test_write_to_end_constrained_io_overwrite_and_set_size(win: WinEnv) -> None:
    path = "12 Closeout/notes.txt"
    context = win.windows.create(path)
    try:
        assert win.windows.call("write", context, b"hello", 0, False, False) == 5
        assert win.windows.call("write", context, b", world", 123, True, False) == 7
        # Paging I/O never extends a file: past the end nothing, across it only up to it.
        assert win.windows.call("write", context, b"XYZ", 12, False, True) == 0
        assert win.windows.call("write", context, b"WORLD!!", 7, False, True) == 5
        assert win.windows.call("get_file_info", context)["file_size"] == 12
        assert win.windows.call("read", context, 0, 100) == b"hello, WORLD"
        win.windows.call("set_file_size", context, 5, False)
        assert win.windows.call("read", context, 0, 100) == b"hello"
        # A smaller allocation size cuts the file; a larger one leaves it alone.
        win.windows.call("set_file_size", context, 4096, True)
        win.windows.call("set_file_size", context, 4, True)
        assert win.windows.call("get_file_info", context)["file_size"] == 4
    finally:
        win.windows.close(context)

    # CREATE_ALWAYS on an existing file: open for writing, then overwrite to empty.
    context = win.windows.open(path, READ | WRITE)
    try:
        win.windows.call("overwrite", context, fi.FILE_ATTRIBUTE_ARCHIVE, False, 0)
        assert win.windows.call("get_file_info", context)["file_size"] == 0
        win.windows.write_all(context, b"final")
        win.windows.call("flush", context)
    finally:
        win.windows.close(context)
    wait_for(lambda: committed(win, "12 Closeout", "notes.txt", digest=sha(b"final")),
             "notes.txt in Procore")


def test_a_write_through_flush_waits_for_procore(win: WinEnv) -> None:
    context = win.windows.create("12 Closeout/punch list.txt", options=fi.FILE_WRITE_THROUGH)
    try:
        win.windows.write_all(context, b"1. touch-up paint, suite 210\r\n")
        win.windows.call("flush", context)
        # No waiting: FlushFileBuffers on a write-through handle returned after the commit.
        assert committed(win, "12 Closeout", "punch list.txt",
                         digest=sha(b"1. touch-up paint, suite 210\r\n"))
    finally:
        win.windows.close(context)


def test_word_save_with_set_aside(win: WinEnv) -> None:
    folder, name = "07 Meeting Minutes", "OAC Meeting 014 - 2024-03-12.docx"
    doc_path, owner = f"{folder}/{name}", f"{folder}/~$C Meeting 014 - 2024-03-12.docx"
    temp, aside = f"{folder}/~WRD0000.tmp", f"{folder}/~WRL0001.tmp"
    item = win.item(folder, name)
    versions = len(win.versions(item.id))
    names_before = win.names()

    document = win.windows.open(doc_path, READ)  # Word keeps the document open
    original = win.windows.read_all(document)
    win.windows.write_new_file(owner, b"\x0aDana Demo" + b"\x00" * 40,
                               attributes=fi.FILE_ATTRIBUTE_HIDDEN)
    edited = original + b"\x00edited by Word"

    win.windows.write_new_file(temp, edited)
    win.windows.move(doc_path, aside)
    # The handle opened before the move still answers, for the set-aside file.
    assert win.windows.call("get_file_info", document)["file_size"] == len(original)
    win.windows.move(temp, doc_path)
    win.windows.close(document)
    win.windows.delete(aside)
    win.windows.delete(owner)

    assert win.windows.sha256(doc_path) == sha(edited)
    wait_for(lambda: len(win.versions(item.id)) == versions + 1, "Word's save in Procore")
    after = win.item(folder, name)
    assert after.id == item.id
    assert win.remote.sha256(after) == sha(edited)
    assert win.names() == names_before  # no ~WRD, ~WRL or ~$ file, not even deleted


def test_word_save_with_posix_rename_over_the_document(win: WinEnv) -> None:
    folder, name = "07 Meeting Minutes", "OAC Meeting 015 - 2024-03-26.docx"
    doc_path, temp = f"{folder}/{name}", f"{folder}/~WRD0002.tmp"
    item = win.item(folder, name)
    versions = len(win.versions(item.id))
    names_before = win.names()
    edited = win.windows.read_file(doc_path) + b"\x00second edit"

    win.windows.write_new_file(temp, edited)
    # FileRenameInformationEx with POSIX semantics and replace-if-exists, then a query of
    # the same handle (Windows 10+ Word).
    context = win.windows.open(temp, DELETE | READ)
    try:
        win.windows.call("rename", context, winpath(temp), winpath(doc_path), True)
        info = win.windows.call("get_file_info", context)
        assert info["file_size"] == len(edited)
        assert context.path == "/" + doc_path
    finally:
        win.windows.close(context)

    wait_for(lambda: len(win.versions(item.id)) == versions + 1, "Word's save in Procore")
    assert win.remote.sha256(win.item(folder, name)) == sha(edited)
    assert win.names() == names_before


def test_excel_save(win: WinEnv) -> None:
    folder, name = "08 Schedules", "3-Week Lookahead.xlsx"
    book, temp = f"{folder}/{name}", f"{folder}/4CCA4100"
    item = win.item(folder, name)
    versions = len(win.versions(item.id))
    names_before = win.names()
    edited = win.windows.read_file(book)[:-4] + b"EDIT"

    win.windows.write_new_file(temp, edited)
    win.windows.delete(book)
    win.windows.move(temp, book)

    assert win.windows.sha256(book) == sha(edited)
    wait_for(lambda: len(win.versions(item.id)) == versions + 1, "Excel's save in Procore")
    after = win.item(folder, name)
    assert after.id == item.id
    assert win.remote.sha256(after) == sha(edited)
    assert win.names() == names_before
    assert win.remote.file(item.id)["is_deleted"] is False


def test_autocad_save(win: WinEnv) -> None:
    folder, name = "10 CAD", 'Detail "A" | Section.dwg'
    shown = codec.to_local(name)
    stem = shown.removesuffix(".dwg")
    drawing, temp = f"{folder}/{shown}", f"{folder}/atmp5824"
    bak, dwl, dwl2 = (f"{folder}/{stem}.bak", f"{folder}/{stem}.dwl", f"{folder}/{stem}.dwl2")
    item = win.item(folder, name)
    versions = len(win.versions(item.id))
    names_before = win.names()

    opened = win.windows.open(drawing, READ)
    original = win.windows.read_all(opened)
    win.windows.write_new_file(dwl, b"Dana Demo\r\nWS-0042\r\n")
    win.windows.write_new_file(dwl2, b"<whohas>Dana Demo</whohas>")
    edited = original[:1000] + b"REVISED" + original[1007:]

    win.windows.write_new_file(temp, edited)
    assert win.windows.status_of(lambda: win.windows.open(bak)) == \
        ntstatus.STATUS_OBJECT_NAME_NOT_FOUND
    win.windows.move(drawing, bak)
    win.windows.move(temp, drawing)
    win.windows.close(opened)
    win.windows.delete(dwl)
    win.windows.delete(dwl2)

    # The backup stays on the drive (AutoCAD's "restore from .bak"), never in Procore.
    assert win.windows.sha256(bak) == sha(original)
    assert win.windows.sha256(drawing) == sha(edited)
    wait_for(lambda: len(win.versions(item.id)) == versions + 1, "AutoCAD's save in Procore")
    after = win.item(folder, name)
    assert after.id == item.id
    assert win.remote.sha256(after) == sha(edited)
    assert win.names() == names_before


def test_a_new_file_deleted_on_close_never_reaches_procore(win: WinEnv) -> None:
    names_before = win.names()
    context = win.windows.create("04 RFIs/scratch.txt",
                                 options=fi.FILE_DELETE_ON_CLOSE)
    win.windows.write_all(context, b"scratch")
    win.windows.call("can_delete", context, "\\04 RFIs\\scratch.txt")
    win.windows.close(context, delete_as="04 RFIs/scratch.txt")
    with pytest.raises(NTStatus):
        win.windows.open("04 RFIs/scratch.txt")
    # A copy-in that lands afterwards proves the commit queue had its turn.
    win.windows.write_new_file("04 RFIs/after.txt", b"after")
    wait_for(lambda: committed(win, "04 RFIs", "after.txt", digest=sha(b"after")),
             "after.txt in Procore")
    assert win.names() == names_before | {"after.txt"}
