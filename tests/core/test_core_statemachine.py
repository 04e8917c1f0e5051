"""A hypothesis state machine: mkdir/rename/unlink/rmdir/read/write/append on ProcoreFS
(against the emulator) and on a plain temporary directory must agree, step by step and in the
end with what Procore itself holds once the commit queue has run (deletes wait out their
grace period and commits their debounce, so the end state is checked after ``run_commits``).

Each example works in a fresh folder of the project, seeded with two files; names come from
a tiny alphabet (one with the '/' look-alike) so that collisions, replacements and moves into
each other happen often. Each step costs a few HTTP requests, so the example count is small.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from procorefs.api import ProcoreClient, Scope
from procorefs.core.fs import ProcoreFS
from procorefs.errors import FsError
from tests.core.conftest import CoreEnv

NAMES = ("a", "b", "c／d")
PATHS = [f"/{x}" for x in NAMES] + [f"/{x}/{y}" for x in NAMES for y in NAMES]
SEED_FILES = {"a": b"alpha " * 50, "c／d": b"slash-named content"}

paths = st.sampled_from(PATHS)
contents = st.sampled_from([b"", b"x", b"hello world", b"alpha " * 50])
_runs = itertools.count()


def _outcome(call, *args: object) -> object:  # type: ignore[no-untyped-def]
    try:
        return ("ok", call(*args))
    except OSError as exc:
        return ("err", exc.errno)


class CoreVsDirectory(RuleBasedStateMachine):
    env: ClassVar[CoreEnv]
    fs: ClassVar[ProcoreFS]
    check: ClassVar[ProcoreClient]

    def __init__(self) -> None:
        super().__init__()
        self.oracle = Path(tempfile.mkdtemp(prefix="oracle-"))
        self.base = f"/run-{next(_runs)}"
        self.fs.mkdir(self.base)
        folder = self.fs.getattr(self.base).remote_id
        for name, data in SEED_FILES.items():
            (self.oracle / name).write_bytes(data)
            self.env.remote("POST", "files", project_id=self.env.project_id, parent_id=folder,
                            name=name.replace("／", "/"), content_b64=_b64(data))
        self.fs.invalidate(self.base)

    def teardown(self) -> None:
        try:
            self.fs.run_commits()
            assert self._remote_tree(self.fs.getattr(self.base).remote_id) == self._oracle_tree()
        finally:
            shutil.rmtree(self.oracle, ignore_errors=True)

    # ----------------------------------------------------------------- helpers

    def _core(self, path: str) -> str:
        return self.base + path

    def _local(self, path: str) -> Path:
        return self.oracle / path.lstrip("/")

    def _oracle_tree(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for root, dirs, files in os.walk(self.oracle):
            rel = "/" + os.path.relpath(root, self.oracle).removeprefix(".").lstrip("/")
            for d in dirs:
                out[f"{rel.rstrip('/')}/{d}"] = "dir"
            for f in files:
                out[f"{rel.rstrip('/')}/{f}"] = (Path(root) / f).read_bytes()
        return out

    def _core_tree(self, path: str = "") -> dict[str, object]:
        out: dict[str, object] = {}
        for entry in self.fs.readdir(self._core(path or "/")):
            child = f"{path}/{entry.name}"
            if entry.stat.kind == "dir":
                out[child] = "dir"
                out.update(self._core_tree(child))
            else:
                out[child] = entry.stat.size
        return out

    def _remote_tree(self, folder_id: int | None, prefix: str = "") -> dict[str, object]:
        """What Procore holds, read with the plain client (no core cache involved)."""
        scope = Scope(self.env.company_id, self.env.project_id)
        assert folder_id is not None
        folder = self.check.folder(scope, folder_id)
        out: dict[str, object] = {}
        for sub in folder.folders:
            if not sub.is_deleted:
                path = f"{prefix}/{sub.name.replace('/', '／')}"
                out[path] = "dir"
                out.update(self._remote_tree(sub.id, path))
        for f in folder.files:
            if not f.is_deleted and f.current_version is not None:
                path = f"{prefix}/{f.name.replace('/', '／')}"
                out[path] = self.check.read_range(f.current_version, 0, f.size)
        return out

    # ------------------------------------------------------------------- rules

    @rule(path=paths)
    def mkdir(self, path: str) -> None:
        assert _outcome(self.fs.mkdir, self._core(path)) == \
            _outcome(os.mkdir, self._local(path))

    @rule(path=paths)
    def rmdir(self, path: str) -> None:
        assert _outcome(self.fs.rmdir, self._core(path)) == \
            _outcome(os.rmdir, self._local(path))

    @rule(path=paths)
    def unlink(self, path: str) -> None:
        assert _outcome(self.fs.unlink, self._core(path)) == \
            _outcome(os.unlink, self._local(path))

    @rule(old=paths, new=paths)
    def rename(self, old: str, new: str) -> None:
        assert _outcome(self.fs.rename, self._core(old), self._core(new)) == \
            _outcome(os.rename, self._local(old), self._local(new))

    @rule(path=paths)
    def read(self, path: str) -> None:
        expected = _outcome(lambda p: Path(p).read_bytes(), self._local(path))
        assert self._read_core(path) == expected

    def _read_core(self, path: str) -> object:
        try:
            handle = self.fs.open(self._core(path), os.O_RDONLY)
        except FsError as exc:
            return ("err", exc.errno)
        try:
            return ("ok", self.fs.read(handle, 0, 1 << 20))
        finally:
            self.fs.release(handle)

    @rule(path=paths, data=contents)
    def write(self, path: str, data: bytes) -> None:
        assert self._write_core(path, data, os.O_TRUNC) == \
            _outcome(lambda p: Path(p).write_bytes(data), self._local(path))

    @rule(path=paths, data=contents)
    def append(self, path: str, data: bytes) -> None:
        def local(p: Path) -> int:
            with open(p, "ab") as fh:
                return fh.write(data)
        assert self._write_core(path, data, os.O_APPEND) == _outcome(local, self._local(path))

    def _write_core(self, path: str, data: bytes, mode: int) -> object:
        try:
            handle = self.fs.create(self._core(path), os.O_WRONLY | os.O_CREAT | mode)
        except FsError as exc:
            return ("err", exc.errno)
        try:
            return ("ok", self.fs.write(handle, 0, data))
        finally:
            self.fs.flush(handle)
            self.fs.release(handle)

    @rule()
    def commit(self) -> None:
        self.fs.run_commits()

    @rule()
    def let_the_cache_expire(self) -> None:
        self.env.clock.advance(self.fs.config.metadata_ttl + 1)

    @invariant()
    def same_tree(self) -> None:
        oracle = {p: (len(v) if isinstance(v, bytes) else v)
                  for p, v in self._oracle_tree().items()}
        assert self._core_tree() == oracle


def _b64(data: bytes) -> str:
    import base64
    return base64.b64encode(data).decode()


def test_core_behaves_like_a_directory(core_env_empty: CoreEnv) -> None:
    env = core_env_empty
    fs = env.fs()

    class Machine(CoreVsDirectory):
        pass

    Machine.env, Machine.fs, Machine.check = env, fs, env.client()
    run_state_machine_as_test(Machine, settings=settings(
        max_examples=12, stateful_step_count=12, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
