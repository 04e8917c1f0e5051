"""Segmented uploads (resume, 200 MiB) and ranged/parallel downloads against the emulator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from procorefs.api import UploadState
from tests.api.conftest import MiB, World, count, log_when, write_file


class Crash(Exception):
    pass


def _sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_resumed_upload_sends_only_the_missing_parts(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "resume.bin", 4 * 6 * MiB + 123)  # five parts of 6 MiB
    journal = tmp_path / "upload-state.json"
    progress: list[tuple[int, int]] = []
    with world.connect(upload_part_size=6 * MiB, small_upload_max=0,
                       upload_parallel=1) as client:
        def persist_then_crash(state: UploadState) -> None:
            journal.write_text(state.to_json())
            if state.parts_done == 2:
                raise Crash()

        mark = world.emulator.log_mark()
        with pytest.raises(Crash):
            client.upload(world.project, src, filename="resume.bin",
                          on_state=persist_then_crash)
    state = UploadState.from_json(journal.read_text())
    first = [r for r in log_when(world.emulator, mark,
                                 lambda lg: count("PUT")(lg) >= state.parts_done)
             if r["method"] == "PUT"]
    # A part already on its way when the "crash" came may have finished and been recorded.
    assert state.parts_done == len(first) in (2, 3)
    assert len(state.parts) == 5 and state.uuid is not None
    with world.connect(upload_part_size=6 * MiB, small_upload_max=0,
                       upload_parallel=2) as client:
        mark = world.emulator.log_mark()
        uuid = client.upload(world.project, src, filename="resume.bin", state=state,
                             on_state=lambda s: journal.write_text(s.to_json()),
                             progress=lambda done, total: progress.append((done, total)))
        log = log_when(world.emulator, mark, lambda lg: count("PATCH")(lg) >= 1)
        assert uuid == state.uuid  # the same upload, carried on
        puts = sum(1 for r in log if r["method"] == "PUT")
        assert puts == 5 - state.parts_done  # only the missing parts
        assert not any(r["method"] == "POST" for r in log)       # no new upload
        made = client.create_file(world.project, "resume.bin", None, uuid)
        assert made.current_version is not None
        out = tmp_path / "back.bin"
        client.download_to(made.current_version, out)
    assert _sha_file(out) == _sha_file(src)
    assert UploadState.from_json(journal.read_text()).complete
    assert progress[0][0] == state.parts_done * 6 * MiB  # resumed at the parts already done
    assert progress[-1] == (src.stat().st_size, src.stat().st_size)


def test_a_stale_state_starts_over(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "s.bin", 13 * MiB)
    states: list[UploadState] = []
    with world.connect(upload_part_size=6 * MiB, small_upload_max=0) as client:
        client.upload(world.project, src, filename="s.bin", on_state=states.append)
        write_file(src, 13 * MiB, seed=2)  # the file changed since
        mark = world.emulator.log_mark()
        uuid = client.upload(world.project, src, filename="s.bin", state=states[1])
        assert uuid != states[1].uuid
        log = log_when(world.emulator, mark, lambda lg: count("PATCH")(lg) >= 1)
        assert count("PUT")(log) == 3
        made = client.create_file(world.project, "s.bin", None, uuid)
        assert made.current_version is not None
        assert made.current_version.size == 13 * MiB


def test_ranged_read_of_a_slice_of_a_large_file(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "large.bin", 40 * MiB + 11, seed=5)
    data = src.read_bytes()
    with world.connect(upload_part_size=16 * MiB) as client:
        uuid = client.upload(world.project, src, filename="large.bin")
        made = client.create_file(world.project, "large.bin", None, uuid)
        version = made.current_version
        assert version is not None and version.size == len(data)
        mark = world.emulator.log_mark()
        offset = 23 * MiB + 7
        assert client.read_range(version, offset, 4096) == data[offset:offset + 4096]
        assert client.read_range(version, len(data) - 5, 100) == data[-5:]  # short at EOF
        assert client.read_range(version, len(data) + 10, 100) == b""
        storage = log_when(world.emulator, mark, lambda lg: len(lg) >= 3, "storage")
        assert len(storage) == 3
        assert all(r["status"] in (206, 416) for r in storage)
        # Parallel ranged download of a slice into a file.
        out = tmp_path / "slice.bin"
        got = client.download_to(version, out, offset=3 * MiB, length=35 * MiB, parallel=4)
        assert got == 35 * MiB
        assert out.read_bytes() == data[3 * MiB:38 * MiB]
        assert client.url_resolutions == 1  # one API call for every byte fetched above


@pytest.mark.slow
def test_200_mib_segmented_upload_is_stored_exactly(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "huge.bin", 200 * MiB, seed=9)
    expected = _sha_file(src)
    done: list[int] = []
    with world.connect() as client:
        mark = world.emulator.log_mark()
        uuid = client.upload(world.project, src, filename="huge.bin",
                             progress=lambda d, t: done.append(d))
        made = client.create_file(world.project, "huge.bin", None, uuid)
        log = log_when(world.emulator, mark, lambda lg: count("PUT")(lg) >= 13)
        puts = [r for r in log if r["method"] == "PUT"]
        assert len(puts) == 13  # 200 MiB in 16 MiB parts
        assert done[-1] == 200 * MiB
        assert made.current_version is not None
        digest = hashlib.sha256()

        class Sink:
            def write(self, data: bytes) -> int:
                digest.update(data)
                return len(data)

        assert client.download_to(made.current_version, Sink()) == 200 * MiB  # type: ignore[arg-type]
    assert digest.hexdigest() == expected
    # The emulator's blob store is content-addressed by SHA-256.
    assert any(p.name.startswith(expected) or expected in p.name
               for p in world.emulator.data_dir.rglob("*") if p.is_file())
