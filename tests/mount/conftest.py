"""The mount tier: real FUSE mounts, each in a child process, against the emulator on loopback.

Gate: without /dev/fuse, fusermount3 or libfuse3 the tier is skipped on a developer machine,
but it FAILS when the ``CI`` environment variable is set: CI must never skip it silently.

Each mount is ``python -m procorefs mount ... --foreground`` with the token in
``PROCOREFS_ACCESS_TOKEN`` and its own state, cache and config directories (nothing of the
user's leaks in, nothing leaks out). Teardown ALWAYS unmounts (``fusermount3 -u``, then
``-uz``), waits for the process, and fails the test if the mount logged a warning or an error
that the test did not declare with ``@pytest.mark.allow_log(...)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from procorefs.emulator import seed
from tests.mount.gate import fuse_unavailable, gate
from tests.mount.remote import Remote

MOUNT_READY_TIMEOUT = 30.0
# Unmount waits for the queue to reach Procore (a 100 MiB upload in the crash tests).
EXIT_TIMEOUT = 120.0
_LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) (?P<rest>.*)$")


@pytest.fixture(scope="session")
def fuse_ready() -> None:
    gate(fuse_unavailable(), os.environ)


@pytest.fixture(autouse=True)
def _needs_fuse(fuse_ready: None) -> None:
    """Every test of the tier goes through the gate above."""


def in_mount_table(path: Path) -> bool:
    """Mounted at ``path``, alive or dead (a dead FUSE mount makes ismount() False)."""
    with open("/proc/self/mounts", encoding="utf-8") as table:
        return any(line.split()[1] == str(path) for line in table if len(line.split()) > 2)


def force_unmount(path: Path) -> None:
    if not in_mount_table(path):
        return
    done = subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, check=False)
    if done.returncode != 0 and in_mount_table(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True, check=False)


def hermetic_env(workdir: Path, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCOREFS_", "FUSE_"))}
    env.update(
        PROCOREFS_STATE_DIR=str(workdir / "state"),
        PROCOREFS_CACHE_DIR=str(workdir / "cache"),
        XDG_CONFIG_HOME=str(workdir / "config"),
        # Never touch the developer's keyring from a test.
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        PYTHONUNBUFFERED="1",
    )
    if token is not None:
        env["PROCOREFS_ACCESS_TOKEN"] = token
    return env


@dataclass
class Mounted:
    path: Path
    process: subprocess.Popen[bytes]
    workdir: Path
    emulator: Any
    api_url: str
    token: str
    company_id: int
    project_id: int
    output: Path
    allowed_log: list[str] = field(default_factory=list)
    killed: bool = False

    def remote(self) -> Remote:
        """The oracle, with its own token so its requests never count against the mount's."""
        token = self.emulator.token(seed.DEMO_USER_LOGIN)["access_token"]
        return Remote(self.api_url, token, self.company_id, self.project_id)

    def log_text(self) -> str:
        logs = sorted((self.workdir / "state" / "logs").glob("mount-*.log*"))
        return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in logs)

    def unexpected_log_records(self) -> list[str]:
        bad = []
        for line in self.log_text().splitlines():
            match = _LOG_RECORD.match(line)
            if match is None or match["level"] not in ("WARNING", "ERROR", "CRITICAL"):
                continue
            if any(re.search(p, match["rest"]) for p in self.allowed_log):
                continue
            bad.append(line)
        return bad

    def kill9(self) -> None:
        """kill -9 the mount process and clear the dead mount it leaves behind."""
        self.killed = True
        self.process.kill()
        self.process.wait()
        force_unmount(self.path)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``procorefs ARGS`` with this mount's environment (status, queue retry, ...)."""
        return subprocess.run([sys.executable, "-m", "procorefs", *args],
                              env=hermetic_env(self.workdir, self.token), cwd=self.workdir,
                              capture_output=True, text=True, check=check, timeout=60)

    def stop(self) -> int:
        """Unmount (always), wait for the process, and return its exit status."""
        try:
            force_unmount(self.path)
        finally:
            try:
                code = self.process.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                force_unmount(self.path)
                raise AssertionError(f"the mount process of {self.path} did not exit "
                                     "after unmount") from None
        return code


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def start_mount(emulator: Any, workdir: Path, *, ttl: float | None = None,
                poll_budget: int | None = None, extra: Sequence[str] = (),
                project_id: int | None = seed.PROJECT_ID,
                company_id: int | None = seed.COMPANY_ID,
                allowed_log: Sequence[str] = (), token: str | None = None) -> Mounted:
    # A restart while Procore is down reuses the token it had.
    token = token or emulator.token(seed.DEMO_USER_LOGIN)["access_token"]
    mountpoint = workdir / "mnt"
    mountpoint.mkdir(parents=True, exist_ok=True)   # exists again for a restart
    argv = [sys.executable, "-m", "procorefs", "-v", "mount", "--foreground",
            "--api-url", emulator.api_url, "--cache-dir", str(workdir / "cache")]
    if project_id is not None:
        argv += ["--project", str(project_id)]
    if company_id is not None:
        argv += ["--company", str(company_id)]
    if ttl is not None:
        argv += ["--ttl", str(ttl)]
    if poll_budget is not None:
        argv += ["--poll-budget", str(poll_budget)]
    argv += [*extra, "--", str(mountpoint)]
    output = workdir / "mount.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   env=hermetic_env(workdir, token), cwd=workdir)
    mounted = Mounted(mountpoint, process, workdir, emulator, emulator.api_url, token,
                      company_id or seed.COMPANY_ID, project_id or seed.PROJECT_ID, output,
                      list(allowed_log))
    deadline = time.monotonic() + MOUNT_READY_TIMEOUT
    while not os.path.ismount(mountpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            mounted.stop()
            raise AssertionError(
                f"the mount did not come up (status {process.returncode}):\n"
                + output.read_text(errors="replace")[-3000:])
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.05)
    return mounted


