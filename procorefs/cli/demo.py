"""``procorefs demo``: the emulator with the demo seed, mounted, in one command.

Starts ``procorefs emulator serve --seed demo --control`` as a child on loopback (any free
ports), mints a token for the demo user through the emulator's control API, mounts the first
demo project with ``procorefs mount --foreground`` as a second child, prints what to try, and
on Ctrl-C (or SIGTERM) unmounts, stops the emulator and removes its temporary files, in that
order. Both children run in their own sessions so that the terminal's Ctrl-C reaches only
this process, which then stops them in the right order.

``procorefs.app`` is imported only where a mount is made, so that the demo still starts the
emulator (and says how to reach it) on a machine where mounting cannot work.

If the mount cannot be made, the emulator keeps running and the demo says how to reach it.
Everything the emulator stores lives in a temporary directory: each demo starts fresh, and the
mount's cache lives there too, because a fresh emulator reuses ids for different bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from procorefs.cli import UserError

EMULATOR_READY_TIMEOUT = 60.0
MOUNT_READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Long enough for a working day of demo; the token only ever exists in this process tree.
TOKEN_TTL = 7 * 24 * 3600
_POLL = 0.05


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the local Procore emulator with demo data and mount it",
        description="Start the emulator with demo documents, mount the first demo project "
                    "and keep both running until Ctrl-C.")
    parser.add_argument("--mountpoint", type=Path, default=None,
                        help="where to mount (default: ~/procorefs-demo if free, else a "
                             "temporary directory)")
    parser.set_defaults(func=_demo)


@dataclass(frozen=True)
class DemoTarget:
    api_url: str
    storage_url: str
    company_id: int
    project_id: int
    project_name: str
    login: str
    token: str
    client_id: str | None
    client_secret: str | None


class _Stop(Exception):
    """SIGTERM, turned into an exception so the same cleanup runs as for Ctrl-C."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _demo(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="procorefs-demo-"))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    emulator: subprocess.Popen[bytes] | None = None
    mount: subprocess.Popen[bytes] | None = None
    mountpoint: Path | None = None
    created_mountpoint = False
    try:
        emulator, api_url, storage_url = start_emulator(work)
        print(f"Procore emulator running: API {api_url}  storage {storage_url}")
        target = prepare(api_url, storage_url)
        _print_emulator(target)
        mountpoint, created_mountpoint = choose_mountpoint(args.mountpoint, work)
        try:
            mount = start_mount(target, mountpoint, work, verbose=args.verbose)
        except UserError as exc:
            print(f"\nThe mount could not be made: {exc}", file=sys.stderr)
            print(f"The emulator still runs at {api_url}; press Ctrl-C to stop it.")
        else:
            _print_try(target, mountpoint)
        _wait(emulator, mount)
    except (KeyboardInterrupt, _Stop):
        print("\nStopping ...")
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave a mount behind.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _shutdown(mount, mountpoint, emulator)
        if mountpoint is not None and created_mountpoint:
            with contextlib.suppress(OSError):
                mountpoint.rmdir()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous)
    return 0


# --- the emulator ---------------------------------------------------------------------------

