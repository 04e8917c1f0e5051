"""The composition root: settings -> API client -> ProcoreFS -> FUSE mount runner.

Owns everything about a mount that is neither filesystem semantics (``core``) nor the FUSE
protocol (``adapters.fuse``): which root the mount shows (a project, a company, or every
company), where its caches and log live, checking the mountpoint before libfuse sees it,
starting a mount as a background process that is handed back only once it is ready, and
unmounting. Failures a user can act on are raised as ``MountError`` with a one-line message;
the CLI prints them without a traceback.

Files in the state directory, per mountpoint (``<slug>`` is derived from its path):
``logs/mount-<slug>.log`` (the mount's log, rotated), ``logs/mount-<slug>.err`` (stderr of a
background mount, kept to report why it died), ``mounts/<slug>.json`` (pid and mountpoint of
the live mount, so ``unmount`` can wait for the process to finish its work),
``mounts/<slug>.status.json`` (what ``procorefs status`` shows: rewritten a few times a second
while commits are queued, every few seconds when idle, and a last time when the mount stops
with what stays queued) and ``mounts/<slug>.retry`` (a request from ``procorefs queue retry``
that the running mount picks up and answers in its status).

The client, the core and the FUSE adapter are imported where a mount is made, not at import
time: checking a mountpoint, unmounting and the demo's plumbing keep working on a machine
where libfuse, or the core, cannot load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import logging.handlers
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from procorefs.adapters.fuse.readahead import unescape_mount_field
from procorefs.config import Settings, ensure_private_dir

if TYPE_CHECKING:
    from procorefs.api.client import ProcoreClient
    from procorefs.core.fs import CoreConfig, Layout, ProcoreFS
    from procorefs.core.localnames import LocalNamePolicy

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
UNMOUNT_WAIT = 30.0
DRAIN_WAIT = 60.0          # how long a stopping mount waits for queued commits, by default
STATUS_BUSY_PERIOD = 0.25  # status file refresh while commits are queued
STATUS_IDLE_PERIOD = 2.0
RETRY_ANSWER_WAIT = 10.0
_POLL = 0.05
# libfuse 3 prints this on every mount; it means nothing to a user (shared/fuse-notes.md).
_HARMLESS_STDERR = re.compile(r"Ignoring invalid max threads value")


class MountError(Exception):
    """A mount or unmount cannot go ahead; the message says why and what to do."""


@dataclass(frozen=True)
class MountRequest:
    mountpoint: Path
    cache_dir: Path | None = None
    ttl: float | None = None
    poll_budget: int | None = None
    allow_other: bool = False
    debug: bool = False
    unmount_wait: float = DRAIN_WAIT
    delete_grace: float | None = None
    commit_debounce: float | None = None
    # WinFsp only: the target as typed (``P:``, ``*`` or a folder that does not exist yet),
    # and a network-drive volume (Explorer then makes no thumbnails over it).
    target: str | None = None
    network: bool = False


Backend = Literal["fuse", "winfsp"]


def mount_backend() -> Backend:
    """WinFsp on Windows, FUSE (libfuse 3, macFUSE) everywhere else."""
    return "winfsp" if sys.platform == "win32" else "fuse"


def is_drive_target(text: str) -> bool:
    """``P:``, ``p:\\`` or ``*``: a WinFsp drive letter rather than a folder."""
    return re.fullmatch(r"\*|[A-Za-z]:\\?", text.strip()) is not None


# --- paths ------------------------------------------------------------------------------------

def normalize_mountpoint(path: Path | str) -> Path:
    """Absolute, with ``~`` expanded, but symlinks kept (resolving would stat the mount)."""
    return Path(os.path.abspath(os.path.expanduser(str(path))))


def mount_slug(mountpoint: Path) -> str:
    """A file-name-safe, readable and unique name for a mountpoint."""
    text = str(mountpoint).strip("/") or "root"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[-48:].strip("-") or "mount"
    digest = hashlib.sha256(str(mountpoint).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{readable}-{digest}"


def log_path(settings: Settings, mountpoint: Path) -> Path:
    return settings.state_dir / "logs" / f"mount-{mount_slug(mountpoint)}.log"


def _stderr_path(settings: Settings, mountpoint: Path) -> Path:
    return settings.state_dir / "logs" / f"mount-{mount_slug(mountpoint)}.err"


def _record_path(settings: Settings, mountpoint: Path) -> Path:
    return settings.state_dir / "mounts" / f"{mount_slug(mountpoint)}.json"


def status_path(settings: Settings, mountpoint: Path) -> Path:
    return settings.state_dir / "mounts" / f"{mount_slug(mountpoint)}.status.json"


def _retry_path(settings: Settings, mountpoint: Path) -> Path:
    return settings.state_dir / "mounts" / f"{mount_slug(mountpoint)}.retry"


# --- mountpoints ------------------------------------------------------------------------------

def check_mountpoint(path: Path) -> Path:
    """The mountpoint, checked: an existing, empty directory that nothing is mounted on."""
    mountpoint = normalize_mountpoint(path)
    try:
        st = os.stat(mountpoint)
    except FileNotFoundError:
        raise MountError(f"mountpoint {mountpoint} does not exist; create it first "
                         f"(mkdir -p {mountpoint})") from None
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise MountError(f"{mountpoint} is a dead mount left behind by a crash; run "
                             f"`procorefs unmount {mountpoint}` first") from None
        raise MountError(f"cannot use {mountpoint} as a mountpoint: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(f"mountpoint {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mount point; run "
                         f"`procorefs unmount {mountpoint}` or choose another directory")
    try:
        with os.scandir(mountpoint) as entries:
            occupied = next(entries, None) is not None
    except OSError as exc:
        raise MountError(f"cannot use {mountpoint} as a mountpoint: {exc.strerror}") from None
    if occupied:
        raise MountError(f"mountpoint {mountpoint} is not empty; mounting would hide its "
                         "files, so choose an empty directory")
    if not _is_root() and not os.access(mountpoint, os.W_OK):
        raise MountError(f"you cannot mount on {mountpoint}: it is not writable by you")
    return mountpoint


def _is_root() -> bool:
    if sys.platform == "win32":
        return False
    return os.getuid() == 0


def _allow_other_permitted() -> bool:
    if _is_root() or not sys.platform.startswith("linux"):
        return True
    try:
        text = Path("/etc/fuse.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.strip() == "user_allow_other" for line in text.splitlines())


def _fuse_type(mountpoint: Path) -> str | None:
    """The filesystem type mounted exactly at ``mountpoint`` (Linux), or None."""
    try:
        lines = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    wanted = str(mountpoint)
    found = None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and unescape_mount_field(fields[1]) == wanted:
            found = fields[2]
    return found


def is_mounted(mountpoint: Path) -> bool:
    """True for a live mount, and for a dead FUSE mount (ENOTCONN) still in the table."""
    try:
        return os.path.ismount(mountpoint) or _fuse_type(mountpoint) is not None
    except OSError:
        return False


# --- what the mount shows ---------------------------------------------------------------------

def resolve_layout(client: ProcoreClient, settings: Settings) -> Layout:
    """``--project`` (finding its company if not given), ``--company``, or every company."""
    from procorefs.core.fs import Layout
    if settings.project_id is not None:
        company_id = settings.company_id
        if company_id is None:
            company_id = find_project_company(client, settings.project_id)
        return Layout("project", company_id=company_id, project_id=settings.project_id)
    if settings.company_id is not None:
        return Layout("company", company_id=settings.company_id)
    return Layout("all")


def find_project_company(client: ProcoreClient, project_id: int) -> int:
    for company in client.companies():
        if any(project.id == project_id for project in client.projects(company.id)):
            return company.id
    raise MountError(f"project {project_id} is not among the projects this account can see; "
                     "check the id, or give its company with --company")


def core_config(settings: Settings, request: MountRequest, layout: Layout,
                backend: Backend = "fuse") -> CoreConfig:
    from procorefs.core.fs import CoreConfig
    # The core keeps one private directory per (server, layout) inside it.
    cache_dir = request.cache_dir or settings.cache_dir
    ensure_private_dir(cache_dir)
    tuning: dict[str, Any] = {}
    if request.ttl is not None:
        # One freshness knob for the user: cached listings live that long, and the change
        # poll runs that often (within the budget).
        tuning.update(metadata_ttl=request.ttl, negative_ttl=request.ttl,
                      poll_interval=request.ttl)
    if request.poll_budget is not None:
        tuning["poll_budget_per_hour"] = request.poll_budget
    if request.delete_grace is not None:
        tuning["delete_grace"] = request.delete_grace
    if request.commit_debounce is not None:
        tuning["commit_debounce"] = request.commit_debounce
    tuning["unmount_timeout"] = request.unmount_wait
    # A mount's large reads are its prefetch: ``--download-parallel`` is its ranged GETs at
    # once, as it is for a direct download.
    tuning["prefetch_workers"] = settings.download_parallel
    if backend == "winfsp":
        # WinFsp hands over Windows names: the codec maps what Windows forbids, and the
        # volume is case-insensitive.
        from procorefs.adapters.winfsp.names import WindowsNameCodec
        tuning["codec"] = WindowsNameCodec()
    return CoreConfig(layout=layout, cache_dir=cache_dir, api_url=settings.api_url,
                      local_names=local_name_policy(settings), **tuning)


def local_name_policy(settings: Settings) -> LocalNamePolicy:
    """The configured set of names that never reach Procore."""
    from procorefs.core.localnames import DEFAULT_GLOBS, LocalNamePolicy
    unknown = [g for g in settings.not_local_only if g not in DEFAULT_GLOBS]
    if unknown:
        raise MountError(f"not_local_only: {', '.join(map(repr, unknown))} is not one of the "
                         f"default local-only patterns: {' '.join(DEFAULT_GLOBS)}")
    return LocalNamePolicy.with_changes(add_globs=settings.local_only,
                                        remove_globs=settings.not_local_only,
                                        upload_dwg_backups=settings.upload_dwg_backups)


def describe(layout: Layout) -> str:
    if layout.mode == "project":
        return f"project {layout.project_id} (company {layout.company_id})"
    if layout.mode == "company":
        return f"company {layout.company_id}"
    return "all companies"


# --- running a mount --------------------------------------------------------------------------

def setup_mount_logging(settings: Settings, mountpoint: Path, verbosity: int) -> Path:
    """Send this process's log to the mount's log file as well (INFO, or DEBUG with -vv)."""
    path = log_path(settings, mountpoint)
    ensure_private_dir(path.parent)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 2**20, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    root = logging.getLogger()
    console_level = root.getEffectiveLevel()
    # The console keeps the verbosity the user asked for; only the file gets more.
    for existing in root.handlers:
        if existing.level == logging.NOTSET:
            existing.setLevel(console_level)
    root.addHandler(handler)
    root.setLevel(min(console_level, handler.level))
    # httpx logs every request at INFO: a line per 16 MiB read and three per small file
    # saved, each through the redacting filter. The log keeps them only at -vv.
    logging.getLogger("httpx").setLevel(logging.NOTSET if verbosity >= 2 else logging.WARNING)
    return path


def mount_foreground(settings: Settings, request: MountRequest, *,
                     on_mounted: Callable[[str], None] | None = None,
                     backend: Backend | None = None,
                     stop: threading.Event | None = None) -> None:
    """Mount and serve until unmounted; ``on_mounted`` gets a description once it is live.

    ``backend`` is ``mount_backend()`` unless a test drives the other one; ``stop`` ends a
    WinFsp mount (a FUSE mount ends when it is unmounted).
    """
    backend = backend or mount_backend()
    if backend == "fuse":
        mountpoint = check_mountpoint(request.mountpoint)
        if request.network:
            raise MountError("--network is for Windows drive letters (WinFsp); a FUSE mount "
                             "is always a local directory")
        if request.allow_other and not _allow_other_permitted():
            raise MountError("--allow-other needs 'user_allow_other' in /etc/fuse.conf "
                             "(ask your administrator)")
    else:
        # WinFsp checks the target itself: a free letter, or a folder that does not exist.
        if (request.target or str(request.mountpoint)).strip() == "*":
            # `procorefs status Z:` and `unmount Z:` find the mount by the letter the user
            # sees, so "*" becomes that letter before the record and status are named.
            letter = _free_drive_letter()
            request = dataclasses.replace(request, target=letter, mountpoint=Path(letter))
        mountpoint = request.mountpoint
        if request.allow_other:
            raise MountError("--allow-other is for FUSE mounts; a WinFsp drive is the "
                             "mounting user's")
    from procorefs.api.client import ProcoreClient
    from procorefs.api.errors import ApiError
    from procorefs.core.fs import ProcoreFS

    settings.prepare_dirs()
    record = _record_path(settings, mountpoint)
    # The sign-in probe does not retry: offline, the mount starts at once from its cache
    # (the client's own retries would hold it for half a minute per call).
    with ProcoreClient.from_settings(dataclasses.replace(settings, max_retries=0)) as probe:
        online = _check_signed_in(probe)
    with ProcoreClient.from_settings(settings) as client:
        try:
            layout = resolve_layout(client, settings)
        except ApiError as exc:
            raise MountError(f"cannot find what to mount: {exc}") from None
        fs = ProcoreFS(client, core_config(settings, request, layout, backend))
        if not online:
            fs.metadata.note_offline()
        what = describe(layout)

        def mounted() -> None:
            try:
                _write_record(record, mountpoint)
            except OSError as exc:
                # Only `procorefs unmount` waiting for this process needs it: not worth
                # failing a mount that is up.
                log.warning("cannot record the mount in %s: %s", record, exc.strerror)
            log.info("mounted %s at %s", what, mountpoint)
            if on_mounted is not None:
                on_mounted(what)

        fs.start()
        publisher = StatusPublisher(fs, status_path(settings, mountpoint),
                                    _retry_path(settings, mountpoint), mountpoint)
        publisher.start()
        try:
            _check_root(fs, what)
            if backend == "fuse":
                _serve_fuse(fs, settings, request, mountpoint, mounted)
            else:
                _serve_winfsp(fs, request, volume_name(client, layout, online), mounted,
                              stop or threading.Event())
        finally:
            # Unmounted (or failed): send what is queued while the status shows progress.
            left: list[str] | None = None
            try:
                left = fs.drain(request.unmount_wait)
            finally:
                publisher.stop(left=left)
                with contextlib.suppress(FileNotFoundError):
                    record.unlink()
                fs.close(drain=0)


def _serve_fuse(fs: ProcoreFS, settings: Settings, request: MountRequest, mountpoint: Path,
                mounted: Callable[[], None]) -> None:
    from procorefs.adapters.fuse.library import FuseUnavailable
    from procorefs.adapters.fuse.runner import MountFailed, MountOptions, run_mount

    try:
        run_mount(fs, str(mountpoint), MountOptions(allow_other=request.allow_other,
                                                   debug=request.debug),
                  on_mounted=mounted)
    except FuseUnavailable as exc:
        raise MountError(str(exc)) from None
    except MountFailed:
        raise MountError(f"libfuse could not mount {mountpoint} (its message is above; "
                         f"the log is {log_path(settings, mountpoint)})") from None


def _free_drive_letter() -> str:
    from procorefs.adapters.winfsp.mountpoint import MountTargetError
    from procorefs.adapters.winfsp.runner import free_drive_letter

    try:
        return free_drive_letter()
    except MountTargetError as exc:
        raise MountError(str(exc)) from None


def _serve_winfsp(fs: ProcoreFS, request: MountRequest, name: str,
                  mounted: Callable[[], None], stop: threading.Event) -> None:
    from procorefs.adapters.winfsp.mountpoint import MountTargetError
    from procorefs.adapters.winfsp.runner import WinMountOptions, run_mount

    target = request.target or str(request.mountpoint)
    options = WinMountOptions(name=name, network=request.network, debug=request.debug,
                              stop=stop)
    try:
        run_mount(fs, target, options, on_mounted=lambda _where: mounted())
    except MountTargetError as exc:
        raise MountError(str(exc)) from None
    except ImportError as exc:
        raise MountError(f"WinFsp or winfspy is missing ({exc}); install WinFsp from "
                         "winfsp.dev and `pip install winfspy`") from None


def volume_name(client: ProcoreClient, layout: Layout, online: bool) -> str:
    """What the drive's label shows: the project's or the company's name."""
    from procorefs.api.errors import ApiError

    if online and layout.company_id is not None:
        with contextlib.suppress(ApiError):
            if layout.mode == "project":
                for project in client.projects(layout.company_id):
                    if project.id == layout.project_id:
                        return project.name
            else:
                for company in client.companies():
                    if company.id == layout.company_id:
                        return company.name
    return "Documents" if layout.mode != "all" else "Procore"