def finish(mounted: Mounted) -> None:
    """Teardown: unmount, then insist the mount exited cleanly and logged nothing unexpected."""
    code = mounted.stop()
    # A killed mount's log continues in the mount restarted on its work directory, which
    # is checked with its own allowances.
    bad = [] if mounted.killed else mounted.unexpected_log_records()
    if bad:
        pytest.fail("the mount logged unexpected warnings/errors:\n  " + "\n  ".join(bad),
                    pytrace=False)
    if code != 0 and not mounted.killed:
        pytest.fail(f"the mount exited with status {code}:\n"
                    + mounted.output.read_text(errors="replace")[-3000:], pytrace=False)


def _allowed(request: pytest.FixtureRequest) -> list[str]:
    patterns: list[str] = []
    for marker in request.node.iter_markers("allow_log"):
        patterns.extend(marker.args)
    return patterns


MountFactory = Callable[..., Mounted]


def _unthrottle(emulator: Any) -> None:
    """These tests compare whole trees through a second client; Procore's spike limit (100
    requests in 10 s per token) is tested in the api and core tiers, not here."""
    emulator.settings(rate_limit="1000000/100000")


@pytest.fixture
def mount_factory(demo_emulator: Any, tmp_path: Path,
                  request: pytest.FixtureRequest) -> Iterator[MountFactory]:
    """Mounts of the freshly reset demo seed; each is unmounted and checked at teardown."""
    mounts: list[Mounted] = []
    _unthrottle(demo_emulator)

    def factory(workdir: Path | None = None, **kwargs: Any) -> Mounted:
        """A mount in a fresh work directory, or again in ``workdir`` (same cache: a
        restart after a crash)."""
        workdir = workdir or tmp_path / f"m{len(mounts)}"
        kwargs.setdefault("allowed_log", _allowed(request))
        mounted = start_mount(demo_emulator, workdir, **kwargs)
        mounts.append(mounted)
        return mounted

    yield factory
    errors: list[BaseException] = []
    for mounted in reversed(mounts):
        try:
            finish(mounted)
        except BaseException as exc:  # every mount must be unmounted, even after a failure
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def demo_mount(emulator_server: Any, fuse_ready: None,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mounted]:
    """One read-mostly mount of the demo seed shared by a module's tests (no change poll)."""
    emulator_server.reset("demo")
    emulator_server.clear_faults()
    _unthrottle(emulator_server)
    # The semantics tests try to write: the core says it cannot, as a warning.
    mounted = start_mount(emulator_server, tmp_path_factory.mktemp("demo-mount"), ttl=300,
                          poll_budget=0, allowed_log=["cannot write", "cannot create"])
    try:
        yield mounted
    finally:
        finish(mounted)
