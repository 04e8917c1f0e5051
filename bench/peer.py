"""The peer: rclone's VFS mount (``--vfs-cache-mode full``) of ``rclone serve webdav``.

The served directory holds the same bytes as the emulator's project (written by the runner
from the same seed, or downloaded through the client), on loopback. With ``--latency-ms``
the WebDAV traffic goes through ``DelayRelay``, a TCP relay that holds the first bytes of
every request for the same delay the emulator adds to each of its requests, so both sides
pay one added round trip per request.

rclone is Debian's package (``apt-get install rclone``); ``ensure_rclone`` installs it when
the bench runs as root and apt is there, and otherwise says how.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench.procs import BenchError, _terminate, _wait, stop_mount

_SERVING = re.compile(r"started on (http://127\.0\.0\.1:\d+/)")
# Upload after this long once a file is closed (rclone's default is 5 s, a policy choice that
# would dominate every "until committed" figure; procorefs commits right after close too).
WRITE_BACK = "100ms"


def ensure_rclone() -> str | None:
    """The rclone binary, installing Debian's package if possible; None with a hint printed."""
    found = shutil.which("rclone")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: rclone is missing; installing Debian's package (apt-get install rclone)",
              flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "rclone"], check=False,
                       stdout=subprocess.DEVNULL)
        found = shutil.which("rclone")
        if found:
            return found
    print("bench: rclone is not installed, so the peer columns say 'not available'. "
          "Install it with: sudo apt-get install rclone", flush=True)
    return None


class DelayRelay:
    """A loopback TCP relay adding ``delay`` seconds before each request it forwards."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="bench-delay-relay")
        self._server: asyncio.Server | None = None

    def start(self) -> DelayRelay:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result()
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        if self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.upstream_port)
        except OSError:
            writer.close()
            return
        # A request starts when the client speaks after the server has answered (or first).
        state = {"answered": True}

        async def client_to_server() -> None:
            while data := await reader.read(1 << 18):
                if state["answered"]:
                    state["answered"] = False
                    await asyncio.sleep(self.delay)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            while data := await up_reader.read(1 << 18):
                state["answered"] = True
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(client_to_server(), server_to_client())
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()


class RcloneServe:
    """``rclone serve webdav`` of a local directory on a free loopback port."""

    def __init__(self, rclone: str, root: Path, workdir: Path) -> None:
        self.rclone = rclone
        self.root = root
        self.log = workdir / "rclone-serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> RcloneServe:
        env = {**os.environ, "RCLONE_CONFIG": str(self.log.parent / "rclone.conf")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [self.rclone, "serve", "webdav", "--addr", "127.0.0.1:0", str(self.root)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

        def ready() -> bool:
            match = _SERVING.search(self.log.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
            return match is not None

        _wait(ready, 30, "rclone serve webdav", alive=self.process, log=self.log)
        return self

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stop(self) -> None:
        _terminate(self.process)
        self.process = None


class RcloneMount:
    """A fresh ``rclone mount --vfs-cache-mode full`` (empty VFS cache) of a WebDAV URL."""

    def __init__(self, rclone: str, url: str, workdir: Path) -> None:
        self.rclone = rclone
        self.url = url
        self.workdir = workdir
        self.path = workdir / "mnt"
        self.log = workdir / "rclone-mount.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> RcloneMount:
        self.path.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "RCLONE_CONFIG": str(self.workdir / "rclone.conf"),
               "RCLONE_CONFIG_PEER_TYPE": "webdav", "RCLONE_CONFIG_PEER_URL": self.url,
               "RCLONE_CONFIG_PEER_VENDOR": "rclone"}
        argv = [self.rclone, "mount", "peer:", str(self.path), "--vfs-cache-mode", "full",
                "--cache-dir", str(self.workdir / "cache"), "--vfs-write-back", WRITE_BACK]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env)
        _wait(lambda: os.path.ismount(self.path), 60, "the rclone mount",
              alive=self.process, log=self.log)
        return self

    def stop(self) -> None:
        stop_mount(self.path, self.process)
        self.process = None

    def __enter__(self) -> RcloneMount:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_local(paths: dict[Path, int], timeout: float, interval: float = 0.02) -> float:
    """Wait until each served file has its size (rclone has uploaded it); the wall-clock
    time (``time.time()``) it was seen."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.time()
        if all(_size(p) == size for p, size in paths.items()):
            return now
        if time.monotonic() > deadline:
            missing = [str(p) for p, s in paths.items() if _size(p) != s]
            raise BenchError(f"rclone did not upload {len(missing)} of {len(paths)} files "
                             f"within {timeout:.0f} s, e.g. {missing[:3]}")
        time.sleep(interval)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
