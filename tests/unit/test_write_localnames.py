"""Save-pattern rules: local-only names, and the Procore calls each real save dance produces.

``Sim`` applies the rules' decisions the way the core does (see procorefs/core/localnames.py)
over a fake Procore folder, and records the Procore calls that would be made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from procorefs.clock import ManualClock
from procorefs.core.localnames import (
    DeferDelete,
    DeleteNow,
    DropLocal,
    Land,
    LocalNamePolicy,
    LocalOnly,
    MoveLocal,
    NewFile,
    Reclaim,
    RemoteRef,
    RemoteRename,
    Restore,
    SaveRules,
    SetAside,
    Superseded,
)

D = "folder"


@pytest.mark.parametrize("name", [
    "~$port.docx", "~WRD0000.tmp", "~wrl0001.tmp", "ppt1234.tmp", "lu12345abc.tmp",
    "4CCA4100", "deadbeef", ".~lock.Report.odt#", "Plan.dwl", "Plan.dwl2", "Plan_1_2_3.sv$",
    "x.ac$", "atmp1234", ".goutputstream-ABC123", ".notes.txt.swp", "notes.txt~",
    ".report.pdf.RbkzNC", ".x.Ab12Cd", "4913", "5036", ".fuse_hidden0000000a00000001",
    "desktop.ini", "Desktop.ini", "Thumbs.db", ".DS_Store", "._Report.docx",
    "Report.docx.sb-2a8b4c1d-XyZ123",
])
def test_local_only_names(name: str) -> None:
    assert LocalNamePolicy().is_local_only(name)


@pytest.mark.parametrize("name", [
    "Report.docx", "A-101 Floor Plan.pdf", "Plan.dwg", "Plan.bak", "yarn.lock", "index.lock",
    ".bashrc.backup", ".gitignore", "12345", "4CCA41001", "notes.tmpl", "budget.xlsx",
    "README", "4914",
])
def test_ordinary_names(name: str) -> None:
    assert not LocalNamePolicy().is_local_only(name)


def test_bak_beside_dwg_is_local_only_unless_configured() -> None:
    siblings = {"Plan.dwg"}
    policy = LocalNamePolicy()
    assert policy.is_local_only("Plan.bak", siblings.__contains__)
    assert not policy.is_local_only("Other.bak", siblings.__contains__)
    assert not LocalNamePolicy(upload_dwg_backups=True).is_local_only(
        "Plan.bak", siblings.__contains__)


def test_pattern_set_is_configurable() -> None:
    policy = LocalNamePolicy.with_changes(add_globs=["*.part"], remove_globs=["*.tmp"])
    assert policy.is_local_only("video.mp4.part")
    assert not policy.is_local_only("data.tmp")
    assert policy.is_local_only("~WRD0000.tmp")        # still covered by ~*.tmp


# ---- the simulator ---------------------------------------------------------------------------

@dataclass
class Remote:
    id: int
    name: str
    versions: list[bytes]
    deleted: bool = False


@dataclass
class Node:
    data: bytes
    ref: RemoteRef | None = None        # its own Procore file (None: none yet)
    target: RemoteRef | None = None     # pending content: a new version of this file
    pending: bool = False               # has bytes to commit
    local_only: bool = False
    aside: bool = False


@dataclass
class Sim:
    clock: ManualClock = field(default_factory=ManualClock)
    rules: SaveRules = field(init=False)
    remote: dict[int, Remote] = field(default_factory=dict)
    local: dict[str, Node] = field(default_factory=dict)
    deletes: dict[int, tuple[int, float]] = field(default_factory=dict)   # id -> (file, due)
    calls: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 100

    def __post_init__(self) -> None:
        self.rules = SaveRules(clock=self.clock, grace=10.0)

    # Procore
    def seed(self, name: str, data: bytes) -> int:
        self.next_id += 1
        self.remote[self.next_id] = Remote(self.next_id, name, [data])
        self.local[name] = Node(data, ref=self._ref(self.next_id))
        return self.next_id

    def _ref(self, fid: int) -> RemoteRef:
        r = self.remote[fid]
        data = r.versions[-1]
        return RemoteRef(fid, fid * 1000 + len(r.versions), len(r.versions), len(data),
                         hashlib.sha256(data).hexdigest())

    def _exists(self, name: str) -> bool:
        return name in self.local

    # the core's side
    def create(self, name: str, data: bytes = b"") -> None:
        d = self.rules.create((D, name), self._exists)
        if isinstance(d, LocalOnly):
            self.local[name] = Node(data, local_only=True)
        elif isinstance(d, NewFile):
            self.local[name] = Node(data, pending=True)
        else:
            assert isinstance(d, Reclaim)
            self._cancel_delete(d.cancel_delete)
            self.local[name] = Node(data, target=d.ref, pending=True)

    def write(self, name: str, data: bytes) -> None:
        node = self.local[name]
        node.data = data
        if not node.local_only and not node.aside:
            node.pending = True
            if node.ref is not None and node.target is None:
                node.target = node.ref

    def copy(self, src: str, dst: str) -> None:
        self.create(dst, self.local[src].data)

    def unlink(self, name: str) -> None:
        node = self.local.pop(name)
        d = self.rules.unlink((D, name), None if node.aside else node.ref)
        if isinstance(d, DeferDelete):
            self._defer(d)
        else:
            assert isinstance(d, DropLocal)

    def rename(self, src: str, dst: str) -> None:
        node = self.local.pop(src)
        old = self.local.pop(dst, None)
        plan = self.rules.rename((D, src), (D, dst), None if node.aside else node.ref,
                                 None if old is None or old.aside else
                                 (old.ref if old.ref else old.target))
        replaced, moved = plan.replaced, plan.moved
        if isinstance(replaced, DeferDelete):
            self._defer(replaced)
        elif isinstance(replaced, DeleteNow):
            self._delete(replaced.ref.file_id)
        else:
            assert replaced is None or isinstance(replaced, DropLocal | Superseded)
        if isinstance(moved, MoveLocal):
            self.local[dst] = node
        elif isinstance(moved, SetAside):
            self.local[dst] = Node(node.data, ref=moved.ref, aside=True)
        elif isinstance(moved, Restore):
            self.local[dst] = Node(node.data, ref=moved.ref)
        elif isinstance(moved, RemoteRename):
            self.calls.append(("rename", f"{self.remote[moved.ref.file_id].name}->{dst}"))
            self.remote[moved.ref.file_id].name = dst
            self.local[dst] = Node(node.data, ref=moved.ref, target=node.target,
                                   pending=node.pending)
        elif isinstance(moved, Land):
            self._cancel_delete(moved.cancel_delete)
            data = node.data
            if moved.source is not None:
                data = self.remote[moved.source.file_id].versions[
                    (moved.source.version_number or 1) - 1]
            self.local[dst] = Node(data, ref=moved.target, target=moved.target, pending=True)
        else:
            assert isinstance(moved, LocalOnly)
            self.local[dst] = Node(node.data, local_only=True)

    def _defer(self, d: DeferDelete) -> None:
        did = len(self.deletes) + 1000
        self.deletes[did] = (d.ref.file_id, d.due)
        self.rules.note_delete_journaled(d.ref, did)

    def _cancel_delete(self, did: int | None) -> None:
        if did is not None:
            self.deletes.pop(did)

    def _delete(self, fid: int) -> None:
        self.remote[fid].deleted = True
        self.calls.append(("delete", self.remote[fid].name))

    def settle(self) -> None:
        """Commit every pending file, then let every grace period run out."""
        for name, node in sorted(self.local.items()):
            if not node.pending:
                continue
            node.pending = False
            if node.target is None:
                self.next_id += 1
                self.remote[self.next_id] = Remote(self.next_id, name, [node.data])
                node.ref = self._ref(self.next_id)
                self.calls.append(("create_file", name))
                continue
            r = self.remote[node.target.file_id]
            if hashlib.sha256(node.data).hexdigest() == node.target.sha256:
                node.target = None
                continue        # identical bytes: no version
            r.versions.append(node.data)
            node.ref = self._ref(r.id)
            node.target = None
            self.calls.append(("create_version", r.name))
        self.clock.advance(11.0)
        for did, (fid, due) in sorted(self.deletes.items()):
            if due <= self.clock.time():
                self._delete(fid)
                del self.deletes[did]

    def visible(self) -> dict[str, bytes]:
        return {n: node.data for n, node in self.local.items()}


# ---- the save dances of shared/save-patterns.md ----------------------------------------------

def test_word_save_with_delete() -> None:
    sim = Sim()
    fid = sim.seed("Report.docx", b"v1")
    sim.create("~$port.docx", b"owner")
    sim.create("~WRD0000.tmp")
    sim.write("~WRD0000.tmp", b"v2")
    sim.unlink("Report.docx")
    assert "Report.docx" not in sim.visible()        # hidden at once
    sim.rename("~WRD0000.tmp", "Report.docx")
    sim.unlink("~$port.docx")
    sim.settle()
    assert sim.calls == [("create_version", "Report.docx")]
    assert sim.remote[fid].versions == [b"v1", b"v2"]
    assert not sim.remote[fid].deleted
    assert sim.visible() == {"Report.docx": b"v2"}


def test_word_save_with_set_aside() -> None:
    sim = Sim()
    fid = sim.seed("Report.docx", b"v1")
    sim.create("~$port.docx", b"owner")
    sim.create("~WRD0000.tmp", b"v2")
    sim.rename("Report.docx", "~WRL0001.tmp")
    assert sim.visible()["~WRL0001.tmp"] == b"v1"        # the old bytes stay readable
    assert sim.rules.hidden((D, "Report.docx")) is not None
    sim.rename("~WRD0000.tmp", "Report.docx")
    sim.clock.advance(3)
    sim.unlink("~WRL0001.tmp")
    sim.unlink("~$port.docx")
    sim.settle()
    assert sim.calls == [("create_version", "Report.docx")]
    assert sim.remote[fid].versions == [b"v1", b"v2"] and not sim.remote[fid].deleted


def test_excel_save_and_unchanged_save() -> None:
    sim = Sim()
    fid = sim.seed("Budget.xlsx", b"v1")
    for content, expected in ((b"v2", [("create_version", "Budget.xlsx")]), (b"v2", [])):
        sim.calls.clear()
        sim.create("4CCA4100", content)
        sim.unlink("Budget.xlsx")
        sim.rename("4CCA4100", "Budget.xlsx")
        sim.settle()
        assert sim.calls == expected
    assert sim.remote[fid].versions == [b"v1", b"v2"]


def test_excel_first_save_writes_directly() -> None:
    sim = Sim()
    sim.create("New.xlsx", b"v1")
    sim.settle()
    assert sim.calls == [("create_file", "New.xlsx")]


def test_powerpoint_save() -> None:
    sim = Sim()
    fid = sim.seed("Deck.pptx", b"v1")
    sim.create("~$Deck.pptx", b"owner")
    sim.create("ppt5E1A.tmp", b"v2")
    sim.rename("ppt5E1A.tmp", "Deck.pptx")           # rename over the existing file
    sim.unlink("~$Deck.pptx")
    sim.settle()
    assert sim.calls == [("create_version", "Deck.pptx")]
    assert sim.remote[fid].versions[-1] == b"v2"


@pytest.mark.parametrize("incremental", [False, True])
def test_autocad_save(incremental: bool) -> None:
    sim = Sim()
    fid = sim.seed("Plan.dwg", b"drawing-v1")
    sim.create("Plan.dwl", b"who")
    sim.create("Plan.dwl2", b"who")
    for n, content in enumerate((b"drawing-v2", b"drawing-v3"), start=1):
        temp = f"atmp{n:04d}"
        if incremental:
            sim.copy("Plan.dwg", temp)
            sim.write(temp, content)
        else:
            sim.create(temp, content)
        if "Plan.bak" in sim.local:
            sim.unlink("Plan.bak")
        sim.rename("Plan.dwg", "Plan.bak")
        sim.rename(temp, "Plan.dwg")
        sim.settle()
    sim.unlink("Plan.dwl")
    sim.unlink("Plan.dwl2")
    sim.settle()
    assert sim.calls == [("create_version", "Plan.dwg")] * 2
    assert sim.remote[fid].versions == [b"drawing-v1", b"drawing-v2", b"drawing-v3"]
    assert sim.visible() == {"Plan.dwg": b"drawing-v3", "Plan.bak": b"drawing-v2"}


def test_restoring_the_autocad_backup_is_a_new_version_with_the_old_bytes() -> None:
    sim = Sim()
    fid = sim.seed("Plan.dwg", b"v1")
    sim.create("atmp0001", b"v2")
    sim.rename("Plan.dwg", "Plan.bak")
    sim.rename("atmp0001", "Plan.dwg")
    sim.settle()
    sim.calls.clear()
    sim.rename("Plan.bak", "Plan.dwg")              # mv Plan.bak Plan.dwg
    sim.settle()
    assert sim.calls == [("create_version", "Plan.dwg")]
    assert sim.remote[fid].versions == [b"v1", b"v2", b"v1"]


def test_libreoffice_new_file() -> None:
    sim = Sim()
    sim.create(".~lock.Report.docx#", b"lock")
    sim.create("lu123abc.tmp")
    sim.write("lu123abc.tmp", b"doc")
    sim.copy("lu123abc.tmp", "Report.docx")
    sim.unlink("lu123abc.tmp")
    sim.unlink(".~lock.Report.docx#")
    sim.settle()
    assert sim.calls == [("create_file", "Report.docx")]


def test_libreoffice_overwrite() -> None:
    sim = Sim()
    fid = sim.seed("Report.docx", b"v1")
    sim.create(".~lock.Report.docx#", b"lock")
    sim.create("lu456def.tmp", b"v2")
    sim.rename("lu456def.tmp", "Report.docx")
    sim.unlink(".~lock.Report.docx#")
    sim.settle()
    assert sim.calls == [("create_version", "Report.docx")]
    assert sim.remote[fid].versions == [b"v1", b"v2"]


def test_vim_save_with_backup_and_probe() -> None:
    sim = Sim()
    fid = sim.seed("notes.txt", b"v1")
    sim.create(".notes.txt.swp", b"swap")
    sim.create("4913")
    sim.unlink("4913")
    sim.rename("notes.txt", "notes.txt~")
    sim.create("notes.txt", b"v2")
    sim.unlink("notes.txt~")
    sim.unlink(".notes.txt.swp")
    sim.settle()
    assert sim.calls == [("create_version", "notes.txt")]
    assert sim.remote[fid].versions == [b"v1", b"v2"]


def test_gedit_save() -> None:
    sim = Sim()
    fid = sim.seed("notes.txt", b"v1")
    sim.create(".goutputstream-QX81Z2", b"v2")
    sim.rename(".goutputstream-QX81Z2", "notes.txt")
    sim.settle()
    assert sim.calls == [("create_version", "notes.txt")]
    assert sim.remote[fid].versions[-1] == b"v2"


def test_rsync_new_and_update() -> None:
    sim = Sim()
    sim.create(".a.txt.RbkzNC", b"a1")
    sim.rename(".a.txt.RbkzNC", "a.txt")
    sim.settle()
    sim.create(".a.txt.Qw3rTy", b"a2")
    sim.rename(".a.txt.Qw3rTy", "a.txt")
    sim.settle()
    assert sim.calls == [("create_file", "a.txt"), ("create_version", "a.txt")]


def test_git_lock_rename_is_retargeted_not_uploaded_twice() -> None:
    sim = Sim()
    fid = sim.seed("config", b"c1")
    sim.create("config.lock", b"c2")                 # an ordinary name: a pending new file
    sim.rename("config.lock", "config")
    sim.create("HEAD.lock", b"ref: main")
    sim.rename("HEAD.lock", "HEAD")
    sim.settle()
    assert sorted(sim.calls) == [("create_file", "HEAD"), ("create_version", "config")]
    assert sim.remote[fid].versions == [b"c1", b"c2"]


def test_a_plain_delete_reaches_procore_after_the_grace() -> None:
    sim = Sim()
    fid = sim.seed("old.pdf", b"x")
    sim.unlink("old.pdf")
    assert sim.calls == []
    sim.settle()
    assert sim.calls == [("delete", "old.pdf")] and sim.remote[fid].deleted


def test_a_create_after_the_grace_is_a_new_file() -> None:
    sim = Sim()
    sim.seed("old.pdf", b"x")
    sim.unlink("old.pdf")
    sim.settle()
    sim.create("old.pdf", b"y")
    sim.settle()
    assert sim.calls == [("delete", "old.pdf"), ("create_file", "old.pdf")]


def test_a_fresh_create_within_the_grace_reclaims() -> None:
    sim = Sim()
    fid = sim.seed("a.pdf", b"x")
    sim.unlink("a.pdf")
    sim.clock.advance(5)
    sim.create("a.pdf", b"y")
    sim.settle()
    assert sim.calls == [("create_version", "a.pdf")]
    assert sim.remote[fid].versions == [b"x", b"y"]


def test_set_aside_renamed_back_is_restored_without_calls() -> None:
    sim = Sim()
    sim.seed("a.txt", b"x")
    sim.rename("a.txt", "a.txt~")
    sim.clock.advance(60)
    sim.rename("a.txt~", "a.txt")
    sim.settle()
    assert sim.calls == []
    assert sim.visible() == {"a.txt": b"x"}


def test_unclaimed_set_aside_deleted_deletes_the_file() -> None:
    sim = Sim()
    fid = sim.seed("a.txt", b"x")
    sim.rename("a.txt", "a.txt~")
    sim.clock.advance(60)
    assert sim.rules.hidden((D, "a.txt")) is not None
    sim.unlink("a.txt~")
    sim.settle()
    assert sim.calls == [("delete", "a.txt")] and sim.remote[fid].deleted


def test_set_aside_renamed_to_an_ordinary_name_is_a_procore_rename() -> None:
    sim = Sim()
    sim.seed("a.txt", b"x")
    sim.rename("a.txt", "a.txt~")
    sim.rename("a.txt~", "b.txt")
    sim.settle()
    assert sim.calls == [("rename", "a.txt->b.txt")]


def test_remote_rename_over_an_existing_file_deletes_it_first() -> None:
    sim = Sim()
    sim.seed("a.pdf", b"a")
    sim.seed("b.pdf", b"b")
    sim.rename("a.pdf", "b.pdf")
    sim.settle()
    assert sim.calls == [("delete", "b.pdf"), ("rename", "a.pdf->b.pdf")]


def test_pending_new_file_renamed_to_a_temp_name_is_never_uploaded() -> None:
    sim = Sim()
    sim.create("draft.txt", b"x")
    sim.rename("draft.txt", "draft.txt~")
    sim.settle()
    assert sim.calls == []


def test_restored_deletes_keep_their_reclaim_window() -> None:
    clock = ManualClock()
    rules = SaveRules(clock=clock, grace=10.0)
    ref = RemoteRef(5, 50, 1, 3)
    rules.restore_delete((D, "x.pdf"), ref, 77, clock.time() + 4)
    clock.advance(3)
    assert rules.create((D, "x.pdf")) == Reclaim(ref, 77)
    rules.restore_delete((D, "y.pdf"), ref, 78, clock.time() + 4)
    clock.advance(5)
    assert rules.create((D, "y.pdf")) == NewFile()
