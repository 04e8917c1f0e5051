"""One bench run: set up the emulator, the direct client and the rclone peer, run every
workload ``--runs`` times side by side, and write ``bench/results/latest.md`` and ``.json``.

Order inside a run: each workload measures procorefs, then its reference (the direct client,
or a local file), then rclone, moments apart, so each run gives one paired ratio per figure
(``bench.stats``). A workload that needs something missing - the write path, rclone - records
why in its cells instead of a number. Everything the run starts is stopped at the end, even
after a failure, and its working directory (a temporary one unless ``--workdir``) removed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import io, profile
from bench.calls import CallCount, count_calls, last_activity, last_commit_time, timeline
from bench.peer import DelayRelay, RcloneMount, RcloneServe, ensure_rclone, wait_local
from bench.procfs import PeakSampler, cpu_seconds
from bench.procs import CODE, BenchError, Emulator, ProcorefsMount, Remote, use_code
from bench.stats import Summary
from bench.table import Cell, Row, Target, render_markdown, rows_json

MiB = 1 << 20
KiB = 1 << 10
RESULTS = Path(__file__).resolve().parent / "results"
WORKLOADS = ("read", "ttfb", "random", "write", "find", "listing")
LISTING = "GET /rest/v1.0/folders/{id}"  # bench.calls.endpoint's name for a folder listing


@dataclass(frozen=True)
class Sizes:
    big: int              # the file read sequentially and at random
    huge: int             # the file whose first byte is timed
    write: int            # the file written
    small_count: int      # small files copied in
    small_size: int
    folders: int          # the tree walked by find
    files: int
    listing: int          # files in the listed folder
    random_cold: int      # 4 KiB reads on a fresh mount
    random_warm: int      # 4 KiB reads of the same pages again
    tree_file_size: int = 4096


FULL = Sizes(big=256 * MiB, huge=1024 * MiB, write=256 * MiB, small_count=200,
             small_size=64 * KiB, folders=200, files=2000, listing=1000, random_cold=300,
             random_warm=3000)
QUICK = Sizes(big=32 * MiB, huge=128 * MiB, write=32 * MiB, small_count=20, small_size=64 * KiB,
              folders=20, files=200, listing=100, random_cold=50, random_warm=500)


def human(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB" if size < 1024 * MiB else f"{size // (1024 * MiB)} GiB"
    return f"{size // KiB} KiB"


@dataclass
class Watch:
    """What a workload cost the mount (and the emulator): peak RSS and CPU seconds."""

    wall: float = 0.0
    peak_mib: float | None = None
    mount_cpu: float | None = None
    emulator_cpu: float | None = None


@dataclass
class Results:
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)
    loads: dict[str, list[Watch]] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, column: str, value: float) -> None:
        self.values.setdefault(key, {}).setdefault(column, []).append(value)

    def miss(self, key: str, column: str, reason: str) -> None:
        self.reasons.setdefault(key, {}).setdefault(column, reason)

    def failed(self, key: str, column: str) -> bool:
        return column in self.reasons.get(key, {})

    def cell(self, key: str, column: str) -> Cell | None:
        values = self.values.get(key, {}).get(column)
        if values:
            return Cell.measured(values)
        reason = self.reasons.get(key, {}).get(column)
        return Cell.missing(reason) if reason is not None else None

    def detail(self, key: str, text: str, *, run: int) -> None:
        """A note on what a workload did; the last run's notes replace earlier runs'."""
        bucket = self.details.setdefault(key, [])
        tagged = f"run {run}: {text}"
        if bucket and not bucket[-1].startswith(f"run {run}: "):
            bucket.clear()
        if tagged not in bucket:
            bucket.append(tagged)


class Bench:
    def __init__(self, args: argparse.Namespace, sizes: Sizes, workdir: Path) -> None:
        self.args = args
        self.sizes = sizes
        self.work = workdir
        self.results = Results()
        self.emulator: Emulator | None = None
        self.remote: Remote | None = None
        self.rclone: str | None = None
        self.rclone_reason = "rclone was not asked for (--no-rclone)"
        self.serve: RcloneServe | None = None
        self.relay: DelayRelay | None = None
        self.peer_url = ""
        self.peer_root = workdir / "peer-data"
        self.src = workdir / "src"
        self.mounts = 0
        self.folder_ids: dict[str, int] = {}
        self.primed: dict[tuple[str, int], list[str]] = {}
        self.write_reason: str | None = None

    # --- set-up ---------------------------------------------------------------------------

    def setup(self) -> None:
        s = self.sizes
        print(f"bench: starting the emulator (large seed: {s.folders} folders, {s.files} "
              f"files, a folder of {s.listing}, a {human(s.big)} file)", flush=True)
        self.emulator = emu = Emulator(self.work / "emulator", [
            "--seed", "large", "--large-folders", str(s.folders),
            "--large-files", str(s.files), "--large-file-size", str(s.tree_file_size),
            "--large-big-files", "1", "--large-big-file-size", str(s.big),
            "--large-folder-files", str(s.listing)])
        emu.start()
        emu.unthrottle()
        info = emu.info
        self.user_id = int(info["demo_user_id"])
        users = {int(u["id"]): str(u["login"]) for u in info["users"]}
        self.login = users[self.user_id]
        company = info["companies"][0]
        project = company["projects"][0]
        self.company_id = int(company["id"])
        self.project_id = int(project["id"])
        self.root_id = int(project["root_folder_id"])
        self.token = emu.token(self.login)
        self.remote = Remote(emu.api_url, emu.token(users[int(info["other_user_id"])]),
                             self.company_id, self.project_id)

        root = self.remote.folder(None)
        big_folder = next(f for f in root["folders"] if f["name"] == "Big Files")
        self.big_folder_id = int(big_folder["id"])
        self.listing_name = next(f["name"] for f in root["folders"]
                                 if str(f["name"]).startswith("Listing "))
        emu.remote_file(self.project_id, self.big_folder_id, "Huge File.bin", self.login,
                        size=s.huge)
        big = self._client().folder(self._scope(), self.big_folder_id)
        by_name = {f.name: f for f in big.files}
        self.big_name = next(n for n in by_name if n.startswith("Big File"))
        self.big_version = by_name[self.big_name].current_version
        self.huge_version = by_name["Huge File.bin"].current_version
        assert self.big_version is not None and self.huge_version is not None

        self._prepare_sources()
        self._prepare_folders()
        self._prepare_peer()
        if self.args.latency_ms > 0:
            emu.set_latency(self.args.latency_ms)

    def _settings(self) -> Any:
        from procorefs.config import Settings
        assert self.emulator is not None
        base = self.work / "client"
        return Settings(environment="custom", api_url=self.emulator.api_url,
                        login_url=self.emulator.api_url, access_token=self.token,
                        company_id=self.company_id, config_dir=base / "config",
                        cache_dir=base / "cache", state_dir=base / "state")

    def _client(self) -> Any:
        """A new direct client (nothing cached: each run pays what a first use pays)."""
        from procorefs.api import ProcoreClient
        return ProcoreClient.from_settings(self._settings())

    def _scope(self) -> Any:
        from procorefs.api import Scope
        return Scope(self.company_id, self.project_id)

    def _prepare_sources(self) -> None:
        s = self.sizes
        (self.src / "small").mkdir(parents=True, exist_ok=True)
        rng = random.Random("procorefs-bench")
        with open(self.src / "write.bin", "wb") as out:
            left = s.write
            while left:
                n = min(left, 4 * MiB)
                out.write(rng.randbytes(n))
                left -= n
        for n in range(s.small_count):
            (self.src / "small" / f"small-{n:04d}.bin").write_bytes(rng.randbytes(s.small_size))

    def _doc_bytes(self, app: str, run: int, generation: int) -> bytes:
        """A document's bytes; each save makes it 1 KiB longer, so sizes tell saves apart."""
        _, _, size = io.SAVES[app]
        return random.Random(f"{app}:{run}:{generation}").randbytes(size + generation * KiB)

    def _prepare_folders(self) -> None:
        """Per run, folders to write into (on both sides) and the documents saves replay on."""
        assert self.emulator is not None
        for run in range(1, self.args.runs + 1):
            for kind in ("Write", "Direct", "Small", "Saves"):
                name = f"Bench {kind} {run}"
                self.folder_ids[name] = self.emulator.remote_folder(
                    self.project_id, self.root_id, name, self.login)
                (self.peer_root / name).mkdir(parents=True, exist_ok=True)
            saves = f"Bench Saves {run}"
            for app, (doc, _, _) in io.SAVES.items():
                data = self._doc_bytes(app, run, 0)
                self.emulator.remote_file(self.project_id, self.folder_ids[saves], doc,
                                          self.login,
                                          content_b64=base64.b64encode(data).decode())
                (self.peer_root / saves / doc).write_bytes(data)

    def _prepare_peer(self) -> None:
        """The peer's directory: the seed's tree written from the same generator, the big
        files downloaded through the client (the same bytes the emulator serves)."""
        from procorefs.emulator import seed
        from procorefs.emulator.seedtypes import SeedFile, SeedFolder
        s = self.sizes
        tree = seed.large_seed(folders=s.folders, files=s.files, file_size=s.tree_file_size,
                               folder_files=s.listing)
        documents = tree.companies[0].projects[0].documents
        for rel, entry in seed.walk(documents):
            target = self.peer_root / rel
            if isinstance(entry, SeedFolder):
                target.mkdir(parents=True, exist_ok=True)
            elif isinstance(entry, SeedFile):
                with open(target, "wb") as out:
                    for chunk in entry.versions[-1].content():
                        out.write(chunk)
        big_dir = self.peer_root / "Big Files"
        big_dir.mkdir(exist_ok=True)
        with contextlib.closing(self._client()) as client:
            client.download_to(self.big_version, big_dir / self.big_name)
            client.download_to(self.huge_version, big_dir / "Huge File.bin")
        self.local_big = big_dir / self.big_name
        if self.args.no_rclone:
            return
        self.rclone = ensure_rclone()
        if self.rclone is None:
            self.rclone_reason = "rclone is not installed (sudo apt-get install rclone)"
            return
        self.serve = RcloneServe(self.rclone, self.peer_root, self.work).start()
        self.peer_url = self.serve.url
        if self.args.latency_ms > 0:
            self.relay = DelayRelay(self.serve.port, self.args.latency_ms / 1000.0).start()
            self.peer_url = f"http://127.0.0.1:{self.relay.port}/"

    def close(self) -> None:
        for stop in (self.relay.stop if self.relay else None,
                     self.serve.stop if self.serve else None,
                     self.remote.close if self.remote else None,
                     self.emulator.stop if self.emulator else None):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()

    # --- helpers ----------------------------------------------------------------------------

    def mount(self, extra: Sequence[str] = (), prefix: Sequence[str] = ()) -> ProcorefsMount:
        """A fresh procorefs mount: empty cache, no change polling (its requests would land
        in the counts of whatever workload runs at that moment)."""
        assert self.emulator is not None
        self.mounts += 1
        return ProcorefsMount(self.emulator, self.work / f"mount-{self.mounts}", self.token,
                              project_id=self.project_id, company_id=self.company_id,
                              extra=["--poll-budget", "0", *extra], prefix=prefix)

    @contextlib.contextmanager
    def fresh_mount(self, extra: Sequence[str] = ()) -> Iterator[ProcorefsMount]:
        """A fresh mount whose change poller never runs (``--poll-budget 0``), so a
        workload's request count holds only its own calls."""
        with self.mount(extra) as m:
            yield m

    def peer(self) -> RcloneMount:
        assert self.rclone is not None
        self.mounts += 1
        return RcloneMount(self.rclone, self.peer_url, self.work / f"rclone-{self.mounts}")

    @contextlib.contextmanager
    def watch(self, key: str, pid: int | None) -> Iterator[Watch]:
        emu_pid = self.emulator.pid if self.emulator else None
        w = Watch()
        cpu0, ecpu0 = cpu_seconds(pid), cpu_seconds(emu_pid)
        start = time.perf_counter()
        with PeakSampler(pid) as peak:
            yield w
        w.wall = time.perf_counter() - start
        cpu1, ecpu1 = cpu_seconds(pid), cpu_seconds(emu_pid)
        w.peak_mib = peak.peak_mib
        if cpu0 is not None and cpu1 is not None:
            w.mount_cpu = cpu1 - cpu0
        if ecpu0 is not None and ecpu1 is not None:
            w.emulator_cpu = ecpu1 - ecpu0
        self.results.loads.setdefault(key, []).append(w)
        if w.peak_mib is not None:
            self.results.add(key, "rss", w.peak_mib)

    def mark(self) -> int:
        assert self.emulator is not None
        return self.emulator.mark()

    def calls_since(self, mark: int, quiet: float = 1.0, timeout: float = 60.0) -> CallCount:
        """The mount's calls since ``mark``, once it has been quiet for ``quiet`` seconds."""
        assert self.emulator is not None
        deadline = time.monotonic() + timeout
        while True:
            entries = self.emulator.requests(mark)
            latest = last_activity(entries, user_id=self.user_id)
            if latest is None or time.time() - latest >= quiet or time.monotonic() > deadline:
                return count_calls(entries, user_id=self.user_id)
            time.sleep(0.1)

    def committed(self, folder: str, want: dict[str, tuple[int, int]], mark: int,
                  timeout: float) -> float:
        """Wall-clock moment all of ``want`` was in Procore: the end of the last commit call
        the emulator logged before a second user saw it all (or that sighting)."""
        assert self.remote is not None and self.emulator is not None
        seen = self.remote.wait_files(self.folder_ids[folder], want, timeout)
        entries = self.emulator.requests(mark)
        commit = last_commit_time(entries, user_id=self.user_id, until=seen)
        return commit if commit is not None else seen

    def _prime(self, key: str, run: int) -> None:
        """``bench.io.prime_memory`` before one side's measurement, its speed in the notes."""
        speeds = self.primed.setdefault((key, run), [])
        speeds.append(f"{io.prime_memory(self.work):,.0f}")
        note = "memory primed before each side (bench.io.prime_memory) at "
        bucket = self.results.details.setdefault(key, [])
        bucket[:] = [t for t in bucket if not t.startswith(f"run {run}: {note}")]
        self.results.detail(key, f"{note}{' / '.join(speeds)} MB/s", run=run)

    def _peer_or_miss(self, *keys: str) -> bool:
        if self.rclone is None:
            for key in keys:
                self.results.miss(key, "rclone", self.rclone_reason)
            return False
        return True

    # --- workloads --------------------------------------------------------------------------

    def run_read(self, run: int) -> None:
        r = self.results
        with self.fresh_mount() as m:
            path = m.path / "Big Files" / self.big_name
            self._prime("cold_read", run)
            with self.watch("cold_read", m.pid):
                n, secs = io.seq_read(path)
            r.add("cold_read", "procorefs", n / secs / 1e6)
            io.settle(path)
            with self.watch("warm_read", m.pid):
                n, secs = io.warm_read(path)
            r.add("warm_read", "procorefs", n / secs / 1e6)
        dest = self.work / "direct.bin"
        dest.unlink(missing_ok=True)
        with contextlib.closing(self._client()) as client:
            self._prime("cold_read", run)
            start = time.perf_counter()
            n = client.download_to(self.big_version, dest)
            r.add("cold_read", "reference", n / (time.perf_counter() - start) / 1e6)
        dest.unlink()
        io.settle(self.local_big)  # its pages were written by the download in setup
        n, secs = io.warm_read(self.local_big)
        r.add("warm_read", "reference", n / secs / 1e6)
        if self._peer_or_miss("cold_read", "warm_read"):
            with self.peer() as p:
                path = p.path / "Big Files" / self.big_name
                self._prime("cold_read", run)
                n, secs = io.seq_read(path)
                r.add("cold_read", "rclone", n / secs / 1e6)
                io.settle(path)
                n, secs = io.warm_read(path)
                r.add("warm_read", "rclone", n / secs / 1e6)

    def run_ttfb(self, run: int) -> None:
        r = self.results
        with self.fresh_mount() as m:
            mark = self.mark()
            with self.watch("ttfb", m.pid):
                r.add("ttfb", "procorefs", io.first_byte(
                    m.path / "Big Files" / "Huge File.bin") * 1000)
            r.detail("ttfb", f"procorefs: {self.calls_since(mark, quiet=0.3).describe()}",
                     run=run)
        with contextlib.closing(self._client()) as client:
            start = time.perf_counter()
            client.read_range(self.huge_version, 0, 1)
            r.add("ttfb", "reference", (time.perf_counter() - start) * 1000)
        if self._peer_or_miss("ttfb"):
            with self.peer() as p:
                r.add("ttfb", "rclone", io.first_byte(p.path / "Big Files" / "Huge File.bin")
                      * 1000)

    def run_random(self, run: int) -> None:
        r, s = self.results, self.sizes
        offsets = io.random_offsets(s.big, s.random_cold, seed=run)
        warm = [offsets[i % len(offsets)] for i in range(s.random_warm)]
        with self.fresh_mount() as m:
            path = m.path / "Big Files" / self.big_name
            with self.watch("random_cold", m.pid):
                r.add("random_cold", "procorefs", len(offsets) / io.random_reads(path, offsets))
            with self.watch("random_warm", m.pid):
                r.add("random_warm", "procorefs", len(warm) / io.random_reads(path, warm))
        r.add("random_warm", "reference", len(warm) / io.random_reads(self.local_big, warm))
        if self._peer_or_miss("random_cold", "random_warm"):
            with self.peer() as p:
                path = p.path / "Big Files" / self.big_name
                r.add("random_cold", "rclone", len(offsets) / io.random_reads(path, offsets))
                r.add("random_warm", "rclone", len(warm) / io.random_reads(path, warm))

    def _listing_pass(self, key: str, m: ProcorefsMount, root: Path,
                      descend: Callable[[str], bool], run: int) -> tuple[int, CallCount]:
        mark = self.mark()
        with self.watch(key, m.pid):
            folders, files, secs = io.walk_stat(root, descend)
        self.results.add(f"{key}_s", "procorefs", secs)
        calls = self.calls_since(mark, quiet=0.3)
        self.results.detail(key, f"{folders} folders, {files} files; procorefs cost "
                                 f"{calls.describe()}", run=run)
        return folders, calls

    def run_find(self, run: int) -> None:
        r = self.results
        in_tree = lambda name: name.startswith("Folder ")  # noqa: E731
        with self.fresh_mount() as m:
            folders, calls = self._listing_pass("find_cold", m, m.path, in_tree, run)
            # The mount listed the root while starting (it checks the root before mounting).
            r.add("find_cold_calls", "procorefs", calls.api / max(1, folders - 1))
            _, calls = self._listing_pass("find_warm", m, m.path, in_tree, run)
            r.add("find_warm_calls", "procorefs", calls.api)
        if self._peer_or_miss("find_cold_s", "find_warm_s"):
            with self.peer() as p:
                r.add("find_cold_s", "rclone", io.walk_stat(p.path, in_tree)[2])
                r.add("find_warm_s", "rclone", io.walk_stat(p.path, in_tree)[2])

    def run_listing(self, run: int) -> None:
        r = self.results
        with self.fresh_mount() as m:
            folder = m.path / self.listing_name
            _, calls = self._listing_pass("listing_cold", m, folder, lambda name: False, run)
            r.add("listing_cold_calls", "procorefs", calls.api)
            _, calls = self._listing_pass("listing_warm", m, folder, lambda name: False, run)
            r.add("listing_warm_calls", "procorefs", calls.api)
        if self._peer_or_miss("listing_cold_s", "listing_warm_s"):
            with self.peer() as p:
                folder = p.path / self.listing_name
                r.add("listing_cold_s", "rclone", io.walk_stat(folder)[2])
                r.add("listing_warm_s", "rclone", io.walk_stat(folder)[2])

    def run_write(self, run: int) -> None:
        r = self.results
        keys = ["write", "small_s", "small_calls"] + [f"save_{a}_{m}" for a in io.SAVES
                                                      for m in ("s", "calls")]
        if self.write_reason is not None:
            for key in keys:
                r.miss(key, "procorefs", self.write_reason)
        else:
            with self.fresh_mount() as m:
                try:
                    self._write_procorefs(run, m)
                except OSError as exc:
                    self.write_reason = (f"writing through the mount fails ({exc.strerror or exc}"
                                         f" on {Path(exc.filename or '?').name})")
                except BenchError as exc:
                    self.write_reason = str(exc).splitlines()[0]
                if self.write_reason is not None:
                    for key in keys:
                        r.miss(key, "procorefs", self.write_reason)
        self._write_direct(run)
        if self._peer_or_miss("write", "small_s", *[f"save_{a}_s" for a in io.SAVES]):
            self._write_peer(run)

    def _write_procorefs(self, run: int, m: ProcorefsMount) -> None:
        r, s = self.results, self.sizes
        folder, name = f"Bench Write {run}", f"write-{run}.bin"
        self._prime("write", run)
        mark = self.mark()
        with self.watch("write", m.pid):
            start = time.time()
            io.copy_file(self.src / "write.bin", m.path / folder / name)
            closed = time.time()
            done = self.committed(folder, {name: (1, s.write)}, mark, timeout=300)
        r.add("write", "procorefs", done - start)
        calls = self.calls_since(mark)
        assert self.emulator is not None
        steps = timeline(self.emulator.requests(mark), user_id=self.user_id, start=start)
        r.detail("write", f"procorefs: close() returned after {closed - start:.2f} s, "
                          f"committed after {done - start:.2f} s; {calls.describe()}; "
                          f"requests ended at: {steps}", run=run)

        folder = f"Bench Small {run}"
        names = sorted(p.name for p in (self.src / "small").iterdir())
        mark = self.mark()
        with self.watch("small_s", m.pid):
            start = time.time()
            for n in names:
                io.copy_file(self.src / "small" / n, m.path / folder / n)
            done = self.committed(folder, {n: (1, s.small_size) for n in names}, mark,
                                  timeout=300)
        r.add("small_s", "procorefs", done - start)
        calls = self.calls_since(mark)
        # The first create in a folder the mount never listed lists it: once per folder,
        # counted apart (the detail says how many), not spread over the files.
        listings = calls.kinds.get(LISTING, 0)
        r.add("small_calls", "procorefs", (calls.api - listings) / len(names))
        assert self.emulator is not None
        steps = timeline(self.emulator.requests(mark), user_id=self.user_id, start=start)
        r.detail("small_calls", f"procorefs, {len(names)} files: {calls.describe()} "
                                f"({listings} of them listing the folder, not per file); "
                                f"requests ended at: {steps}", run=run)

        folder = f"Bench Saves {run}"
        current = self.remote.files(self.folder_ids[folder]) if self.remote else {}
        for app, (doc, replay, _) in io.SAVES.items():
            data = self._doc_bytes(app, run, 1)
            opened_by_app(m.path / folder, doc)
            mark = self.mark()
            with self.watch(f"save_{app}_s", m.pid):
                start = time.time()
                replay(m.path / folder, doc, data)
                done = self.committed(folder, {doc: (current[doc]["version"] + 1, len(data))},
                                      mark, timeout=120)
            r.add(f"save_{app}_s", "procorefs", done - start)
            calls = self.calls_since(mark, quiet=2.0)
            r.add(f"save_{app}_calls", "procorefs", calls.api)
            assert self.emulator is not None
            steps = timeline(self.emulator.requests(mark), user_id=self.user_id, start=start)
            r.detail(f"save_{app}_calls", f"procorefs: {calls.describe()}; requests ended "
                                          f"at: {steps}", run=run)
            after = self.remote.files(self.folder_ids[folder]) if self.remote else {}
            if after.get(doc, {}).get("id") != current[doc]["id"]:
                r.detail(f"save_{app}_calls", "the save did NOT keep the Procore file id",
                         run=run)
            strays = sorted(set(after) - set(current))
            if strays:
                r.detail(f"save_{app}_calls", f"stray files reached Procore: {strays}", run=run)

    def _write_direct(self, run: int) -> None:
        r = self.results
        scope = self._scope()
        with contextlib.closing(self._client()) as client:
            name = f"direct-{run}.bin"
            self._prime("write", run)
            start = time.perf_counter()
            uuid = client.upload(scope, self.src / "write.bin", filename=name)
            client.create_file(scope, name, self.folder_ids[f"Bench Direct {run}"], uuid)
            r.add("write", "reference", time.perf_counter() - start)
            mark = self.mark()
            start = time.perf_counter()
            names = sorted(p.name for p in (self.src / "small").iterdir())
            for n in names:
                uuid = client.upload(scope, self.src / "small" / n, filename=n)
                client.create_file(scope, n, self.folder_ids[f"Bench Direct {run}"], uuid)
            r.add("small_s", "reference", time.perf_counter() - start)
            calls = self.calls_since(mark, quiet=0.2)
            r.add("small_calls", "reference", calls.api / len(names))

    def _write_peer(self, run: int) -> None:
        r, s = self.results, self.sizes
        with self.peer() as p:
            folder, name = f"Bench Write {run}", f"write-{run}.bin"
            self._prime("write", run)
            start = time.time()
            io.copy_file(self.src / "write.bin", p.path / folder / name)
            done = wait_local({self.peer_root / folder / name: s.write}, timeout=300)
            r.add("write", "rclone", done - start)

            folder = f"Bench Small {run}"
            names = sorted(q.name for q in (self.src / "small").iterdir())
            start = time.time()
            for n in names:
                io.copy_file(self.src / "small" / n, p.path / folder / n)
            done = wait_local({self.peer_root / folder / n: s.small_size for n in names},
                              timeout=300)
            r.add("small_s", "rclone", done - start)

            folder = f"Bench Saves {run}"
            for app, (doc, replay, _) in io.SAVES.items():
                data = self._doc_bytes(app, run, 1)
                opened_by_app(p.path / folder, doc)
                start = time.time()
                replay(p.path / folder, doc, data)
                done = wait_local({self.peer_root / folder / doc: len(data)}, timeout=120)
                r.add(f"save_{app}_s", "rclone", done - start)

    # --- profiling ---------------------------------------------------------------------------

    def profile(self) -> str:
        """One more pass of the cold read, the cold listings and the write, each sampled by
        py-spy in the mount and in the emulator; the summaries as markdown."""
        assert self.emulator is not None
        sections = ["# Profiles of the mount and the emulator (py-spy)", "",
                    "Made by `python -m bench --profile`; see bench/profile.py. Shares are of "
                    "samples of the thread holding the GIL.", ""]
        in_tree = lambda name: name.startswith("Folder ")  # noqa: E731

        def write(m: ProcorefsMount) -> None:
            folder, name = "Bench Write 1", "profiled.bin"
            mark = self.mark()
            io.copy_file(self.src / "write.bin", m.path / folder / name)
            self.committed(folder, {name: (1, self.sizes.write)}, mark, timeout=300)

        passes: list[tuple[str, str, Callable[[ProcorefsMount], object]]] = [
            ("Cold sequential read", "cold_read",
             lambda m: io.seq_read(m.path / "Big Files" / self.big_name)),
            ("Cold find + stat", "find_cold", lambda m: io.walk_stat(m.path, in_tree)),
            ("Cold ls -l of the big folder", "listing_cold",
             lambda m: io.walk_stat(m.path / self.listing_name)),
            ("Write until committed", "write", write),
        ]
        for title, key, action in passes:
            if key == "write" and self.write_reason is not None:
                sections += [f"## {title}", "", f"Not profiled: {self.write_reason}.", ""]
                continue
            print(f"bench: profiling {title.lower()}", flush=True)
            with self.fresh_mount() as m:
                mount_rec = profile.Recorder(m.pid, self.work / f"profile-{key}-mount.txt")
                emu_rec = profile.Recorder(self.emulator.pid,
                                           self.work / f"profile-{key}-emulator.txt")
                time.sleep(0.5)  # py-spy attaches before the workload starts
                start = time.perf_counter()
                failure = None
                try:
                    action(m)
                except (OSError, BenchError) as exc:
                    failure = str(exc).splitlines()[0]
                finally:
                    secs = time.perf_counter() - start
                    in_mount, in_emulator = mount_rec.stop(), emu_rec.stop()
            if failure is not None:
                sections += [f"## {title}", "", f"Not profiled: it failed ({failure}).", ""]
                continue
            sections += [f"## {title} ({secs:.2f} s while sampled)", ""]
            for who, prof in (("mount", in_mount), ("emulator", in_emulator)):
                sections.append(profile.render(who, prof) if prof is not None
                                else f"### {who}\n\nno samples (py-spy failed)\n")
        return "\n".join(sections)

    # --- the table --------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        r, s = self.results, self.sizes
        c = r.cell

        def rss(key: str) -> Cell | None:
            return c(key, "rss")

        def row(key: str, workload: str, unit: str, *, ref: str = "",
                targets: Sequence[Target] = (), load: str | None = None,
                detail: str | None = None) -> Row:
            procorefs = c(key, "procorefs") or Cell.missing("not run (see --only)")
            return Row(key, workload, unit, procorefs, c(key, "reference") if ref else None,
                       ref, c(key, "rclone"), rss(load or key), tuple(targets),
                       note=self._note(load or key, detail or key))

        saves = []
        for app, (doc, _, size) in io.SAVES.items():
            saves += [
                row(f"save_{app}_calls", f"{app.capitalize()} save ({doc}, "
                    f"{human(size)}): API calls", "calls",
                    targets=[Target("procorefs", "<=", 3, "<= 3 API calls")],
                    load=f"save_{app}_s"),
                row(f"save_{app}_s", f"{app.capitalize()} save: until committed", "s",
                    detail=f"save_{app}_calls"),
            ]
        return [
            row("cold_read", f"Cold sequential read, {human(s.big)}", "MB/s",
                ref="direct client, ranged parallel download",
                targets=[Target("vs_reference", ">=", 0.9, ">= 0.9 x direct"),
                         Target("vs_rclone", ">=", 1.0, ">= rclone")]),
            row("warm_read", f"Warm sequential read, {human(s.big)}", "MB/s",
                ref="local file", targets=[Target("vs_reference", ">=", 0.8,
                                                  ">= 0.8 x local")]),
            row("ttfb", f"Time to first byte, {human(s.huge)} file", "ms",
                ref="direct client, resolve + 1-byte ranged GET"),
            row("random_cold", f"Random 4 KiB reads, cold, {human(s.big)} file", "IOPS"),
            row("random_warm", "Random 4 KiB reads, warm (same pages again)", "IOPS",
                ref="local file"),
            row("write", f"Write {human(s.write)} until committed", "s",
                ref="direct client upload + create",
                targets=[Target("vs_reference", "<=", 1.15, "<= 1.15 x direct")]),
            row("small_s", f"Copy in {s.small_count} x {human(s.small_size)}, until all "
                "committed", "s", ref="direct client, one by one", detail="small_calls"),
            row("small_calls", "  ... API calls per file (the folder's listing apart)",
                "calls/file",
                ref="direct client", load="small_s",
                targets=[Target("procorefs", "<=", 2, "<= 2 per file")]),
            row("find_cold_s", f"find + stat, cold ({s.folders} folders, {s.files} files)",
                "s", targets=[Target("vs_rclone", "<=", 1.0, "<= rclone")],
                load="find_cold", detail="find_cold"),
            row("find_cold_calls", "  ... API calls per folder listed", "calls/folder",
                targets=[Target("procorefs", "<=", 1, "<= 1 per folder")],
                load="find_cold", detail="find_cold"),
            row("find_warm_s", "find + stat, warm", "s", load="find_warm",
                detail="find_warm"),
            row("find_warm_calls", "  ... API calls", "calls",
                targets=[Target("procorefs", "==", 0, "0 calls")], load="find_warm",
                detail="find_warm"),
            row("listing_cold_s", f"ls -l of a folder of {s.listing} files, cold", "s",
                targets=[Target("vs_rclone", "<=", 1.0, "<= rclone")],
                load="listing_cold", detail="listing_cold"),
            row("listing_cold_calls", "  ... API calls", "calls",
                targets=[Target("procorefs", "<=", 1, "1 call")], load="listing_cold",
                detail="listing_cold"),
            row("listing_warm_s", "ls -l of that folder, warm", "s", load="listing_warm",
                detail="listing_warm"),
            row("listing_warm_calls", "  ... API calls", "calls",
                targets=[Target("procorefs", "==", 0, "0 calls")], load="listing_warm",
                detail="listing_warm"),
            *saves,
        ]

    def _note(self, load_key: str, detail_key: str) -> str:
        parts = list(self.results.details.get(detail_key, []))
        loads = self.results.loads.get(load_key, [])
        # CPU time is counted in clock ticks (10 ms): too coarse for shorter workloads.
        mount = [w.mount_cpu / w.wall for w in loads
                 if w.mount_cpu is not None and w.wall >= 0.5]
        emu = [w.emulator_cpu / w.wall for w in loads
               if w.emulator_cpu is not None and w.wall >= 0.5]
        if mount and emu:
            parts.append(f"CPU busy while measured: mount {Summary.of(mount).median:.2f}, "
                         f"emulator {Summary.of(emu).median:.2f} (cores)")
        return "; ".join(parts)


