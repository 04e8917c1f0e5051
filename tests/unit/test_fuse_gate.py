"""The mount tier's gate: skipped without FUSE on a laptop, failed without FUSE in CI."""

from __future__ import annotations

import shutil

import pytest

from tests.mount import gate


def test_fuse_is_usable_here_or_the_reason_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    reason = gate.fuse_unavailable()
    assert reason is not None and ("fusermount3" in reason or "/dev/fuse" in reason
                                   or "Linux" in reason)


def test_without_fuse_a_developer_run_skips() -> None:
    with pytest.raises(pytest.skip.Exception, match="no FUSE here: /dev/fuse is missing"):
        gate.gate("/dev/fuse is missing", {})


def test_without_fuse_a_ci_run_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI must run the mount tier"):
        gate.gate("/dev/fuse is missing", {"CI": "true"})


def test_with_fuse_nothing_happens() -> None:
    gate.gate(None, {"CI": "true"})
