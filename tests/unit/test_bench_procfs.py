"""Reading peak memory and CPU time from /proc text, and the bench's own I/O helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import io
from bench.procfs import PeakSampler, cpu_seconds, stat_cpu_ticks, status_field_kib

STATUS = """Name:\tpython3
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  812340 kB
VmHWM:\t   65536 kB
VmRSS:\t   40960 kB
Threads:\t12
"""


def test_status_fields_in_kib() -> None:
    assert status_field_kib(STATUS, "VmHWM") == 65536
    assert status_field_kib(STATUS, "VmRSS") == 40960
    assert status_field_kib(STATUS, "VmSwap") is None
    assert status_field_kib(STATUS, "Threads") == 12  # no unit: taken as is
    assert status_field_kib("VmHWM:\n", "VmHWM") is None
    assert status_field_kib("VmHWM: lots kB\n", "VmHWM") is None


def test_cpu_ticks_survive_a_command_name_with_spaces_and_parens() -> None:
    fields = ["S"] + ["0"] * 10 + ["150", "25"] + ["0"] * 30
    text = "1234 (python (bench) x) " + " ".join(fields)
    assert stat_cpu_ticks(text) == 175
    assert stat_cpu_ticks("garbage") is None
    assert stat_cpu_ticks("1 (x) S 1 2") is None


def test_own_process_can_be_measured() -> None:
    used = cpu_seconds(os.getpid())
    assert used is not None and used > 0
    with PeakSampler(os.getpid()) as peak:
        ballast = bytearray(32 * 2**20)
        ballast[::4096] = b"x" * len(ballast[::4096])
    assert peak.method in ("VmHWM", "VmRSS sampled")
    assert peak.peak_mib is not None and peak.peak_mib >= 32
    del ballast
    with PeakSampler(None) as nothing:
        pass
    assert nothing.peak_mib is None


def test_random_offsets_are_whole_pages_inside_the_file_and_repeatable() -> None:
    offsets = io.random_offsets(10 * io.PAGE + 100, 500, seed=3)
    assert offsets == io.random_offsets(10 * io.PAGE + 100, 500, seed=3)
    assert all(o % io.PAGE == 0 and o + io.PAGE <= 10 * io.PAGE + 100 for o in offsets)
    assert len(set(offsets)) == 10
    with pytest.raises(ValueError):
        io.random_offsets(100, 1, seed=0)


def test_walk_counts_folders_and_files_and_prunes_at_the_top(tmp_path: Path) -> None:
    (tmp_path / "Folder 1" / "sub").mkdir(parents=True)
    (tmp_path / "Folder 1" / "a.bin").write_bytes(b"a")
    (tmp_path / "Folder 1" / "sub" / "b.bin").write_bytes(b"b")
    (tmp_path / "Other").mkdir()
    (tmp_path / "Other" / "c.bin").write_bytes(b"c")
    (tmp_path / "top.bin").write_bytes(b"t")
    folders, files, secs = io.walk_stat(tmp_path, lambda name: name.startswith("Folder"))
    assert (folders, files) == (3, 3) and secs >= 0
    assert io.walk_stat(tmp_path)[:2] == (4, 4)


def test_save_replays_leave_only_the_document(tmp_path: Path) -> None:
    for app, (doc, replay, _) in io.SAVES.items():
        folder = tmp_path / app
        folder.mkdir()
        (folder / doc).write_bytes(b"old")
        replay(folder, doc, b"new " + app.encode())
        names = sorted(p.name for p in folder.iterdir())
        expected = [doc, doc.rsplit(".", 1)[0] + ".bak"] if app == "autocad" else [doc]
        assert names == sorted(expected)
        assert (folder / doc).read_bytes() == b"new " + app.encode()
    io.save_autocad(tmp_path / "autocad", "Plan.dwg", b"again")  # the .bak is replaced
    assert (tmp_path / "autocad" / "Plan.bak").read_bytes() == b"new autocad"


def test_py_spy_collapsed_stacks_boil_down_to_self_and_inclusive_shares() -> None:
    from bench.profile import frame_label, parse_collapsed, render, summarize

    raw = [
        "process 1:\"python -m procorefs\";thread (0x1);_bootstrap (threading.py);"
        "read (procorefs/core/reader.py:80);_get (procorefs/api/downloads.py:270) 6\n",
        "thread (0x2);read (procorefs/core/reader.py:80);pwrite (procorefs/core/content.py) 2\n",
        "thread (0x2);select (selectors.py:468) 2\n",
        "garbage line\n",
    ]
    stacks = parse_collapsed(raw)
    assert stacks[0] == (["threading.py:_bootstrap", "procorefs/core/reader.py:read",
                          "procorefs/api/downloads.py:_get"], 6)
    profile = summarize(stacks)
    assert profile.samples == 10
    assert profile.self_time[0] == ("procorefs/api/downloads.py:_get", 6)
    assert dict(profile.inclusive)["procorefs/core/reader.py:read"] == 8
    assert "threading.py:_bootstrap" not in dict(profile.inclusive)  # not in focus
    text = render("mount", profile)
    assert "| 60% | `procorefs/api/downloads.py:_get` |" in text
    assert "| 80% | `procorefs/core/reader.py:read` |" in text
    assert frame_label("weird") == "weird"


def test_priming_memory_writes_the_bytes_asked_and_leaves_nothing_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        n = real_write(fd, data)
        written.append(n)
        return n

    monkeypatch.setattr(io.os, "write", counting_write)
    speed = io.prime_memory(tmp_path, size=3 * io.BUFFER + 5)
    assert sum(written) == 3 * io.BUFFER + 5
    assert speed > 0
    assert list(tmp_path.iterdir()) == []


def test_a_warm_read_is_the_median_of_several(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter([0.9, 0.1, 0.3, 0.2, 0.5])
    monkeypatch.setattr(io, "seq_read", lambda path: (100, next(times)))
    assert io.warm_read(tmp_path / "f", times=5) == (100, 0.3)
