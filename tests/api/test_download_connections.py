"""Ranged reads keep their storage connection: a read that stops at the last wanted byte must
not throw the connection away (found by the bench's profile of cold reads: every 4 MiB range
of a sequential read opened a new connection, which on real storage is a TLS handshake)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import MiB, World, write_file


def test_consecutive_ranged_reads_reuse_one_connection(world: World, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_file(tmp_path / "seq.bin", 3 * MiB + 5, seed=9)
    data = src.read_bytes()
    with world.connect() as client:
        uuid = client.upload(world.project, src, filename="seq.bin")
        version = client.create_file(world.project, "seq.bin", None, uuid).current_version
        assert version is not None
        assert client.read_range(version, 0, 10) == data[:10]  # resolves, opens storage

        opened: list[Any] = []
        real = socket.create_connection

        def counting(*args: Any, **kwargs: Any) -> socket.socket:
            opened.append(args[0] if args else kwargs.get("address"))
            return real(*args, **kwargs)

        monkeypatch.setattr(socket, "create_connection", counting)
        step = 512 * 1024
        for offset in range(0, len(data), step):
            assert client.read_range(version, offset, step) == data[offset:offset + step]
        assert opened == []
