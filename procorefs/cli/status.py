"""``procorefs status`` and ``procorefs queue retry``: what a running mount is sending to Procore.

Both read what the mount process publishes in the state directory (``procorefs.app``'s
``StatusPublisher``): no request reaches Procore, so ``status`` works offline and costs no
rate-limit budget. ``queue retry`` leaves a request the running mount answers within a
fraction of a second. The commands are registered by ``procorefs.cli.mount`` (they belong to
a mount's life), and ``procorefs.app`` is imported only when one runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from procorefs.cli import UserError
from procorefs.config import ConfigError, Settings, settings_from_args

BAR_WIDTH = 24


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="show what running mounts are saving to Procore",
        description="Files waiting to be saved, uploading (with progress and rate), failed "
                    "(with the reason) and conflict copies, plus the rate-limit budget.")
    status.add_argument("mountpoint", type=Path, nargs="?", default=None,
                        help="one mount (default: every running mount)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--config", dest="config_file", type=Path, default=None,
                        help=argparse.SUPPRESS)
    status.set_defaults(func=_status)

    queue = subparsers.add_parser("queue", help="act on a mount's queue of saves")
    actions = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    retry = actions.add_parser("retry", help="try failed saves again now")
    retry.add_argument("mountpoint", type=Path, nargs="?", default=None,
                       help="one mount (default: every running mount)")
    retry.add_argument("--config", dest="config_file", type=Path, default=None,
                       help=argparse.SUPPRESS)
    retry.set_defaults(func=_retry)


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return settings_from_args(args)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _mountpoints(args: argparse.Namespace, settings: Settings) -> list[Path]:
    from procorefs import app
    if args.mountpoint is not None:
        return [app.normalize_mountpoint(args.mountpoint)]
    found = app.running_mounts(settings)
    if not found:
        raise UserError("no procorefs mount is running")
    return found


def _status(args: argparse.Namespace) -> int:
    from procorefs import app
    settings = _settings(args)
    reports = []
    try:
        for mountpoint in _mountpoints(args, settings):
            reports.append(app.read_status(settings, mountpoint))
    except app.MountError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(reports[0] if args.mountpoint is not None else reports, indent=2))
        return 0
    print("\n\n".join(render(r) for r in reports))
    return 0


def _retry(args: argparse.Namespace) -> int:
    from procorefs import app
    settings = _settings(args)
    try:
        for mountpoint in _mountpoints(args, settings):
            count = app.request_retry(settings, mountpoint)
            print(f"{mountpoint}: {count} failed save(s) queued again")
    except app.MountError as exc:
        raise UserError(str(exc)) from None
    return 0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    fraction = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}%"


def render(status: dict[str, Any], now: float | None = None) -> str:
    """A status as the few lines a person reads."""
    now = time.time() if now is None else now
    lines = [str(status.get("mountpoint", "?"))]
    state = "stopped" if status.get("stopped") else (
        "offline (saves wait; reads come from the cache)" if status.get("offline")
        else "online")
    if status.get("died"):
        state = "the mount process is gone; the queue is sent at the next mount"
    lines[0] += f"  ({state})"
    waiting = status.get("waiting", [])
    uploading = status.get("uploading", [])
    failed = status.get("failed", [])
    if not (waiting or uploading or failed or status.get("deletes_pending")):
        lines.append("  everything is saved to Procore")
    if waiting:
        total = sum(int(w.get("size", 0)) for w in waiting)
        lines.append(f"  waiting:   {len(waiting)} file(s), {human_bytes(total)}")
        for w in waiting[:10]:
            lines.append(f"    {w.get('path') or w.get('name')}  {human_bytes(w.get('size', 0))}")
    for u in uploading:
        done, total = int(u.get("bytes_done", 0)), int(u.get("bytes_total", 0))
        rate = float(u.get("rate", 0.0))
        lines.append(f"  uploading: {u.get('path') or u.get('name')}  "
                     f"{progress_bar(done, total)}  {human_bytes(done)} of "
                     f"{human_bytes(total)}, {human_bytes(rate)}/s")
    for f in failed:
        lines.append(f"  failed:    {f.get('path') or f.get('name')}: {f.get('failure')} "
                     "(`procorefs queue retry` tries again)")
    if status.get("deletes_pending"):
        lines.append(f"  deletes:   {status['deletes_pending']} waiting for their grace period")
    for c in status.get("conflicts", []):
        lines.append(f"  conflict:  {c.get('path') or c.get('name')}: {c.get('reason')}; your "
                     f"version is saved as {c.get('conflict_name')!r}")
    left = status.get("left")
    if status.get("stopped") and left:
        lines.append(f"  still queued for the next mount: {len(left)}")
    budget = status.get("rate_limit")
    if isinstance(budget, dict) and budget.get("limit") is not None:
        reset = budget.get("reset")
        when = ""
        if isinstance(reset, int | float):
            when = f", resets in {max(0, int(reset - now)) // 60} min"
        lines.append(f"  rate limit: {budget.get('remaining')} of {budget.get('limit')} "
                     f"requests left{when}")
    counts = status.get("counts") or {}
    if counts:
        lines.append(f"  since mounted: {counts.get('committed', 0)} saved, "
                     f"{counts.get('unchanged', 0)} unchanged, "
                     f"{counts.get('conflict', 0)} conflicts, {counts.get('deleted', 0)} "
                     f"deleted, {human_bytes(counts.get('bytes', 0))} uploaded")
    return "\n".join(lines)