class StatusPublisher:
    """The running mount's status for ``procorefs status``, and the door for ``queue retry``.

    A thread rewrites the status file atomically: every ``STATUS_BUSY_PERIOD`` while commits
    are queued; when idle, as soon as the queue changes (a close) or every
    ``STATUS_IDLE_PERIOD``. A retry request file (its content is a
    token) is answered with ``fs.retry_failed()`` and the token in the next status.
    """

    def __init__(self, fs: ProcoreFS, path: Path, retry_path: Path, mountpoint: Path) -> None:
        self._fs = fs
        self._path = path
        self._retry_path = retry_path
        self._mountpoint = mountpoint
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procorefs-status",
                                        daemon=True)
        self._answer: dict[str, Any] | None = None

    def start(self) -> None:
        ensure_private_dir(self._path.parent)
        with contextlib.suppress(FileNotFoundError):
            self._retry_path.unlink()
        self._thread.start()

    def stop(self, *, left: list[str] | None) -> None:
        self._stop.set()
        self._thread.join(2)
        try:
            self._write(live=False, stopped=True, left=left or [])
        except OSError as exc:
            log.debug("cannot write the final status: %s", exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                self._answer_retry()
                self._fs.persist()
                data = self._write()
                busy = bool(data["waiting"] or data["uploading"] or data["deletes_pending"])
            except Exception as exc:  # the status must never take the mount down
                log.debug("status not written: %s", exc)
            if self._stop.wait(STATUS_BUSY_PERIOD):
                return
            if not busy:
                # Idle: refresh at once when a close queues something, else now and then.
                self._fs.wait_for_change(STATUS_IDLE_PERIOD - STATUS_BUSY_PERIOD)

    def _answer_retry(self) -> None:
        try:
            token = self._retry_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return
        with contextlib.suppress(FileNotFoundError):
            self._retry_path.unlink()
        count = self._fs.retry_failed()
        log.info("queue retry: %d failed change(s) queued again", count)
        self._answer = {"token": token, "count": count}

    def _write(self, *, live: bool = True, **extra: Any) -> dict[str, Any]:
        data = self._fs.status(live=live)
        data.update(mountpoint=str(self._mountpoint), pid=os.getpid(), updated=time.time(),
                    stopped=False, retry=self._answer)
        data.update(extra)
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self._path)
        return data


