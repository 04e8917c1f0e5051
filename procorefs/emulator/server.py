"""Assembles and runs the emulator: one process, one event loop, two origins.

The API origin serves OAuth (oauth.py), the REST routes (rest.py), uploads and the download
redirect (uploads.py, downloads.py) and, with ``--control``, the control API (control.py). The
storage origin (storage.py) is a separate port, as S3 is a separate host. State lives in a data
directory (``--data``, or a temporary one removed at exit): ``emulator.sqlite3`` and
``blobs/``. A data directory that was seeded before keeps its state across restarts unless a
reset is asked for. Binding is refused for anything but a loopback address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from procorefs.emulator import control, oauth, rest
from procorefs.emulator.blobs import BlobStore
from procorefs.emulator.context import EmulatorContext, EmulatorSettings
from procorefs.emulator.faults import Faults
from procorefs.emulator.ratelimit import RateLimiter, add_rate_limit_headers
from procorefs.emulator.storage import build_storage_app
from procorefs.emulator.store import Store
from procorefs.emulator.uploads import UploadRegistry, add_api_routes

DB_NAME = "emulator.sqlite3"
MAX_API_BODY = 16 * 1024 * 1024


class NotLoopback(ValueError):
    """The emulator only ever listens on the local machine."""


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback name or address; otherwise a one-line refusal."""
    if host == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise NotLoopback(f"refusing to listen on {host!r}: the emulator binds to loopback "
                          "only (127.0.0.1, ::1 or localhost)") from None
    if not address.is_loopback:
        raise NotLoopback(f"refusing to listen on {host}: the emulator binds to loopback only "
                          "(127.0.0.1, ::1 or localhost)")
    return host


@dataclass
class ServeOptions:
    settings: EmulatorSettings = field(default_factory=EmulatorSettings)
    data_dir: Path | None = None
    seed: str | None = None
    knobs: dict[str, Any] = field(default_factory=dict)
    reset: bool = False
    ready_file: Path | None = None
    out: TextIO = sys.stdout


def build_context(settings: EmulatorSettings, data_dir: Path) -> EmulatorContext:
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / DB_NAME
    blobs = BlobStore(data_dir / "blobs")
    store = Store(db_path)
    holder: list[EmulatorContext] = []
    uploads = UploadRegistry(db_path, blobs, clock=lambda: holder[0].now())
    ctx = EmulatorContext(settings, store, blobs, uploads, Faults(), RateLimiter(settings))
    holder.append(ctx)
    return ctx


def build_api_app(ctx: EmulatorContext) -> web.Application:
    app = web.Application(middlewares=ctx.middlewares("api"), client_max_size=MAX_API_BODY)
    app.on_response_prepare.append(add_rate_limit_headers)
    ctx.attach(app)
    oauth.add_routes(app, ctx)
    rest.add_routes(app, ctx)
    add_api_routes(app, ctx)
    if ctx.settings.control:
        control.add_routes(app, ctx)
    return app


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class EmulatorServer:
    """A running emulator: start(), then stop(); usable in-process by tests and benchmarks."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        check_loopback(options.settings.host)
        self._temp: Path | None = None
        if options.data_dir is None:
            self._temp = Path(tempfile.mkdtemp(prefix="procorefs-emulator-"))
        self.data_dir = options.data_dir or self._temp
        assert self.data_dir is not None
        self.ctx = build_context(options.settings, self.data_dir)
        self._runners: list[web.AppRunner] = []

    async def start(self) -> None:
        ctx = self.ctx
        opts = self.options
        if opts.reset or not ctx.store.seeded:
            await control.apply_seed(ctx, opts.seed or "demo", opts.knobs)
        else:
            ctx.seed_name = ctx.store.meta("seed") or "unknown"
        settings = ctx.settings
        api_port = await self._listen(build_api_app(ctx), settings.host, settings.port)
        storage_port = await self._listen(build_storage_app(ctx), settings.host,
                                          settings.storage_port)
        ctx.api_url = _url(settings.host, api_port)
        ctx.storage_url = _url(settings.host, storage_port)

    async def _listen(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        address = runner.addresses[0]
        return int(address[1])

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        self.ctx.uploads.close()
        self.ctx.store.close()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)

    def banner(self) -> str:
        ctx = self.ctx
        info = control.info(ctx)
        lines = ["procorefs emulator is running",
                 f"  API and OAuth:  {ctx.api_url}",
                 f"  storage:        {ctx.storage_url}",
                 f"  data:           {self.data_dir}"
                 + ("  (temporary, removed at exit)" if self._temp else ""),
                 f"  seed:           {ctx.seed_name}"]
        for app in info["apps"]:
            kind = "service app" if app["service_user_id"] else "demo app"
            lines.append(f"  {kind + ':':<15} client_id={app['client_id']} "
                         f"client_secret={app['client_secret']}")
            if app["redirect_uris"]:
                lines.append(f"  {'':<15} redirect URIs: {', '.join(app['redirect_uris'])}")
        demo = next((u for u in info["users"] if u["id"] == info["demo_user_id"]), None)
        if demo is not None:
            lines.append(f"  demo user:      {demo['name']} <{demo['login']}> (id {demo['id']})")
        for company in info["companies"]:
            projects = ", ".join(f"{p['id']} {p['name']}" for p in company["projects"])
            lines.append(f"  company:        {company['id']} {company['name']} "
                         f"(projects: {projects})")
        if ctx.settings.control:
            lines.append(f"  control API:    {ctx.api_url}/_emulator/info")
        lines.append("Press Ctrl+C to stop.")
        return "\n".join(lines)

    def write_ready_file(self, path: Path) -> None:
        payload = {"api_url": self.ctx.api_url, "storage_url": self.ctx.storage_url,
                   "pid": os.getpid(), "data_dir": str(self.data_dir)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(payload), "utf-8")
        os.replace(tmp, path)


async def _serve(options: ServeOptions) -> None:
    emulator = EmulatorServer(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await emulator.start()
        print(emulator.banner(), file=options.out, flush=True)
        if options.ready_file is not None:
            emulator.write_ready_file(options.ready_file)
        await stop.wait()
    finally:
        await emulator.stop()
        if options.ready_file is not None:
            with contextlib.suppress(OSError):
                options.ready_file.unlink()


def serve(options: ServeOptions) -> int:
    """Run until SIGINT or SIGTERM; the exit code for the command line."""
    check_loopback(options.settings.host)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(options))
    return 0