def opened_by_app(folder: Path, doc: str) -> None:
    """What the application did before the user pressed Save: browse to the folder and read
    the document. A save is measured from there, as a user meets it."""
    os.listdir(folder)
    io.seq_read(folder / doc)


# --- command line -------------------------------------------------------------------------------

def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure procorefs against the direct client, local files and rclone, "
                    "and write bench/results/latest.md and latest.json.")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per figure (default 5, or 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one run: a smoke test of the bench itself")
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="N",
                        help="added latency per request, on the emulator and on the peer's "
                             "WebDAV traffic (default 0: loopback)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads among {', '.join(WORKLOADS)}")
    parser.add_argument("--no-rclone", action="store_true", help="skip the rclone peer")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile the cold read, cold listings and write with "
                             "py-spy into <out>/profile.md (needs `pip install py-spy`)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where latest.md and latest.json go (default bench/results)")
    parser.add_argument("--code", type=Path, default=None, metavar="DIR",
                        help="measure the procorefs package in DIR (e.g. an unpacked "
                             "`git archive HEAD`) instead of this checkout")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the run's files here instead of a removed temp dir")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)}")
    args.only = only
    return args


def _meta(args: argparse.Namespace, sizes: Sizes, bench: Bench, started: float) -> dict[str, Any]:
    rclone_version = ""
    if bench.rclone:
        with contextlib.suppress(OSError):
            rclone_version = subprocess.run([bench.rclone, "version"], capture_output=True,
                                            text=True, check=False).stdout.splitlines()[0]
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1), "runs": args.runs,
            "quick": args.quick, "latency_ms": args.latency_ms, "workloads": args.only,
            "sizes": asdict(sizes), "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.release()}",
            "rclone": rclone_version or bench.rclone_reason, "code": _code_version()}