def read_status(settings: Settings, mountpoint: Path) -> dict[str, Any]:
    """The last status a mount published (``MountError`` when there is none)."""
    path = status_path(settings, normalize_mountpoint(mountpoint))
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MountError(f"no procorefs mount is running at {mountpoint}") from None
    except (OSError, ValueError) as exc:
        raise MountError(f"cannot read the status of {mountpoint}: {exc}") from None
    pid = data.get("pid")
    if not data.get("stopped") and isinstance(pid, int) and not _alive(pid):
        data["stopped"] = True
        data["died"] = True
    return data


def running_mounts(settings: Settings) -> list[Path]:
    """Mountpoints with a live mount process (from the records in the state directory)."""
    out: list[Path] = []
    folder = settings.state_dir / "mounts"
    for record in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if record.name.endswith(".status.json"):
            continue
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            pid, mountpoint = int(data["pid"]), Path(data["mountpoint"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(pid):
            out.append(mountpoint)
    return out


def request_retry(settings: Settings, mountpoint: Path,
                  timeout: float = RETRY_ANSWER_WAIT) -> int:
    """Ask the running mount to retry its failed commits; answers how many it queued."""
    mountpoint = normalize_mountpoint(mountpoint)
    status = read_status(settings, mountpoint)
    if status.get("stopped"):
        raise MountError(f"the mount at {mountpoint} is not running")
    token = secrets.token_hex(8)
    path = _retry_path(settings, mountpoint)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(token, encoding="utf-8")
    os.replace(tmp, path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = read_status(settings, mountpoint).get("retry")
        if isinstance(answer, dict) and answer.get("token") == token:
            return int(answer.get("count", 0))
        time.sleep(_POLL)
    raise MountError(f"the mount at {mountpoint} did not answer within {timeout:.0f} s")


def _check_signed_in(client: ProcoreClient) -> bool:
    """False when Procore cannot be reached (the mount then starts from its cache)."""
    from procorefs.api.errors import ApiError, NetworkError, Unauthorized

    try:
        client.me()
    except Unauthorized as exc:
        raise MountError(f"not signed in to Procore ({exc.message}); run `procorefs login` "
                         "or set PROCOREFS_ACCESS_TOKEN") from None
    except NetworkError as exc:
        # The core can still serve what it cached; it says so itself when asked for more.
        log.warning("Procore cannot be reached (%s); mounting with what is cached", exc)
        return False
    except ApiError as exc:
        raise MountError(f"Procore refused the sign-in check: {exc}") from None
    return True


def _check_root(fs: ProcoreFS, what: str) -> None:
    """Open the root before mounting: a wrong id must fail here, not as an unreadable mount."""
    from procorefs.errors import FsError, FsOffline

    try:
        fs.getattr("/")
    except FsOffline as exc:
        log.warning("Procore cannot be reached (%s); mounting with what is cached", exc.strerror)
    except FsError as exc:
        raise MountError(f"cannot open {what}: {exc.strerror}") from None


def _write_record(path: Path, mountpoint: Path) -> None:
    ensure_private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "mountpoint": str(mountpoint),
                               "started": time.time()}), encoding="utf-8")
    os.replace(tmp, path)


