"""Contract tests: OAuth on the API origin (procore-api.md §1.2-§1.4, §6.3 Doorkeeper shapes)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from procorefs.emulator.seed import (
    COMPANY_ID,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_USER_ID,
    OTHER_USER_ID,
    OTHER_USER_LOGIN,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    SERVICE_USER_ID,
)
from tests.emulator.test_rest_helpers import headers
from tests.support.emulator import Emulator

REDIRECT = "http://localhost:8765/callback"
OOB = "urn:ietf:wg:oauth:2.0:oob"
WWW_AUTH = ('Bearer realm="Doorkeeper", error="invalid_token", '
            'error_description="The access token is invalid"')


def _client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.api_url, timeout=30.0)


def _approve(client: httpx.Client, redirect_uri: str = REDIRECT, state: str | None = "xyz",
             login: str | None = None, decision: str = "approve") -> httpx.Response:
    params = {"response_type": "code", "client_id": DEMO_CLIENT_ID,
              "redirect_uri": redirect_uri}
    if state is not None:
        params["state"] = state
    if login is not None:
        params["login"] = login
    page = client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    assert "text/html" in page.headers["Content-Type"]
    assert 'action="/oauth/authorize"' in page.text
    form = {**params, "decision": decision}
    return client.post("/oauth/authorize", data=form)


def _code(client: httpx.Client, **kw: Any) -> str:
    answer = _approve(client, **kw)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    return query["code"][0]


def _exchange(client: httpx.Client, code: str, redirect_uri: str = REDIRECT) -> httpx.Response:
    return client.post("/oauth/token", json={
        "grant_type": "authorization_code", "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET, "code": code, "redirect_uri": redirect_uri})


def _refresh(client: httpx.Client, refresh_token: str,
             secret: str = DEMO_CLIENT_SECRET) -> httpx.Response:
    return client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": DEMO_CLIENT_ID, "client_secret": secret,
        "refresh_token": refresh_token, "redirect_uri": REDIRECT})


def _me(emulator: Emulator, token: str) -> httpx.Response:
    return httpx.get(f"{emulator.api_url}/rest/v1.0/me", headers=headers(token, None))


def test_authorization_code_flow_redirects_with_code_and_state(emulator: Emulator) -> None:
    with _client(emulator) as client:
        answer = _approve(client)
        assert answer.status_code == 302
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
        query = parse_qs(location.query)
        assert query["state"] == ["xyz"]
        token = _exchange(client, query["code"][0])
    assert token.status_code == 200, token.text
    body = token.json()
    assert list(body) == ["access_token", "token_type", "expires_in", "refresh_token",
                          "created_at"]
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 5400
    assert token.headers["Cache-Control"] == "no-store"
    me = _me(emulator, body["access_token"])
    assert me.status_code == 200
    assert me.json()["id"] == DEMO_USER_ID


def test_authorize_as_another_seeded_user(emulator: Emulator) -> None:
    with _client(emulator) as client:
        body = _exchange(client, _code(client, login=OTHER_USER_LOGIN)).json()
    assert _me(emulator, body["access_token"]).json()["id"] == OTHER_USER_ID


@pytest.mark.parametrize("encoding", ["json", "form", "multipart", "basic"])
def test_token_endpoint_accepts_every_documented_encoding(emulator: Emulator,
                                                          encoding: str) -> None:
    with _client(emulator) as client:
        code = _code(client)
        fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                  "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
        if encoding == "json":
            answer = client.post("/oauth/token", json=fields)
        elif encoding == "form":
            answer = client.post("/oauth/token", data=fields)
        elif encoding == "multipart":
            answer = client.post("/oauth/token",
                                 files={k: (None, v) for k, v in fields.items()})
        else:
            del fields["client_id"], fields["client_secret"]
            basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
            answer = client.post("/oauth/token", data=fields,
                                 headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200, answer.text
    assert "refresh_token" in answer.json()


def test_authorization_code_is_single_use(emulator: Emulator) -> None:
    with _client(emulator) as client:
        code = _code(client)
        assert _exchange(client, code).status_code == 200
        again = _exchange(client, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert "error_description" in again.json()


def test_authorization_code_expires_after_ten_minutes(emulator: Emulator) -> None:
    with _client(emulator) as client:
        code = _code(client)
        emulator.advance_clock(601)
        answer = _exchange(client, code)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_code_exchange_with_another_redirect_uri_is_refused(emulator: Emulator) -> None:
    with _client(emulator) as client:
        code = _code(client)
        answer = _exchange(client, code, redirect_uri="http://127.0.0.1:8765/callback")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_authorize_refuses_unregistered_redirect_uri_without_redirecting(
        emulator: Emulator) -> None:
    with _client(emulator) as client:
        answer = client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": DEMO_CLIENT_ID,
            "redirect_uri": "http://localhost:9999/evil"})
        unknown = client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT})
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "redirect uri" in answer.text
    assert unknown.status_code == 401


def test_denied_authorization_redirects_with_access_denied(emulator: Emulator) -> None:
    with _client(emulator) as client:
        answer = _approve(client, decision="deny", state="s1")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s1"]


def test_out_of_band_code_is_shown_on_the_native_page(emulator: Emulator) -> None:
    with _client(emulator) as client:
        answer = _approve(client, redirect_uri=OOB, state=None)
        assert answer.status_code == 302
        location = answer.headers["Location"]
        assert location.startswith("/oauth/authorize/native?code=")
        page = client.get(location)
        code = parse_qs(urlsplit(location).query)["code"][0]
        assert page.status_code == 200
        assert f'<code id="authorization_code">{code}</code>' in page.text
        token = _exchange(client, code, redirect_uri=OOB)
    assert token.status_code == 200, token.text


def test_refresh_rotates_the_pair_and_the_old_refresh_token_dies(emulator: Emulator) -> None:
    first = emulator.token()
    with _client(emulator) as client:
        second = _refresh(client, first["refresh_token"])
        assert second.status_code == 200, second.text
        pair = second.json()
        assert pair["access_token"] != first["access_token"]
        assert pair["refresh_token"] != first["refresh_token"]
        reuse = _refresh(client, first["refresh_token"])
        assert reuse.status_code == 400
        assert reuse.json() == {"error": "invalid_grant",
                                "error_description": "The refresh token is invalid"}
        third = _refresh(client, pair["refresh_token"])
        assert third.status_code == 200
    assert _me(emulator, third.json()["access_token"]).status_code == 200


def test_a_failed_refresh_still_burns_the_refresh_token(emulator: Emulator) -> None:
    first = emulator.token()
    with _client(emulator) as client:
        bad = _refresh(client, first["refresh_token"], secret="wrong")
        assert bad.status_code == 401
        assert bad.json()["error"] == "invalid_client"
        retry = _refresh(client, first["refresh_token"])
    assert retry.status_code == 400
    assert retry.json()["error"] == "invalid_grant"


def test_client_credentials_token_has_no_refresh_and_needs_the_company_header(
        emulator: Emulator) -> None:
    with _client(emulator) as client:
        answer = client.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": SERVICE_CLIENT_ID,
            "client_secret": SERVICE_CLIENT_SECRET})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body
    token = body["access_token"]
    assert _me(emulator, token).status_code == 400
    with_header = httpx.get(f"{emulator.api_url}/rest/v1.0/me", headers=headers(token))
    assert with_header.status_code == 200
    assert with_header.json()["id"] == SERVICE_USER_ID
    companies = httpx.get(f"{emulator.api_url}/rest/v1.0/companies", headers=headers(token))
    assert [c["id"] for c in companies.json()] == [COMPANY_ID]


def test_token_endpoint_errors_are_doorkeeper_shaped(emulator: Emulator) -> None:
    with _client(emulator) as client:
        grant = client.post("/oauth/token", data={"grant_type": "password",
                                                  "client_id": DEMO_CLIENT_ID,
                                                  "client_secret": DEMO_CLIENT_SECRET})
        secret = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                   "client_id": SERVICE_CLIENT_ID,
                                                   "client_secret": "nope"})
        missing = client.post("/oauth/token", json={"grant_type": "authorization_code",
                                                    "client_id": DEMO_CLIENT_ID,
                                                    "client_secret": DEMO_CLIENT_SECRET})
    assert grant.status_code == 400
    assert grant.json()["error"] == "unsupported_grant_type"
    assert secret.status_code == 401
    assert secret.json()["error"] == "invalid_client"
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


def test_token_info(emulator: Emulator) -> None:
    token = emulator.token()
    answer = httpx.get(f"{emulator.api_url}/oauth/token/info",
                       headers={"Authorization": f"Bearer {token['access_token']}"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["resource_owner_id"] == DEMO_USER_ID
    assert body["scopes"] == []
    assert 5390 <= body["expires_in_seconds"] <= 5400
    assert body["application"] == {"uid": DEMO_CLIENT_ID}
    assert body["created_at"] == token["created_at"]
    bad = httpx.get(f"{emulator.api_url}/oauth/token/info",
                    headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == WWW_AUTH


def test_revoke_kills_access_and_refresh_and_always_answers_200(emulator: Emulator) -> None:
    token = emulator.token()
    with _client(emulator) as client:
        revoked = client.post("/oauth/revoke", data={
            "token": token["access_token"], "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET})
        unknown = client.post("/oauth/revoke", data={"token": "never-issued"})
        refresh = _refresh(client, token["refresh_token"])
    assert revoked.status_code == 200
    assert unknown.status_code == 200
    me = _me(emulator, token["access_token"])
    assert me.status_code == 401
    assert me.headers["WWW-Authenticate"] == WWW_AUTH
    assert refresh.status_code == 400


@pytest.mark.parametrize("case", ["unknown", "missing", "expired"])
def test_bad_tokens_get_the_doorkeeper_401(emulator: Emulator, case: str) -> None:
    if case == "unknown":
        auth = {"Authorization": "Bearer not-a-token"}
    elif case == "missing":
        auth = {}
    else:
        token = emulator.token(ttl=60)["access_token"]
        assert _me(emulator, token).status_code == 200
        emulator.advance_clock(61)
        auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.get(f"{emulator.api_url}/rest/v1.0/me", headers=auth)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == WWW_AUTH
    assert answer.json() == {"errors": "The access token is invalid"}


def test_tokens_are_stored_only_as_digests(emulator: Emulator) -> None:
    token = emulator.token()
    emulator.stop()
    try:
        stored = b"".join(path.read_bytes() for path in emulator.data_dir.glob("*.sqlite3*"))
    finally:
        emulator.start()
    assert stored
    assert token["access_token"].encode() not in stored
    assert token["refresh_token"].encode() not in stored