def _code_version() -> str:
    """Which procorefs was measured: the checkout's commit (and whether it had changes)."""
    root = CODE["root"]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=False)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no", "--", "procorefs"],
                               capture_output=True, text=True, check=False)
    except OSError:
        return str(root)
    if head.returncode != 0:
        return str(root)
    changes = " with uncommitted changes to procorefs/" if dirty.stdout.strip() else ""
    return f"commit {head.stdout.strip()}{changes}"


def _preamble(meta: dict[str, Any]) -> list[str]:
    return [
        f"Measured {meta['date']} in {meta['duration_s']:.0f} s: {meta['runs']} run(s) per "
        f"figure, median (min-max); added latency per request {meta['latency_ms']:g} ms; "
        f"{meta['machine']}; Python {meta['python']}; peer {meta['rclone']}; procorefs "
        f"{meta['code']}.",
        "Ratios are paired by run (procorefs and its reference measured moments apart). "
        "For MB/s and IOPS higher is better; for s, ms and calls lower is better. "
        "Peak RSS is the mount process's high-water mark during that workload. "
        "`python -m bench` regenerates this file; docs/performance.md explains it.",
    ]


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.code is not None:
        use_code(args.code)
    sizes = QUICK if args.quick else FULL
    started = time.time()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    else:
        workdir = Path(tempfile.mkdtemp(prefix="procorefs-bench-"))
    bench = Bench(args, sizes, workdir)
    status = 0
    try:
        bench.setup()
        steps: dict[str, Callable[[int], None]] = {
            "read": bench.run_read, "ttfb": bench.run_ttfb, "random": bench.run_random,
            "write": bench.run_write, "find": bench.run_find, "listing": bench.run_listing}
        for run in range(1, args.runs + 1):
            for name in args.only:
                print(f"bench: run {run}/{args.runs}: {name}", flush=True)
                steps[name](run)
        if args.profile:
            if profile.available():
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "profile.md").write_text(bench.profile(), encoding="utf-8")
            else:
                print("bench: --profile needs py-spy: .venv/bin/pip install py-spy",
                      file=sys.stderr)
    except KeyboardInterrupt:
        print("bench: interrupted; writing what was measured", file=sys.stderr)
        status = 130
    except Exception:
        traceback.print_exc()
        print(f"bench: failed; the run's files are kept in {workdir}", file=sys.stderr)
        status = 1
    finally:
        bench.close()
    meta = _meta(args, sizes, bench, started)
    rows = bench.rows()
    markdown = render_markdown(rows, title="procorefs benchmark: latest run",
                               preamble=_preamble(meta))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(markdown, encoding="utf-8")
    (args.out / "latest.json").write_text(rows_json(rows, meta), encoding="utf-8")
    print(markdown)
    print(f"bench: wrote {args.out / 'latest.md'} and {args.out / 'latest.json'}")
    if status == 0 and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return status