def start_background(settings: Settings, mountpoint: Path, child_argv: Sequence[str], *,
                     timeout: float = READY_TIMEOUT,
                     env: dict[str, str] | None = None) -> int:
    """Start ``child_argv`` (a foreground mount) detached; return its pid once it is mounted.

    If the child dies first, its last words (stderr) become the ``MountError``.
    """
    mountpoint = check_mountpoint(mountpoint)
    settings.prepare_dirs()
    err_path = _stderr_path(settings, mountpoint)
    ensure_private_dir(err_path.parent)
    with open(err_path, "wb") as err:
        child = subprocess.Popen(list(child_argv), stdin=subprocess.DEVNULL, stdout=err,
                                 stderr=err, start_new_session=True, env=env)
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mountpoint):
        code = child.poll()
        if code is not None:
            raise MountError(_child_failure(err_path, code))
        if time.monotonic() > deadline:
            child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
            raise MountError(f"the mount did not become ready within {timeout:.0f} s; "
                             f"see {log_path(settings, mountpoint)}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(_POLL)
    # The child outlives us on purpose; tell Popen not to warn about it.
    child.returncode = 0
    return child.pid


def _child_failure(err_path: Path, code: int) -> str:
    try:
        lines = err_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    words = [line.strip() for line in lines
             if line.strip() and not _HARMLESS_STDERR.search(line)]
    if words:
        last = words[-1]
        return last.removeprefix("procorefs: ")
    return f"the mount process exited with status {code} before the mount was ready"


# --- unmounting -------------------------------------------------------------------------------

def unmount_command(mountpoint: Path, *, lazy: bool = False) -> list[str]:
    if sys.platform == "darwin":
        return ["umount", *(["-f"] if lazy else []), str(mountpoint)]
    tool = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount3"
    return [tool, "-u", *(["-z"] if lazy else []), str(mountpoint)]


def unmount(settings: Settings, path: Path, *, lazy: bool = False,
            wait: float = UNMOUNT_WAIT + DRAIN_WAIT,
            progress: Callable[[str], None] | None = None) -> list[str]:
    """Unmount a procorefs (FUSE) mount and wait for its process to finish sending what is
    queued; answers what stays queued for the next mount (``progress`` hears about waits)."""
    mountpoint = normalize_mountpoint(path)
    fstype = _fuse_type(mountpoint)
    if sys.platform.startswith("linux"):
        if fstype is None:
            raise MountError(f"{mountpoint} is not mounted")
        if not fstype.startswith("fuse"):
            raise MountError(f"{mountpoint} is not a procorefs mount (it is {fstype})")
    elif not is_mounted(mountpoint):
        raise MountError(f"{mountpoint} is not mounted")
    result = subprocess.run(unmount_command(mountpoint, lazy=lazy), capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip()
        if "busy" in message.lower():
            raise MountError(f"{mountpoint} is busy: a program still has a file or folder "
                             "open in it; close it, or use --lazy to detach now")
        raise MountError(f"cannot unmount {mountpoint}: {message}")
    _wait_for_mount_process(settings, mountpoint, wait, progress)
    with contextlib.suppress(MountError):
        final = read_status(settings, mountpoint)
        left = final.get("left")
        if final.get("stopped") and isinstance(left, list):
            return [str(x) for x in left]
    return []


def _wait_for_mount_process(settings: Settings, mountpoint: Path, wait: float,
                            progress: Callable[[str], None] | None = None) -> None:
    record = _record_path(settings, mountpoint)
    try:
        pid = int(json.loads(record.read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    deadline = time.monotonic() + wait
    told = 0.0
    while _alive(pid):
        if time.monotonic() > deadline:
            log.warning("the mount process %d is still finishing; its log is %s", pid,
                        log_path(settings, mountpoint))
            return
        if progress is not None and time.monotonic() - told > 2.0:
            with contextlib.suppress(MountError):
                status = read_status(settings, mountpoint)
                queued = len(status.get("waiting", [])) + len(status.get("uploading", [])) \
                    + int(status.get("deletes_pending", 0))
                if queued:
                    progress(f"waiting for {queued} queued change(s) to reach Procore ...")
                    told = time.monotonic()
        time.sleep(_POLL)


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as gone: ours is reaped here; another parent's (a foreground mount
    # started by a shell or a test runner that has not waited yet) is read from /proc.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return not _is_zombie(pid)


def _alive_windows(pid: int) -> bool:
    """Whether process ``pid`` still runs, asked without touching it (``os.kill`` would end it
    on Windows)."""
    if sys.platform != "win32":
        raise OSError("a Windows process handle exists only on Windows")
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.GetExitCodeProcess.argtypes = [wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD)]
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    query_limited_information, access_denied, still_active = 0x1000, 5, 259
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        # Another user's process exists but cannot be opened; a gone one cannot be found.
        return bool(ctypes.get_last_error() == access_denied)
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        # A process that exited with 259 itself would read as running: none of ours does.
        return bool(code.value == still_active)
    finally:
        kernel32.CloseHandle(handle)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat_file:
            fields = stat_file.read()
    except OSError:
        return False  # no /proc (macOS): only our own children can be told apart
    # The name in parentheses may hold spaces and parentheses: the state follows the last ')'.
    return fields[fields.rfind(")") + 2:][:1] == "Z"
