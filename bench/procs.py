"""The processes a bench run starts and talks to: the emulator and procorefs mounts.

``Emulator`` starts ``procorefs emulator serve`` with the large seed sized for the run, and
wraps the few control calls the bench uses (tokens, settings, the latency fault, the request
log, seeding extra files). ``ProcorefsMount`` is one ``procorefs mount --foreground`` child
with its own empty cache, state and config directories: a fresh mount is a cold mount (its
cache directory is empty and the kernel's page cache of a FUSE mount starts empty), which is
how the bench measures "cold" without dropping the machine's caches. ``Remote`` reads Procore
as a second user, to see when a write has been committed without its requests counting
against the mount.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
# Where the procorefs under test is imported from (``--code``): this checkout by default.
CODE = {"root": REPO_ROOT}


def use_code(root: Path) -> None:
    """Measure the procorefs in ``root`` (e.g. ``git archive`` of a commit) instead of this
    checkout: the bench process and every child it starts import it from there."""
    root = root.resolve()
    if not (root / "procorefs" / "__init__.py").is_file():
        raise BenchError(f"{root} holds no procorefs package")
    CODE["root"] = root
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
START_TIMEOUT = 300.0
MOUNT_TIMEOUT = 60.0


class BenchError(RuntimeError):
    """A process the bench needs did not start or misbehaved."""


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.02,
          alive: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if alive is not None and alive.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise BenchError(f"{what}: the process exited with {alive.returncode}\n{tail}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


class Emulator:
    def __init__(self, workdir: Path, seed_args: Sequence[str]) -> None:
        self.workdir = workdir
        self.seed_args = list(seed_args)
        self.log = workdir / "emulator.log"
        self.ready = workdir / "emulator-ready.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.api_url = ""
        self.http = httpx.Client(timeout=600.0)
        self.info: dict[str, Any] = {}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "procorefs.cli.emulator", "serve", "--port", "0",
                "--storage-port", "0", "--control", "--ready-file", str(self.ready),
                "--data", str(self.workdir / "emulator-data"), "--reset", *self.seed_args]
        env = {**os.environ, "PYTHONPATH": str(CODE["root"])}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=CODE["root"], env=env)
        _wait(self.ready.exists, START_TIMEOUT, "the emulator to seed and listen",
              interval=0.1, alive=self.process, log=self.log)
        ready = json.loads(self.ready.read_text("utf-8"))
        self.api_url = str(ready["api_url"])
        self.info = self.control("GET", "info")

    def stop(self) -> None:
        _terminate(self.process)
        self.process = None
        self.http.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"{self.api_url}/_emulator/{path}",
                                     json=body)
        if response.status_code >= 400:
            raise BenchError(f"{method} /_emulator/{path}: {response.status_code} "
                             f"{response.text[:300]}")
        return response.json() if response.content else None

    # -- what the bench needs ----------------------------------------------------------------

    def token(self, login: str | None = None) -> str:
        body = {"login": login} if login else {}
        return str(self.control("POST", "token", body)["access_token"])

    def unthrottle(self) -> None:
        # Rate limits are a policy, not a speed; the bench measures calls instead.
        self.control("POST", "settings", {"rate_limit": "100000000/10000000"})

    def set_latency(self, milliseconds: float) -> None:
        if milliseconds <= 0:
            self.control("DELETE", "faults")
            return
        self.control("PUT", "faults", {"rules": [
            {"action": "latency", "delay": milliseconds / 1000.0, "origin": "any",
             "name": "bench network latency"}]})

    def mark(self) -> int:
        return int(self.control("GET", f"requests?since={1 << 62}")["last_seq"])

    def requests(self, since: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", f"requests?since={since}")[
            "requests"]
        return result

    def now(self) -> float:
        return float(self.control("GET", "clock")["now"])

    def remote_folder(self, project_id: int, parent_id: int, name: str, login: str) -> int:
        folder = self.control("POST", "remote/folders", {
            "project_id": project_id, "parent_id": parent_id, "name": name, "login": login})
        return int(folder["id"])

    def remote_file(self, project_id: int, parent_id: int, name: str, login: str, *,
                    size: int | None = None, content_b64: str | None = None
                    ) -> dict[str, Any]:
        body: dict[str, Any] = {"project_id": project_id, "parent_id": parent_id,
                                "name": name, "login": login}
        if content_b64 is not None:
            body["content_b64"] = content_b64
        else:
            body["size"] = size or 0
        result: dict[str, Any] = self.control("POST", "remote/files", body)
        return result


def hermetic_env(workdir: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCOREFS_", "FUSE_"))}
    env.update(PROCOREFS_STATE_DIR=str(workdir / "state"),
               PROCOREFS_CACHE_DIR=str(workdir / "cache"),
               XDG_CONFIG_HOME=str(workdir / "config"),
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               PYTHONUNBUFFERED="1", PROCOREFS_ACCESS_TOKEN=token,
               PYTHONPATH=str(CODE["root"]))
    return env


def in_mount_table(path: Path) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as table:
        return any(len(f := line.split()) > 2 and f[1] == str(path) for line in table)


def stop_mount(path: Path, process: subprocess.Popen[bytes] | None) -> None:
    """Unmount ``path`` and wait for the process serving it; kill it after 60 s."""
    try:
        force_unmount(path)
    finally:
        if process is not None:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                _terminate(process)
                force_unmount(path)


def force_unmount(path: Path) -> None:
    if not in_mount_table(path):
        return
    done = subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, check=False)
    if done.returncode != 0 and in_mount_table(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True, check=False)


class ProcorefsMount:
    """One fresh procorefs mount of the emulator's project; ``with`` unmounts it."""

    def __init__(self, emulator: Emulator, workdir: Path, token: str, *, project_id: int,
                 company_id: int, extra: Sequence[str] = (),
                 prefix: Sequence[str] = ()) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.path = workdir / "mnt"
        self.token = token
        self.project_id = project_id
        self.company_id = company_id
        self.extra = list(extra)
        self.prefix = list(prefix)  # e.g. a profiler wrapping the mount command
        self.output = workdir / "mount.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    def start(self) -> ProcorefsMount:
        self.path.mkdir(parents=True, exist_ok=True)
        argv = [*self.prefix, sys.executable, "-m", "procorefs", "mount", "--foreground",
                "--api-url", self.emulator.api_url, "--cache-dir", str(self.workdir / "cache"),
                "--project", str(self.project_id), "--company", str(self.company_id),
                *self.extra, "--", str(self.path)]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=self.workdir,
                                            env=hermetic_env(self.workdir, self.token))
        _wait(lambda: os.path.ismount(self.path), MOUNT_TIMEOUT, "the procorefs mount",
              alive=self.process, log=self.output)
        self.pid = self._mount_pid()
        return self

    def _mount_pid(self) -> int | None:
        assert self.process is not None
        if not self.prefix:
            return self.process.pid
        # Under a profiler the mount is the profiler's child.
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError, ValueError):
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
        return None

    def stop(self) -> None:
        stop_mount(self.path, self.process)
        self.process = None

    def __enter__(self) -> ProcorefsMount:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        parts = [self.output.read_text(errors="replace")] if self.output.exists() else []
        for log in sorted((self.workdir / "state" / "logs").glob("mount-*.log*")):
            parts.append(log.read_text(errors="replace"))
        return "\n".join(parts)


