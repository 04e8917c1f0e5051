"""Credentials: refresh ahead of expiry and on 401, single-flight, stored before use."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import keyring
import pytest

from procorefs.api import NotSignedIn, Unauthorized
from procorefs.api.auth import (
    ClientCredentials,
    OAuthClient,
    ProcoreAuth,
    StaticCredentials,
    UserCredentials,
    credentials_from_settings,
    lock_path_for,
)
from procorefs.api.tokens import KeyringTokenStore, TokenSet
from procorefs.clock import ManualClock
from tests.api.fakes import API, jsonr, make_client, make_settings
from tests.api.keyrings import MemoryKeyring


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


class FakeLogin:
    """A token endpoint with single-use refresh tokens, and an API that checks tokens."""

    def __init__(self, clock: ManualClock, ttl: int = 5400) -> None:
        self.clock = clock
        self.ttl = ttl
        self.lock = threading.Lock()
        self.refreshes = 0
        self.live_refresh = {"refresh-0"}
        self.live_access = {"access-0"}
        self.seen_tokens: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            with self.lock:
                if form["grant_type"] != "refresh_token":
                    return jsonr(400, {"error": "unsupported_grant_type"})
                if form["refresh_token"] not in self.live_refresh:
                    return jsonr(400, {"error": "invalid_grant",
                                       "error_description": "The refresh token is invalid"})
                self.live_refresh.discard(form["refresh_token"])
                self.refreshes += 1
                n = self.refreshes
                self.live_access = {f"access-{n}"}
                self.live_refresh.add(f"refresh-{n}")
            return jsonr(200, {"access_token": f"access-{n}", "refresh_token": f"refresh-{n}",
                               "expires_in": self.ttl, "token_type": "bearer",
                               "created_at": int(self.clock.time())})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        if token not in self.live_access:
            return jsonr(401, {"errors": "The access token is invalid"},
                         {"www-authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'})
        return jsonr(200, {"id": 1, "login": "pm@example.com"})


def store_initial(tmp_path: Path, clock: ManualClock, expires_in: float = 5400) -> None:
    settings = make_settings(tmp_path)
    KeyringTokenStore(settings.token_namespace).save(TokenSet(
        access_token="access-0", refresh_token="refresh-0",
        expires_at=clock.time() + expires_in, lifetime=5400, account="pm@example.com",
        client_id="cid", client_secret="csecret"))


def user_client(tmp_path: Path, fake: FakeLogin, clock: ManualClock):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path)
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    creds = credentials_from_settings(settings, OAuthClient(API, http, clock), clock)
    assert isinstance(creds, UserCredentials)
    return make_client(tmp_path, fake.handler, clock=clock, credentials=creds), creds


def test_stored_sign_in_is_used(tmp_path: Path, ring: MemoryKeyring) -> None:
    clock = ManualClock()
    store_initial(tmp_path, clock)
    fake = FakeLogin(clock)
    client, _creds = user_client(tmp_path, fake, clock)
    with client:
        client.me()
    assert fake.refreshes == 0 and fake.seen_tokens == ["access-0"]


def test_refresh_ahead_of_expiry_and_stored_before_use(tmp_path: Path,
                                                       ring: MemoryKeyring) -> None:
    clock = ManualClock()
    store_initial(tmp_path, clock, expires_in=100)  # inside the refresh margin
    fake = FakeLogin(clock)
    client, _creds = user_client(tmp_path, fake, clock)
    with client:
        client.me()
    assert fake.refreshes == 1
    assert fake.seen_tokens == ["access-1"]  # never tried the expiring token
    stored = KeyringTokenStore(make_settings(tmp_path).token_namespace).load("pm@example.com")
    assert stored is not None and stored.access_token == "access-1"
    assert stored.refresh_token == "refresh-1" and stored.client_id == "cid"


def test_401_refreshes_once_and_retries(tmp_path: Path, ring: MemoryKeyring) -> None:
    clock = ManualClock()
    store_initial(tmp_path, clock)
    fake = FakeLogin(clock)
    fake.live_access = {"something-else"}  # the server considers access-0 expired
    client, _creds = user_client(tmp_path, fake, clock)
    with client:
        assert client.me().id == 1
    assert fake.refreshes == 1 and fake.seen_tokens == ["access-0", "access-1"]


def test_dead_refresh_token_asks_to_sign_in_again(tmp_path: Path, ring: MemoryKeyring) -> None:
    clock = ManualClock()
    store_initial(tmp_path, clock)
    fake = FakeLogin(clock)
    fake.live_access = set()
    fake.live_refresh = set()
    client, _creds = user_client(tmp_path, fake, clock)
    with client, pytest.raises(Unauthorized, match="procorefs login"):
        client.me()


def test_refresh_is_single_flight_across_threads(tmp_path: Path, ring: MemoryKeyring) -> None:
    clock = ManualClock()
    store_initial(tmp_path, clock, expires_in=10)
    fake = FakeLogin(clock)
    client, _creds = user_client(tmp_path, fake, clock)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.me()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with client:
        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert fake.refreshes == 1
    assert set(fake.seen_tokens) == {"access-1"}


def test_another_process_refreshed_already(tmp_path: Path, ring: MemoryKeyring) -> None:
    """After taking the lock the store is read again: a newer pair there is used as is."""
    clock = ManualClock()
    store_initial(tmp_path, clock)
    fake = FakeLogin(clock)
    client, _creds = user_client(tmp_path, fake, clock)
    # "Another process" refreshes behind our back and stores the new pair.
    other_http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    settings = make_settings(tmp_path)
    other = UserCredentials(KeyringTokenStore(settings.token_namespace), "pm@example.com",
                            OAuthClient(API, other_http, clock), clock,
                            lock_path_for(settings, "pm@example.com"))
    other.after_unauthorized(other.token())
    assert fake.refreshes == 1
    with client:
        assert client.me().id == 1  # 401 with access-0, then the stored access-1
    assert fake.refreshes == 1
    assert fake.seen_tokens == ["access-0", "access-1"]


def test_static_token_is_never_refreshed(tmp_path: Path) -> None:
    clock = ManualClock()
    fake = FakeLogin(clock)
    with make_client(tmp_path, fake.handler, clock=clock,
                     credentials=StaticCredentials("wrong-token-x")) as client, \
            pytest.raises(Unauthorized):
        client.me()
    assert fake.refreshes == 0


def test_client_credentials_get_a_new_token_on_expiry(tmp_path: Path) -> None:
    clock = ManualClock()
    grants = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            grants[0] += 1
            return jsonr(200, {"access_token": f"svc-{grants[0]}xxxx", "expires_in": 600})
        return jsonr(200, {"id": 1})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    creds = ClientCredentials(OAuthClient(API, http, clock), "cid", "secret-value", clock)
    assert creds.token().access_token == "svc-1xxxx"
    assert creds.token().access_token == "svc-1xxxx"
    clock.advance(590)
    assert creds.token().access_token == "svc-2xxxx"
    assert grants[0] == 2


def test_credentials_choice(tmp_path: Path, ring: MemoryKeyring) -> None:
    clock = ManualClock()
    http = httpx.Client(transport=httpx.MockTransport(lambda r: jsonr(500, {})))
    oauth = OAuthClient(API, http, clock)
    env_token = make_settings(tmp_path, access_token="env-token-value")
    assert isinstance(credentials_from_settings(env_token, oauth, clock), StaticCredentials)
    service = make_settings(tmp_path, client_id="cid", client_secret="sec-value")
    assert isinstance(credentials_from_settings(service, oauth, clock), ClientCredentials)
    with pytest.raises(NotSignedIn, match="procorefs login"):
        credentials_from_settings(make_settings(tmp_path), oauth, clock)
    store_initial(tmp_path, clock)
    assert isinstance(credentials_from_settings(service, oauth, clock), UserCredentials)
    with pytest.raises(NotSignedIn, match=r"other@example\.com"):
        credentials_from_settings(make_settings(tmp_path, account="other@example.com"),
                                  oauth, clock)


def test_token_json_round_trip_and_expiry() -> None:
    token = TokenSet.from_grant({"access_token": "a-123456", "refresh_token": "r-123456",
                                 "expires_in": 5400, "created_at": 1000}, now=1000.0,
                                grant="authorization_code", client_id="c", client_secret=None)
    assert token.expires_at == 6400
    assert TokenSet.from_json(token.to_json()) == token
    assert not token.expiring(6000) and token.expiring(6200)
    # A server clock far ahead of ours never extends the expiry beyond our own reading.
    skewed = TokenSet.from_grant({"access_token": "a-123456", "expires_in": 60,
                                  "created_at": 99999}, now=1000.0, grant="x",
                                 client_id=None, client_secret=None)
    assert skewed.expires_at == 1060
    assert TokenSet.from_json("not json") is None
    assert TokenSet.from_json(json.dumps({"access_token": ""})) is None
    with pytest.raises(ValueError):
        TokenSet.from_grant({"token_type": "bearer"}, now=0, grant="x", client_id=None,
                            client_secret=None)


def test_bearer_is_never_sent_to_untrusted_hosts(tmp_path: Path) -> None:
    auth = ProcoreAuth(StaticCredentials("secret-token-1"), make_settings(tmp_path))
    request = httpx.Request("GET", "http://storage.example/x",
                            headers={"Authorization": "Bearer leaked"})
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    assert "authorization" not in sent.headers
    same_host = next(auth.sync_auth_flow(httpx.Request("GET", "http://127.0.0.1:10/blob")))
    assert "authorization" not in same_host.headers
    trusted = next(auth.sync_auth_flow(httpx.Request("GET", f"{API}/x")))
    assert trusted.headers["authorization"] == "Bearer secret-token-1"