def start_emulator(work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    ready = work / "ready.json"
    log = work / "emulator.log"
    argv = [sys.executable, "-m", "procorefs", "emulator", "serve", "--host", "127.0.0.1",
            "--port", "0", "--storage-port", "0", "--data", str(work / "emulator"),
            "--seed", "demo", "--control", "--ready-file", str(ready)]
    with open(log, "wb") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True)
    deadline = time.monotonic() + EMULATOR_READY_TIMEOUT
    while True:
        info = _read_ready(ready)
        if info is not None:
            return child, str(info["api_url"]), str(info["storage_url"])
        code = child.poll()
        if code is not None:
            raise UserError(f"the emulator stopped at start (status {code}): {_tail(log)}")
        if time.monotonic() > deadline:
            _stop(child)
            raise UserError(f"the emulator did not start within {EMULATOR_READY_TIMEOUT:.0f} s:"
                            f" {_tail(log)}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(_POLL)


def _read_ready(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not written yet, or half-written
    return data if isinstance(data, dict) and "api_url" in data else None


def _tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no output)"
    return lines[-1] if lines else "(no output)"


def prepare(api_url: str, storage_url: str) -> DemoTarget:
    """Ask the control API who the demo user is and what to mount; mint its token."""
    with httpx.Client(base_url=api_url, timeout=30.0) as http:
        info = _json(http.get("/_emulator/info"))
        users = {int(u["id"]): u for u in info.get("users", [])}
        demo_user = users.get(int(info["demo_user_id"]))
        if demo_user is None:
            raise UserError("the emulator's control API names no demo user")
        company, project = _first_project(info)
        token = _json(http.post("/_emulator/token",
                                json={"login": demo_user["login"], "ttl": TOKEN_TTL}))
    app_entry: dict[str, Any] = next(iter(info.get("apps", [])), {})
    return DemoTarget(
        api_url=api_url, storage_url=storage_url, company_id=int(company["id"]),
        project_id=int(project["id"]),
        project_name=str(project.get("display_name") or project.get("name")),
        login=str(demo_user["login"]), token=str(token["access_token"]),
        client_id=app_entry.get("client_id"), client_secret=app_entry.get("client_secret"))


def _first_project(info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    for company in info.get("companies", []):
        for project in company.get("projects", []):
            return company, project
    raise UserError("the emulator's demo seed has no project")


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise UserError(f"the emulator's control API answered {response.status_code} to "
                        f"{response.request.method} {response.request.url.path}")
    data = response.json()
    if not isinstance(data, dict):
        raise UserError("the emulator's control API answered something unexpected")
    return data


# --- the mount ------------------------------------------------------------------------------

def choose_mountpoint(requested: Path | None, work: Path) -> tuple[Path, bool]:
    """The mountpoint and whether the demo created it (and so removes it at the end)."""
    from procorefs import app

    if requested is not None:
        path = app.normalize_mountpoint(requested)
        if not path.exists():
            path.mkdir(parents=True)
            return path, True
        return path, False
    home = app.normalize_mountpoint(Path("~/procorefs-demo"))
    with contextlib.suppress(OSError):
        if not home.exists():
            home.mkdir()
            return home, True
        if home.is_dir() and not app.is_mounted(home) and not any(home.iterdir()):
            return home, False
    fallback = work / "mount"
    fallback.mkdir()
    return fallback, True


def start_mount(target: DemoTarget, mountpoint: Path, work: Path, *,
                verbose: int = 0) -> subprocess.Popen[bytes]:

    argv = [sys.executable, "-m", "procorefs", *(["-v"] * verbose), "mount",
            "--foreground", "--api-url", target.api_url, "--company", str(target.company_id),
            "--project", str(target.project_id), "--cache-dir", str(work / "cache"),
            "--", str(mountpoint)]
    env = dict(os.environ, PROCOREFS_ACCESS_TOKEN=target.token)
    err = work / "mount.err"
    with open(err, "wb") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=env, start_new_session=True)
    deadline = time.monotonic() + MOUNT_READY_TIMEOUT
    while not os.path.ismount(mountpoint):
        code = child.poll()
        if code is not None:
            raise UserError(_tail(err).removeprefix("procorefs: "))
        if time.monotonic() > deadline:
            _stop(child)
            raise UserError(f"the mount was not ready within {MOUNT_READY_TIMEOUT:.0f} s")
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(_POLL)
    return child


def _wait(emulator: subprocess.Popen[bytes], mount: subprocess.Popen[bytes] | None) -> None:
    """Block until Ctrl-C, SIGTERM, or one of the children ends by itself."""
    while True:
        for name, child in (("emulator", emulator), ("mount", mount)):
            if child is not None and child.poll() is not None:
                print(f"\nThe {name} stopped by itself (status {child.returncode}).",
                      file=sys.stderr)
                return
        with contextlib.suppress(subprocess.TimeoutExpired):
            emulator.wait(0.5)


def _shutdown(mount: subprocess.Popen[bytes] | None, mountpoint: Path | None,
              emulator: subprocess.Popen[bytes] | None) -> None:
    try:
        _stop_mount(mount, mountpoint)
    finally:
        if emulator is not None:
            _stop(emulator)
            print("Emulator stopped.")


def _stop_mount(mount: subprocess.Popen[bytes] | None, mountpoint: Path | None) -> None:
    from procorefs import app

    if mount is not None and mountpoint is not None:
        if mount.poll() is None and app.is_mounted(mountpoint):
            result = subprocess.run(app.unmount_command(mountpoint), capture_output=True,
                                    text=True, check=False)
            if result.returncode != 0:
                # Busy (a shell still inside it): detach now, the kernel finishes later.
                subprocess.run(app.unmount_command(mountpoint, lazy=True),
                               capture_output=True, check=False)
        _stop(mount)
        print(f"Unmounted {mountpoint}.")


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Ask politely (SIGTERM: both children unmount or shut down cleanly), then insist."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# --- what the user sees ---------------------------------------------------------------------

def _print_emulator(target: DemoTarget) -> None:
    print(f"  demo user: {target.login}")
    if target.client_id:
        print(f"  OAuth app: client id {target.client_id}, secret {target.client_secret}")
    print(f"  sign in from another shell: procorefs login --api-url {target.api_url}"
          + (f" --client-id {target.client_id}" if target.client_id else ""))


def _print_try(target: DemoTarget, mountpoint: Path) -> None:
    mp = shlex.quote(str(mountpoint))
    lines = [
        "",
        f"Mounted \"{target.project_name}\" (project {target.project_id}) at {mountpoint}",
        "",
        "Try, in another terminal:",
        f"  ls -l {mp}",
        f"  find {mp} | head -40",
        f"  cp {mp}/'01 Drawings/Architectural/A-101 First Floor Plan.pdf' /tmp/",
        f"  getfattr -d {mp}/'01 Drawings/Architectural/A-101 First Floor Plan.pdf'   "
        "(package attr), or:",
        f"  python3 -c 'import os,sys; p=sys.argv[1]; print({{n: os.getxattr(p, n) for n in "
        f"os.listxattr(p)}})' {mp}/'01 Drawings/Architectural/A-101 First Floor Plan.pdf'",
        f"  mkdir {mp}/'New Folder' && mv {mp}/'New Folder' {mp}/'Renamed Folder'",
        "",
        "Press Ctrl-C to unmount and stop the emulator.",
    ]
    print("\n".join(lines), flush=True)

