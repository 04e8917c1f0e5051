"""``procorefs mount`` and ``procorefs unmount`` (and, through ``procorefs.cli.status``,
``procorefs status`` and ``procorefs queue retry``).

``mount`` runs in the foreground with ``--foreground``; otherwise it starts the same command
with ``--foreground`` as a detached process and returns once the mount is ready, so the two
paths share every line of mounting code. The child's command line is rebuilt from the parsed
flags (never from ``sys.argv``), and secrets reach it only through the environment or the
keyring, as they reached this process.

``procorefs.app`` (and with it the core and libfuse) is imported only when a command runs, so
that every other command keeps working on a machine where mounting cannot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procorefs.cli import UserError
from procorefs.config import ConfigError, Settings, add_connection_arguments, settings_from_args

if TYPE_CHECKING:
    from procorefs import app


def register(subparsers: Any) -> None:
    mount = subparsers.add_parser(
        "mount", help="mount Procore Documents at a directory",
        description="Mount Procore Documents: one project (--project), a company's documents "
                    "and projects (--company), or every company you can see (neither).")
    mount.add_argument("mountpoint", type=Path,
                       help="an existing, empty directory; on Windows a drive letter (P:), "
                            "* for the first free one from Z: down, or a folder that does not "
                            "exist yet")
    mount.add_argument("-f", "--foreground", action="store_true",
                       help="stay in the foreground (Ctrl-C unmounts)")
    mount.add_argument("--cache-dir", type=Path, default=None,
                       help="where cached metadata and content live "
                            "(default: a per-server folder in the user cache directory)")
    mount.add_argument("--ttl", type=_positive_float, default=None, metavar="SECONDS",
                       help="how long listings are trusted before asking Procore again; "
                            "changes made by others show up within about this time")
    mount.add_argument("--poll-budget", type=_non_negative_int, default=None, metavar="N",
                       help="at most N change-poll requests per hour (0: never poll)")
    mount.add_argument("--allow-other", action="store_true",
                       help="let other local users read the mount (needs user_allow_other "
                            "in /etc/fuse.conf); by default only you can enter it")
    mount.add_argument("--network", action="store_true",
                       help="Windows: mount as a network drive, so Explorer makes no "
                            "thumbnails over it")
    mount.add_argument("--unmount-wait", type=_non_negative_float, default=None,
                       metavar="SECONDS",
                       help="at unmount, wait this long for queued saves to reach Procore "
                            "(default 60); what is left is sent at the next mount")
    names = mount.add_argument_group(
        "local-only names", "names that stay on this machine and never reach Procore "
        "(temp, lock and probe files; docs/semantics.md lists the default set)")
    names.add_argument("--local-only", action="append", default=None, metavar="GLOB",
                       help="also keep names matching GLOB local (repeatable; "
                            "config: local_only, env: PROCOREFS_LOCAL_ONLY=a,b)")
    names.add_argument("--not-local-only", action="append", default=None, metavar="GLOB",
                       help="upload names matching this default GLOB after all, e.g. '*.tmp' "
                            "(repeatable; config: not_local_only)")
    names.add_argument("--upload-dwg-backups", action="store_true", default=None,
                       help="upload AutoCAD's X.bak beside X.dwg (default: keep it local)")
    # Tuning for tests and special set-ups (docs/semantics.md explains both).
    mount.add_argument("--delete-grace", type=_non_negative_float, default=None,
                       help=argparse.SUPPRESS)
    mount.add_argument("--commit-debounce", type=_non_negative_float, default=None,
                       help=argparse.SUPPRESS)
    add_connection_arguments(mount)
    mount.set_defaults(func=_mount, _parser=mount)

    unmount = subparsers.add_parser("unmount", aliases=["umount"],
                                    help="unmount a procorefs mount")
    unmount.add_argument("mountpoint", type=Path)
    unmount.add_argument("--lazy", action="store_true",
                         help="detach now even if busy; finish when the last file closes")
    unmount.add_argument("--config", dest="config_file", type=Path, default=None,
                         help=argparse.SUPPRESS)
    unmount.set_defaults(func=_unmount)

    from procorefs.cli import status
    status.register(subparsers)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return settings_from_args(args)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _request(args: argparse.Namespace) -> app.MountRequest:
    from procorefs import app
    typed = str(args.mountpoint)
    drive = app.mount_backend() == "winfsp" and app.is_drive_target(typed)
    return app.MountRequest(
        # A drive letter is no path: keep it as typed (upper case) for the log and status.
        mountpoint=Path(typed.strip().upper()) if drive else app.normalize_mountpoint(typed),
        target=typed.strip(), network=args.network,
        cache_dir=args.cache_dir.expanduser().absolute() if args.cache_dir else None,
        ttl=args.ttl, poll_budget=args.poll_budget, allow_other=args.allow_other,
        debug=args.verbose >= 3,
        unmount_wait=app.DRAIN_WAIT if args.unmount_wait is None else args.unmount_wait,
        delete_grace=args.delete_grace, commit_debounce=args.commit_debounce)


def _mount(args: argparse.Namespace) -> int:
    from procorefs import app
    settings = _settings(args)
    request = _request(args)
    try:
        app.local_name_policy(settings)  # a bad pattern fails here, not in a background child
        # WinFsp mounts serve in this console (or under the WinFsp launcher), as FUSE ones
        # do with --foreground.
        if args.foreground or app.mount_backend() == "winfsp":
            app.setup_mount_logging(settings, request.mountpoint, args.verbose)

            def announce(what: str) -> None:
                print(f"procorefs: mounted {what} at {request.mountpoint}; press Ctrl-C or run "
                      f"`procorefs unmount {request.mountpoint}` to unmount",
                      file=sys.stderr, flush=True)

            app.mount_foreground(settings, request, on_mounted=announce)
            return 0
        pid = app.start_background(settings, request.mountpoint, child_argv(args))
    except app.MountError as exc:
        raise UserError(str(exc)) from None
    print(f"mounted at {request.mountpoint} (process {pid}, log "
          f"{app.log_path(settings, request.mountpoint)})")
    return 0


def child_argv(args: argparse.Namespace) -> list[str]:
    """The command line of the foreground mount a background ``mount`` starts."""
    from procorefs import app
    parser: argparse.ArgumentParser = args._parser
    argv = [sys.executable, "-m", "procorefs", *(["-v"] * args.verbose), "mount"]
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "foreground"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False or value == action.default:
            continue
        flag = next((s for s in action.option_strings if s.startswith("--")),
                    action.option_strings[0])
        if action.nargs == 0:
            argv.append(flag)
        elif isinstance(value, list):  # a repeatable flag: once per value
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    argv += ["--foreground", "--", str(app.normalize_mountpoint(args.mountpoint))]
    return argv


def _unmount(args: argparse.Namespace) -> int:
    from procorefs import app
    settings = _settings(args)

    def tell(message: str) -> None:
        print(f"procorefs: {message}", file=sys.stderr, flush=True)

    try:
        left = app.unmount(settings, args.mountpoint, lazy=args.lazy, progress=tell)
    except app.MountError as exc:
        raise UserError(str(exc)) from None
    if left:
        tell(f"unmounted, but {len(left)} change(s) are not in Procore yet; they stay queued "
             "and are sent the next time this is mounted: " + "; ".join(left[:10])
             + (" ..." if len(left) > 10 else ""))
    return 0
