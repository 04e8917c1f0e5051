"""The file operations the workloads time: plain system calls on a mounted directory.

Each is what a user's program does (``cat``, ``head -c1``, a database's random reads,
``find -ls``, ``cp``) with as little Python in the way as possible: one reusable 1 MiB buffer,
``os.pread`` and ``os.scandir``. Save replays follow ``shared/save-patterns.md`` step by step.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BUFFER = 1 << 20
PAGE = 4096


def seq_read(path: Path) -> tuple[int, float]:
    """Read a file start to end; (bytes, seconds)."""
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    total = 0
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        while n := os.readv(fd, [view]):
            total += n
    finally:
        os.close(fd)
    return total, time.perf_counter() - start


def warm_read(path: Path, times: int = 5) -> tuple[int, float]:
    """``seq_read`` of a cached file ``times`` times; (bytes, the median seconds).

    A warm read of 256 MiB takes 15-40 ms here, so one scheduler hiccup on the shared cores
    moves a single sample by a quarter; the median of a few is the read, not the hiccup.
    """
    samples = [seq_read(path) for _ in range(times)]
    samples.sort(key=lambda sample: sample[1])
    return samples[len(samples) // 2]


PRIME = 640 << 20


def prime_memory(directory: Path, size: int = PRIME) -> float:
    """Write ``size`` bytes into a new file in ``directory`` and delete it; the MB/s it took.

    Why: on the VMs these benches run on, memory the guest frees goes back to the host
    (virtio-balloon free page reporting), and the first write to each such page faults into
    the host. Measured here: 256 MiB written into a new file ran at 370 MB/s, the same bytes
    rewritten into its pages at 4,200 MB/s. A cold read through the mount puts every byte into
    new memory twice (its cache file and the kernel's page cache of the mount), the direct
    download once, so how much memory had just been reclaimed swung the cold read ratio from
    0.55 to 1.07 between neighbouring runs. Writing and freeing some memory right before a
    measurement leaves pages the host backs for the next one; on a machine whose memory is not
    ballooned it costs a fraction of a second and changes nothing. The figure it returns goes
    into the notes: low means the memory was cold. It ends with a ``sync``, so that no
    writeback of earlier work runs during the measurement either.
    """
    chunk = bytes(BUFFER) if size >= BUFFER else bytes(size)
    target = directory / ".bench-prime"
    start = time.perf_counter()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        left = size
        while left > 0:
            left -= os.write(fd, chunk[:left])
    finally:
        os.close(fd)
        os.unlink(target)
    speed = size / (time.perf_counter() - start) / 1e6
    # Dirty pages of earlier work (the set-up writes 1.6 GB, every workload some) would be
    # written back by the kernel's flusher threads during the measurement, on its two cores.
    os.sync()
    return speed


def settle(path: Path) -> None:
    """Read a file once more, unmeasured, before a warm measurement.

    The first read of pages after they enter the page cache moves them to the kernel's active
    list, and that read runs at about half speed (a local file here: 8,490 MB/s on the read
    after it was written, 19,400 on the next). The local reference's pages were written and
    then read once before they are measured, so the mount's (and rclone's) get one read after
    their cold read too: both sides are measured on their third touch.
    """
    seq_read(path)


def first_byte(path: Path) -> float:
    """Seconds from open() to the first byte of the file in hand."""
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        if not os.read(fd, 1):
            raise OSError(f"{path} is empty")
        return time.perf_counter() - start
    finally:
        os.close(fd)


def random_offsets(size: int, count: int, seed: int) -> list[int]:
    """``count`` page-aligned offsets of whole 4 KiB pages inside ``size`` bytes, repeatable."""
    pages = size // PAGE
    if pages <= 0:
        raise ValueError("the file is smaller than one page")
    rng = random.Random(seed)
    return [rng.randrange(pages) * PAGE for _ in range(count)]


def random_reads(path: Path, offsets: Sequence[int]) -> float:
    """Seconds to read 4 KiB at each offset, one after the other (queue depth 1)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        start = time.perf_counter()
        for offset in offsets:
            if len(os.pread(fd, PAGE, offset)) != PAGE:
                raise OSError(f"short read at {offset} of {path}")
        return time.perf_counter() - start
    finally:
        os.close(fd)


def walk_stat(root: Path, descend: Callable[[str], bool] = lambda name: True
              ) -> tuple[int, int, float]:
    """``find ROOT -ls``: list every folder and stat every entry; (folders, files, seconds).

    Below ``root``, only folders whose name ``descend`` accepts are entered."""
    folders = files = 0
    start = time.perf_counter()
    stack = [root]
    while stack:
        folder = stack.pop()
        folders += 1
        with os.scandir(folder) as entries:
            for entry in entries:
                os.lstat(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    if folder != root or descend(entry.name):
                        stack.append(Path(entry.path))
                else:
                    files += 1
    return folders, files, time.perf_counter() - start


def copy_file(src: Path, dst: Path) -> None:
    """``cp SRC DST``: create (or truncate) and write in 1 MiB pieces, then close."""
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        buf = bytearray(BUFFER)
        view = memoryview(buf)
        while n := fin.readinto(buf):
            written = 0
            while written < n:
                written += fout.write(view[written:n]) or 0


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb", buffering=0) as out:
        view = memoryview(data)
        written = 0
        while written < len(data):
            written += out.write(view[written:]) or 0


# --- save replays (shared/save-patterns.md) -----------------------------------------------------

def save_word(folder: Path, name: str, data: bytes) -> None:
    """Word: owner file ``~$``, ``~WRD0000.tmp`` written, X deleted, tmp renamed onto X."""
    owner = folder / ("~$" + name[2:])
    write_file(owner, b"\x0bDana Demo" + b"\x00" * 152)
    tmp = folder / "~WRD0000.tmp"
    write_file(tmp, data)
    os.unlink(folder / name)
    os.rename(tmp, folder / name)
    os.unlink(owner)


def save_excel(folder: Path, name: str, data: bytes) -> None:
    """Excel: an 8-hex-digit temp written, X deleted, temp renamed onto X."""
    tmp = folder / "4CCA4100"
    write_file(tmp, data)
    os.unlink(folder / name)
    os.rename(tmp, folder / name)


def save_autocad(folder: Path, name: str, data: bytes) -> None:
    """AutoCAD full save: .dwl/.dwl2 beside it, temp written, X.dwg -> X.bak, temp -> X.dwg."""
    stem = name.rsplit(".", 1)[0]
    dwl, dwl2 = folder / f"{stem}.dwl", folder / f"{stem}.dwl2"
    write_file(dwl, b"Dana Demo\r\nbench\r\n")
    write_file(dwl2, b"<?xml version='1.0'?><whohas/>")
    tmp = folder / "atmp1234.tmp"
    write_file(tmp, data)
    bak = folder / f"{stem}.bak"
    if bak.exists():
        os.unlink(bak)
    os.rename(folder / name, bak)
    os.rename(tmp, folder / name)
    os.unlink(dwl)
    os.unlink(dwl2)


SAVES: dict[str, tuple[str, Callable[[Path, str, bytes], None], int]] = {
    # app: (document name, replay, document size)
    "word": ("Report.docx", save_word, 180 * 1024),
    "excel": ("Budget.xlsx", save_excel, 420 * 1024),
    "autocad": ("Plan.dwg", save_autocad, 2 * 1024 * 1024),
}
