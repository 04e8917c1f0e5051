"""Suite-wide rules: a test that logs an unexpected warning or error fails.

Mark a test ``@pytest.mark.allow_log("regex", ...)`` when a logged warning is the point of it
(an offline mount that says so, say); any other WARNING or worse record fails the test.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.support.emulator"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_log(*patterns): warnings/errors matching these regexes are expected")


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    patterns: list[str] = []
    for marker in request.node.iter_markers("allow_log"):
        patterns.extend(marker.args)
    unexpected = []
    for when in ("setup", "call", "teardown"):
        for record in caplog.get_records(when):
            if record.levelno < logging.WARNING:
                continue
            text = record.getMessage()
            if any(re.search(p, text) for p in patterns):
                continue
            unexpected.append(f"{record.levelname} {record.name}: {text}")
    if unexpected:
        pytest.fail("unexpected log records:\n  " + "\n  ".join(unexpected), pytrace=False)
