"""The client under fault plans: rate-limit storms, 503, resets, expired URLs, lost answers."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from procorefs.api import File, ProcoreClient, UploadState
from tests.api.conftest import EmulatorClock, MiB, World, count, log_when, write_file


def _put(client: ProcoreClient, world: World, path: Path, name: str,
         parent: int | None = None) -> File:
    uuid = client.upload(world.project, path, filename=name)
    return client.create_file(world.project, name, parent, uuid)


def test_429_storm_is_paced_not_failed(world: World) -> None:
    """A small spike budget: every request succeeds, at most one 429, waits in the log."""
    world.emulator.settings(rate_limit="3600/8")
    clock = EmulatorClock(world.emulator)
    with world.connect(clock=clock) as client:
        mark = world.emulator.log_mark()
        for _ in range(40):
            client.root_folder(world.project)
    log = log_when(world.emulator, mark, lambda lg: count(status=200)(lg) >= 40, "api")
    statuses = [r["status"] for r in log]
    assert statuses.count(200) == 40
    assert statuses.count(429) <= 1
    # Pacing: 40 requests at 8 per 10 s cannot take less than 40 s of (emulated) time,
    # and the client waited instead of hammering.
    assert log[-1]["time"] - log[0]["time"] >= 40
    assert sum(clock.slept) >= 35
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(log)]
    assert sum(1 for g in gaps if g >= 0.5) >= 5  # spread out, not bursts and stalls only


def test_injected_429_burst_waits_retry_after(world: World) -> None:
    world.emulator.set_faults([{"action": "status", "status": 429, "retry_after": 5,
                                "origin": "api", "method": "GET", "times": 3}])
    clock = EmulatorClock(world.emulator)
    with world.connect(clock=clock) as client:
        mark = world.emulator.log_mark()
        for _ in range(3):
            client.root_folder(world.project)
    log = log_when(world.emulator, mark, lambda lg: len(lg) >= 6, "api")
    assert [r["status"] for r in log] == [429, 429, 429, 200, 200, 200]
    assert sum(clock.slept) >= 14.5  # (a little real time passes too)
    assert log[3]["time"] - log[0]["time"] >= 15


def test_503_with_retry_after(world: World) -> None:
    world.emulator.set_faults([{"action": "status", "status": 503, "retry_after": 4,
                                "origin": "api", "path": "/folders", "times": 1}])
    clock = EmulatorClock(world.emulator)
    with world.connect(clock=clock) as client:
        mark = world.emulator.log_mark()
        client.root_folder(world.project)
    log = log_when(world.emulator, mark, lambda lg: len(lg) >= 2, "api")
    assert [r["status"] for r in log] == [503, 200]
    assert log[1]["time"] - log[0]["time"] >= 4


def test_connection_reset_in_the_middle_of_a_download(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "big.bin", 3 * MiB + 5)
    with world.connect() as client:
        made = _put(client, world, src, "big.bin")
        assert made.current_version is not None
        world.emulator.set_faults([{"action": "reset", "origin": "storage", "method": "GET",
                                    "after_bytes": MiB + 17, "times": 1}])
        mark = world.emulator.log_mark()
        out = tmp_path / "out.bin"
        assert client.download_to(made.current_version, out, parallel=1) == src.stat().st_size
    assert out.read_bytes() == src.read_bytes()
    log = log_when(world.emulator, mark, lambda lg: count("GET")(lg) >= 2, "storage")
    gets = [r for r in log if r["method"] == "GET"]
    assert len(gets) == 2  # the broken one, then the rest from the first missing byte


def test_connection_reset_in_the_middle_of_a_part_put(world: World, tmp_path: Path) -> None:
    src = write_file(tmp_path / "parts.bin", 13 * MiB)
    with world.connect(upload_part_size=6 * MiB, small_upload_max=0,
                       upload_parallel=2) as client:
        world.emulator.set_faults([{"action": "reset", "origin": "storage", "method": "PUT",
                                    "after_bytes": 2 * MiB, "times": 1}])
        mark = world.emulator.log_mark()
        made = _put(client, world, src, "parts.bin")
        log = log_when(world.emulator, mark, lambda lg: count("PUT")(lg) >= 4, "storage")
        puts = [r for r in log if r["method"] == "PUT"]
        assert len(puts) == 4  # three parts, one of them twice
        assert made.current_version is not None
        assert _sha(client, made) == hashlib.sha256(src.read_bytes()).hexdigest()


def test_expired_storage_url_is_resolved_again(world: World, tmp_path: Path) -> None:
    src = tmp_path / "e.txt"
    src.write_bytes(b"0123456789" * 100)
    with world.connect() as client:
        made = _put(client, world, src, "e.txt")
        version = made.current_version
        assert version is not None
        assert client.read_range(version, 0, 10) == b"0123456789"
        mark = world.emulator.log_mark()
        assert client.read_range(version, 10, 10) == b"0123456789"  # cached location
        assert [r["origin"] for r in log_when(world.emulator, mark, bool)] == ["storage"]
        world.emulator.set_faults([{"action": "expire_urls", "times": 1}])
        mark = world.emulator.log_mark()
        assert client.read_range(version, 995, 10) == b"56789"
    log = log_when(world.emulator, mark, lambda lg: len(lg) >= 3)
    assert [(r["origin"], r["status"]) for r in log] == [
        ("storage", 403), ("api", 302), ("storage", 206)]


@pytest.mark.parametrize("client_knows", [True, False],
                         ids=["refreshed-ahead", "refreshed-on-401"])
def test_token_expires_in_the_middle_of_a_multipart_upload(world: World, tmp_path: Path,
                                                           client_knows: bool) -> None:
    """Either the client sees the expiry coming (its clock moved) and refreshes ahead, or it
    does not (only the server's clock moved) and refreshes once on the 401."""
    world.emulator.settings(token_ttl=600)
    src = write_file(tmp_path / "t.bin", 19 * MiB)
    clock = EmulatorClock(world.emulator)
    with world.connect(clock=clock, upload_part_size=6 * MiB, small_upload_max=0,
                       upload_parallel=1) as client:
        expired = []

        def on_state(state: UploadState) -> None:
            if state.parts_done == 2 and not expired:
                if client_knows:
                    clock.advance(700)
                else:
                    world.emulator.advance_clock(700)
                expired.append(True)

        mark = world.emulator.log_mark()
        uuid = client.upload(world.project, src, filename="t.bin", on_state=on_state)
        made = client.create_file(world.project, "t.bin", None, uuid)
        log = log_when(world.emulator, mark, lambda lg: count("POST", "/files")(lg) >= 1)
        assert expired
        assert sum(1 for r in log if r["path"] == "/oauth/token") == 1  # one refresh
        rejected = [r for r in log if r["status"] == 401]
        assert len(rejected) == (0 if client_knows else 1)
        assert sum(1 for r in log if r["method"] == "PUT") == 4  # no part sent twice
        assert _sha(client, made) == hashlib.sha256(src.read_bytes()).hexdigest()


def test_lost_post_answer_makes_no_duplicate(world: World, tmp_path: Path) -> None:
    world.emulator.set_faults([{"action": "lost", "origin": "api", "method": "POST",
                                "path": r"^/rest/v1\.0/(folders|files)$", "times": 2}])
    src = tmp_path / "l.txt"
    src.write_bytes(b"lost and found")
    with world.connect() as client:
        folder = client.create_folder(world.project, "Lost", None)
        made = _put(client, world, src, "l.txt", folder.id)
        root = client.root_folder(world.project)
        listing = client.folder(world.project, folder.id)
    assert [f.name for f in root.folders if f.name == "Lost"] == ["Lost"]
    assert [f.id for f in listing.files] == [made.id]
    faults = world.emulator.faults()
    assert faults[0]["fired"] == 2


def test_lost_version_answer_makes_no_duplicate_version(world: World, tmp_path: Path) -> None:
    src = tmp_path / "v.txt"
    src.write_bytes(b"v1")
    with world.connect() as client:
        made = _put(client, world, src, "v.txt")
        src.write_bytes(b"version two")
        uuid = client.upload(world.project, src, filename="v.txt")
        world.emulator.set_faults([{"action": "lost", "origin": "api", "method": "POST",
                                    "path": "file_versions", "times": 1}])
        version = client.create_version(world.project, made.id, uuid)
        assert version.number == 2
        assert [v.number for v in client.file(world.project, made.id).versions] == [1, 2]


def _sha(client: ProcoreClient, made: File) -> str:
    assert made.current_version is not None
    digest = hashlib.sha256()

    class Sink:
        def write(self, data: bytes) -> int:
            digest.update(data)
            return len(data)

    client.download_to(made.current_version, Sink())  # type: ignore[arg-type]
    return digest.hexdigest()
