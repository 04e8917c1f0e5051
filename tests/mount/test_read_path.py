"""Reads through a real mount on the path libfuse serves from the content cache itself.

Every read of a Procore version is answered with the cache file's descriptor (``read_buf``,
spliced by libfuse), on libfuse worker threads that each keep one Python thread state: the
bytes must be exactly Procore's for one reader and for several at once, on a fresh mount
(reads racing the downloads) and again from the cache, and the mount must stop cleanly
after (teardown checks its exit status and its log).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from procorefs.emulator import seed
from tests.mount.conftest import Mounted, MountFactory, wait_for
from tests.mount.writing import FOLDER, item

pytestmark = pytest.mark.mount

MiB = 1 << 20


def _sequential(path: Path, piece: int) -> bytes:
    out = bytearray()
    fd = os.open(path, os.O_RDONLY)
    try:
        while chunk := os.read(fd, piece):
            out += chunk
    finally:
        os.close(fd)
    return bytes(out)


def _expected(mounted: Mounted, path: str) -> tuple[int, str]:
    remote = mounted.remote()
    found = item(remote, path)
    return found.size, remote.sha256(found)


def test_a_big_file_reads_back_exactly_cold_and_from_the_cache(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    size, digest = _expected(mounted, seed.BIG_FILE_PATH)
    assert size > 64 * MiB
    path = mounted.path / seed.BIG_FILE_PATH
    cold = _sequential(path, MiB)
    assert len(cold) == size and hashlib.sha256(cold).hexdigest() == digest
    # A new handle drops the kernel's pages (keep_cache is only set for a version read
    # before), so these reads come from the cache file again, at odd offsets and sizes.
    rng = random.Random(7)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for _ in range(200):
            offset = rng.randrange(size)
            length = rng.choice((1, 4095, 128 << 10, MiB + 17, 3 * MiB))
            assert os.pread(fd, length, offset) == cold[offset:offset + length], offset
        assert os.pread(fd, 100, size) == b""
    finally:
        os.close(fd)
    # And once more whole, on a fresh mount over the same cache directory.
    mounted.stop()
    again = mount_factory(mounted.workdir)
    assert hashlib.sha256(_sequential(again.path / seed.BIG_FILE_PATH, 4 << 20)).hexdigest() \
        == digest


def test_concurrent_readers_of_a_cold_file_each_get_its_bytes(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    size, digest = _expected(mounted, seed.BIG_FILE_PATH)
    path = mounted.path / seed.BIG_FILE_PATH
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def forwards(piece: int) -> bytes:
        return _sequential(path, piece)

    def backwards(piece: int) -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            starts = list(range(0, size, piece))
            parts = {start: os.pread(fd, piece, start) for start in reversed(starts)}
        finally:
            os.close(fd)
        return b"".join(parts[start] for start in starts)

    def early_quitter(piece: int) -> bytes:
        # Reads a little and lets go while the others go on reading the same version.
        fd = os.open(path, os.O_RDONLY)
        try:
            head = os.read(fd, piece)
        finally:
            os.close(fd)
        whole = _sequential(path, piece)
        assert whole[:len(head)] == head
        return whole

    def run(name: str, read: object, piece: int) -> None:
        try:
            data = read(piece)  # type: ignore[operator]
            results[name] = hashlib.sha256(data).hexdigest()
        except BaseException as exc:
            errors.append(exc)

    readers = [("1 MiB forwards", forwards, MiB), ("128 KiB forwards", forwards, 128 << 10),
               ("3 MiB backwards", backwards, 3 * MiB), ("odd pieces", forwards, 65537),
               ("early quitter", early_quitter, 300 << 10)]
    threads = [threading.Thread(target=run, args=reader) for reader in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a reader hung"
    assert errors == []
    assert results == {name: digest for name, _, _ in readers}


def test_a_reader_opened_before_a_writer_reads_what_was_written(
        mount_factory: MountFactory) -> None:
    mounted = mount_factory()
    remote = mounted.remote()
    name = next(p for p, i in remote.tree().items()
                if p.startswith(FOLDER + "/") and i.kind == "file" and i.size > 100)
    path = mounted.path / name
    reader = os.open(path, os.O_RDONLY)
    try:
        before = os.pread(reader, 64, 0)
        writer = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(writer, b"written through the mount", 0)
            # Past the kernel's pages, while the writer is open (nothing is committed yet):
            # the mount answers from the staged bytes, not from the cached version.
            os.posix_fadvise(reader, 0, 0, os.POSIX_FADV_DONTNEED)
            after = os.pread(reader, 64, 0)
        finally:
            os.close(writer)
    finally:
        os.close(reader)
    assert after.startswith(b"written through the mount")
    assert after[25:] == before[25:]


def test_the_mount_reads_ahead_a_megabyte_where_it_may(mount_factory: MountFactory) -> None:
    # readahead.py: 128 KiB FUSE reads otherwise. Only root may raise it; anyone else keeps
    # the kernel's window, untouched.
    mounted = mount_factory()
    dev = os.stat(mounted.path).st_dev
    knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    want = "1024" if os.geteuid() == 0 else "128"
    wait_for(lambda: knob.read_text().strip() == want, 10, f"{knob} to read {want}")
    # Reads still come back exactly, now in requests of up to 1 MiB.
    size, digest = _expected(mounted, seed.BIG_FILE_PATH)
    data = _sequential(mounted.path / seed.BIG_FILE_PATH, 4 * MiB)
    assert len(data) == size and hashlib.sha256(data).hexdigest() == digest
