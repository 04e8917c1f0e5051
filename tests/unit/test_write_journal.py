"""The write journal: durable entries and deletes, one owner at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from procorefs.clock import ManualClock
from procorefs.core.journal import Base, Journal, Target
from procorefs.errors import FsBusy

T = Target(1, 2, 30, "Report.docx")


def test_entries_survive_a_reopen(tmp_path: Path) -> None:
    clock = ManualClock()
    j = Journal.open(tmp_path, clock=clock)
    eid = j.add(T, spool="a.spool", size=5, holes=[(0, 3)], dirty=True,
                base=Base(7, 70, 2, 9, "ab" * 32), key="/p/Report.docx", not_before=5.0)
    j.update(eid, state="uploading", upload_state='{"x": 1}')
    j.close()
    j = Journal.open(tmp_path, clock=clock)
    e = j.get(eid)
    assert e is not None
    assert e.target == T and e.base == Base(7, 70, 2, 9, "ab" * 32)
    assert e.state == "uploading" and e.upload_state == '{"x": 1}'
    assert e.hole_ranges() == [(0, 3)] and e.key == "/p/Report.docx"
    assert j.spool_names() == {"a.spool"}
    j.close()


def test_update_if_only_in_the_given_states(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    eid = j.add(T, spool="a.spool", size=0, holes=[], dirty=True, base=None)
    assert j.update_if(eid, ("waiting",), state="open")
    assert not j.update_if(eid, ("waiting",), state="uploading")
    assert j.entries(("open",))[0].id == eid
    with pytest.raises(ValueError, match="not journal columns"):
        j.update(eid, bogus=1)
    j.remove(eid)
    assert j.get(eid) is None
    j.close()


def test_deletes(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    did = j.add_delete(1, 2, 99, due_at=100.0, parent_id=30, name="old.pdf")
    j.update_delete(did, due_at=150.0, attempts=1, failure="offline")
    d = j.get_delete(did)
    assert d is not None and d.due_at == 150.0 and d.failure == "offline" and d.file_id == 99
    assert [x.id for x in j.deletes()] == [did]
    assert j.remove_delete(did) and not j.remove_delete(did)
    j.close()


def test_one_mount_per_cache_dir(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    with pytest.raises(FsBusy):
        Journal.open(tmp_path)
    j.close()
    Journal.open(tmp_path).close()


def test_wal_and_full_sync(tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    mode = j._conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = j._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == "wal" and sync == 2          # 2 = FULL
    j.close()