class Remote:
    """Procore as seen by another user: how the bench learns a write was committed."""

    def __init__(self, api_url: str, token: str, company_id: int, project_id: int) -> None:
        self.project_id = project_id
        self.http = httpx.Client(base_url=api_url, timeout=120.0, headers={
            "Authorization": f"Bearer {token}", "Procore-Company-Id": str(company_id),
            "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def folder(self, folder_id: int | None) -> dict[str, Any]:
        path = "/rest/v1.0/folders" + (f"/{folder_id}" if folder_id is not None else "")
        response = self.http.get(path, params={"project_id": self.project_id,
                                               "show_latest_file_version_only": "true"})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def files(self, folder_id: int) -> dict[str, dict[str, Any]]:
        """The live files of a folder by name: ``{"size", "id", "version"}``."""
        out: dict[str, dict[str, Any]] = {}
        for f in self.folder(folder_id).get("files", []):
            if f.get("is_deleted"):
                continue
            versions = f.get("file_versions") or []
            number = max((int(v.get("number", 0)) for v in versions), default=0)
            out[str(f["name"])] = {"size": int(f.get("size") or 0), "id": int(f["id"]),
                                   "version": number}
        return out

    def wait_files(self, folder_id: int, want: Mapping[str, tuple[int, int]],
                   timeout: float, interval: float = 0.05) -> float:
        """Wait until each name has (at least that version number, that size); returns the
        wall-clock time (``time.time()``) the answer that showed it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            files = self.files(folder_id)
            now = time.time()
            if all(name in files and files[name]["version"] >= version
                   and files[name]["size"] == size for name, (version, size) in want.items()):
                return now
            if time.monotonic() > deadline:
                missing = sorted(n for n, (v, s) in want.items()
                                 if n not in files or files[n]["version"] < v
                                 or files[n]["size"] != s)
                raise BenchError(f"not committed within {timeout:.0f} s: "
                                 f"{len(missing)} of {len(want)} files, e.g. {missing[:3]}")
            time.sleep(interval)
