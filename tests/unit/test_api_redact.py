"""No token reaches a log line or an exception message."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from procorefs.api.errors import ApiError
from procorefs.api.redact import install_log_redaction, redact, register_secret, safe_url
from procorefs.api.tokens import TokenSet
from tests.api.fakes import jsonr, make_client


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret("Zq9-opaque-token-value")
    assert redact("x Zq9-opaque-token-value y") == "x *** y"
    assert "Zq9" not in redact("...Zq9-opaque-token-value...")


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer abc.def-ghi", "abc.def"),
    ("GET https://s3/x?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA/2025", "deadbeef"),
    ("GET https://s3/x?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA/2025", "AKIA"),
    ("form refresh_token=r1r2r3r4&client_secret=s1s2s3", "r1r2r3r4"),
    ("form refresh_token=r1r2r3r4&client_secret=s1s2s3", "s1s2s3"),
    ('{"access_token": "a1b2c3d4", "expires_in": 5400}', "a1b2c3d4"),
    ("GET /callback?code=c0de42&state=xyz", "c0de42"),
    ("url ...&sig=abcdef", "abcdef"),
])
def test_secret_shapes_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_harmless_text_is_left_alone() -> None:
    text = "HTTP 404 status_code=404 folder 12 not found (GET /rest/v1.0/folders/12)"
    assert redact(text) == text
    assert safe_url("https://h/p/a?sig=1&x=2") == "https://h/p/a"


def test_token_repr_hides_secrets() -> None:
    token = TokenSet(access_token="acc-123456", refresh_token="ref-123456",
                     client_secret="sec-123456")
    text = repr(token)
    assert "acc-123456" not in text and "ref-123456" not in text and "sec-" not in text


def test_log_filter_masks_httpx_request_lines(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "GET",
                                    "http://s/x?X-Amz-Signature=feedface", "200 OK")
    logging.getLogger("procorefs.api.client").warning("token %s", "Bearer abcdef123")
    text = caplog.text
    assert "feedface" not in text and "abcdef123" not in text
    caplog.clear()


def test_error_bodies_are_redacted_in_exceptions(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return jsonr(400, {"errors": "bad token Bearer leaked-token-1 here",
                           "message": "access_token=leaked-token-2"})

    with make_client(tmp_path, handler) as client, pytest.raises(ApiError) as info:
        client.me()
    message = str(info.value)
    assert "leaked-token" not in message and "bad token" in message
    assert "static-token-value" not in caplog.text
