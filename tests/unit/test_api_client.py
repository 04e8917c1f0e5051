"""ProcoreClient over httpx.MockTransport: headers, retries, lost answers, pagination."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest

from procorefs.api import (
    NetworkError,
    NotFound,
    Priority,
    Scope,
    ServerError,
    Unauthorized,
    ValidationFailed,
)
from procorefs.api.auth import ClientCredentials, OAuthClient
from procorefs.clock import ManualClock
from tests.api.fakes import API, file, folder, jsonr, make_client, version

PROJECT = Scope(company_id=11, project_id=22)
COMPANY = Scope(company_id=11)


def test_headers_and_paths(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/rest/v1.0/me":
            return jsonr(200, {"id": 1, "login": "a@b", "name": "A"})
        return jsonr(200, folder(5, "Root"))

    with make_client(tmp_path, handler) as client:
        assert client.me().login == "a@b"
        client.root_folder(PROJECT)
        client.folder(COMPANY, 7)
    me, root, company_folder = seen
    assert me.headers["authorization"] == "Bearer static-token-value"
    assert "procore-company-id" not in me.headers  # user token: not on /me
    assert me.headers["user-agent"].startswith("procorefs/")
    assert root.url.path == "/rest/v1.0/folders"
    assert root.url.params["project_id"] == "22"
    assert root.url.params["show_latest_file_version_only"] == "true"
    assert root.headers["procore-company-id"] == "11"
    assert company_folder.url.path == "/rest/v1.0/companies/11/folders/7"
    assert company_folder.headers["procore-company-id"] == "11"


def test_service_accounts_send_the_company_on_me_too(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/oauth/token":
            return jsonr(200, {"access_token": "svc-token-1", "expires_in": 5400,
                               "token_type": "bearer", "created_at": 0})
        return jsonr(200, {"id": 1})

    clock = ManualClock()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    creds = ClientCredentials(OAuthClient(API, http, clock), "cid", "csecret", clock)
    with make_client(tmp_path, handler, clock=clock, credentials=creds, company_id=11) as client:
        client.me()
    token_call, me = seen
    form = dict(x.split("=") for x in token_call.content.decode().split("&"))
    assert form["grant_type"] == "client_credentials"
    assert me.headers["procore-company-id"] == "11"
    assert me.headers["authorization"] == "Bearer svc-token-1"


def test_429_waits_retry_after_then_succeeds(tmp_path: Path) -> None:
    clock = ManualClock()
    answers = iter([jsonr(429, {"errors": "slow down"}, {"retry-after": "7"}),
                    jsonr(200, {"id": 1})])
    with make_client(tmp_path, lambda r: next(answers), clock=clock) as client:
        assert client.me().id == 1
        assert client.request_count == 2
    assert sum(clock.slept) >= 7


def test_429_without_retry_after_waits_for_the_reset(tmp_path: Path) -> None:
    clock = ManualClock()
    reset = clock.time() + 20
    rate = {"x-rate-limit-limit": "25", "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(reset))}
    answers = iter([jsonr(429, {}, rate), jsonr(200, {"id": 1})])
    with make_client(tmp_path, lambda r: next(answers), clock=clock) as client:
        client.me()
    assert clock.time() >= reset


def test_503_retry_after_is_honoured(tmp_path: Path) -> None:
    clock = ManualClock()
    answers = iter([jsonr(503, {}, {"retry-after": "3"}), jsonr(200, {"id": 1})])
    start = clock.time()
    with make_client(tmp_path, lambda r: next(answers), clock=clock) as client:
        client.me()
    assert clock.time() - start >= 3


def test_5xx_and_resets_are_retried_for_gets(tmp_path: Path) -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            return jsonr(502, {})
        if calls[0] == 2:
            raise httpx.ReadError("reset")
        if calls[0] == 3:
            raise httpx.ConnectError("refused")
        return jsonr(200, {"id": 1})

    with make_client(tmp_path, handler) as client:
        assert client.me().id == 1
    assert calls[0] == 4


def test_retries_give_up_with_a_typed_error(tmp_path: Path) -> None:
    with make_client(tmp_path, lambda r: jsonr(500, {"errors": "boom"})) as client, \
            pytest.raises(ServerError, match="boom"):
        client.me()
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")
    with make_client(tmp_path, refuse) as client, pytest.raises(NetworkError):
        client.me()


@pytest.mark.parametrize("status, body, cls, text", [
    (400, {"errors": {"name": ["has already been taken"]}}, ValidationFailed,
     "name has already been taken"),
    (404, {"errors": "Not Found"}, NotFound, "Not Found"),
    (401, {"error": "invalid_token", "error_description": "The access token is invalid"},
     Unauthorized, "access token is invalid"),
    (422, "plain text", ValidationFailed, "plain text"),
])
def test_error_shapes(tmp_path: Path, status: int, body: Any, cls: type[Exception],
                      text: str) -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        return jsonr(status, body)

    with make_client(tmp_path, handler) as client, pytest.raises(cls, match=text):
        client.folder(PROJECT, 3)
    assert calls[0] == 1  # never retried


def test_lost_create_answer_finds_the_folder_instead_of_duplicating(tmp_path: Path) -> None:
    created: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = json.loads(request.content)["folder"]
            created.append(folder(100 + len(created), body["name"], body.get("parent_id")))
            raise httpx.RemoteProtocolError("server vanished after doing the work")
        if request.url.path == "/rest/v1.0/folders/5":
            return jsonr(200, folder(5, "Parent", folders=created))
        if request.url.path == "/rest/v1.0/folders/100":
            return jsonr(200, created[0])
        return jsonr(404, {"errors": "no"})

    with make_client(tmp_path, handler) as client:
        made = client.create_folder(PROJECT, "Drawings", 5)
    assert made.id == 100 and made.name == "Drawings"
    assert len(created) == 1


def test_lost_create_answer_retries_when_nothing_was_made(tmp_path: Path) -> None:
    posts = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts[0] += 1
            if posts[0] == 1:
                return jsonr(500, {})  # failed before doing anything
            return jsonr(201, folder(9, "A", 5))
        return jsonr(200, folder(5, "Parent"))

    with make_client(tmp_path, handler) as client:
        assert client.create_folder(PROJECT, "A", 5).id == 9
    assert posts[0] == 2


def test_lost_create_file_answer_returns_the_new_file(tmp_path: Path) -> None:
    store: dict[int, dict[str, Any]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = json.loads(request.content)["file"]
            store[50] = file(50, body["name"], 5, [version(70, 1, 3, "http://x")])
            raise httpx.ReadTimeout("lost")
        if request.url.path == "/rest/v1.0/folders/5":
            return jsonr(200, folder(5, "P", files=list(store.values())))
        return jsonr(200, store[50])

    with make_client(tmp_path, handler) as client:
        made = client.create_file(PROJECT, "a.txt", 5, "UPLOAD1")
    assert made.id == 50


def test_an_old_file_with_the_same_name_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    old = file(50, "a.txt", 5, [version(70, 1, 3, "http://x", "2001-01-01T00:00:00Z")])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("lost")
        if request.url.path == "/rest/v1.0/folders/5":
            return jsonr(200, folder(5, "P", files=[old]))
        return jsonr(200, old)

    with make_client(tmp_path, handler) as client, pytest.raises(NetworkError):
        client.create_file(PROJECT, "a.txt", 5, "UPLOAD1")


def test_delete_whose_answer_was_lost_is_done(tmp_path: Path) -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            raise httpx.ReadError("lost after delete")
        return jsonr(404, {"errors": "Not Found"})

    with make_client(tmp_path, handler) as client:
        client.delete_file(PROJECT, 3)
    with make_client(tmp_path, lambda r: jsonr(404, {"errors": "x"})) as client, \
            pytest.raises(NotFound):
        client.delete_file(PROJECT, 3)


def test_patch_bodies(tmp_path: Path) -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.method, request.url.path, json.loads(request.content)))
        return jsonr(200, file(3, "b", 5, []))

    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with make_client(tmp_path, handler) as client:
        client.update_file(PROJECT, 3, name="b", parent_id=6)
        client.checkout(PROJECT, 3, until)
        client.checkout(PROJECT, 3, None)
        client.update_folder(COMPANY, 8, name="n")
    assert bodies == [
        ("PATCH", "/rest/v1.0/files/3", {"file": {"name": "b", "parent_id": 6}}),
        ("PATCH", "/rest/v1.0/files/3", {"file": {"checked_out_until": "2030-01-02T03:04:05Z"}}),
        ("PATCH", "/rest/v1.0/files/3", {"file": {"checked_out_until": None}}),
        ("PATCH", "/rest/v1.0/companies/11/folders/8", {"folder": {"name": "n"}}),
    ]


def test_create_version_paths(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return jsonr(201, version(9, 2, 4, "http://x"))

    with make_client(tmp_path, handler) as client:
        assert client.create_version(PROJECT, 3, "U1", notes="rev").number == 2
        client.create_version(COMPANY, 3, "U2")
    assert seen[0].url.path == "/rest/v1.0/file_versions"
    assert dict(seen[0].url.params) == {"project_id": "22", "file_id": "3"}
    assert json.loads(seen[0].content) == {"file_version": {"upload_uuid": "U1", "notes": "rev"}}
    assert seen[1].url.path == "/rest/v1.0/companies/11/file_versions"


def pages(total: int, per_page: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, total, per_page):
        yield [{"id": i, "document_type": "file", "name": f"f{i}"}
               for i in range(start, min(total, start + per_page))]


def test_documents_follow_link_lazily(tmp_path: Path) -> None:
    data = list(pages(25, 10))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = int(request.url.params.get("page", "1"))
        links = [f'<{API}/rest/v1.0/projects/22/documents?page=1&per_page=10>; rel="first"']
        if page < 3:
            links.append(f'<{API}/rest/v1.0/projects/22/documents?page={page + 1}'
                         f'&per_page=10&view=extended>; rel="next"')
        return jsonr(200, data[page - 1], {"link": ", ".join(links), "total": "25",
                                           "per-page": "10"})

    start, end = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC)
    with make_client(tmp_path, handler) as client:
        it = client.documents(PROJECT, updated_between=(start, end), per_page=10)
        first = next(it)
        assert first.id == 0 and len(seen) == 1  # lazy: one page so far
        rest = list(it)
    assert [e.id for e in [first, *rest]] == list(range(25))
    assert len(seen) == 3
    params = seen[0].url.params
    assert params["view"] == "extended"
    assert params["filters[updated_at]"] == "2030-01-01T00:00:00Z...2030-01-02T00:00:00Z"
    assert params["filters[is_in_recycle_bin]"] == "false"
    assert all(r.headers["procore-company-id"] == "11" for r in seen)


def test_pagination_without_link_uses_total_then_short_pages(tmp_path: Path) -> None:
    data = list(pages(23, 10))

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        body = data[page - 1] if page <= len(data) else []
        return jsonr(200, body, {"total": "23"} if "total" in request.url.path else {})

    with make_client(tmp_path, handler) as client:
        assert len(list(client.documents(COMPANY, per_page=10))) == 23


def test_priority_is_accepted_everywhere(tmp_path: Path) -> None:
    with make_client(tmp_path, lambda r: jsonr(200, folder(1, "R"))) as client:
        client.root_folder(PROJECT, priority=Priority.BACKGROUND)
        client.folder(PROJECT, 1, priority=Priority.BACKGROUND)


def test_rate_limit_status_comes_from_headers(tmp_path: Path) -> None:
    rate = {"x-rate-limit-limit": "600", "x-rate-limit-remaining": "599",
            "x-rate-limit-reset": "1750000000"}
    with make_client(tmp_path, lambda r: jsonr(200, {"id": 1}, rate)) as client:
        client.me()
        status = client.rate_limit()
    assert (status.limit, status.remaining) == (600, 599)


def test_threads_share_the_client(tmp_path: Path) -> None:
    lock = threading.Lock()
    count = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            count[0] += 1
        return jsonr(200, {"id": 1})

    with make_client(tmp_path, handler) as client:
        threads = [threading.Thread(target=client.me) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.request_count == 8 == count[0]


def test_no_keyring_backend_gives_a_clear_message(tmp_path: Path) -> None:
    from keyring.backends.fail import Keyring as FailKeyring

    from procorefs.api import KeyringUnavailable, ProcoreClient
    from tests.api.fakes import make_settings
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        with pytest.raises(KeyringUnavailable) as info:
            ProcoreClient.from_settings(make_settings(tmp_path),
                                        transport=httpx.MockTransport(lambda r: jsonr(500, {})))
    finally:
        keyring.set_keyring(previous)
    assert "PROCOREFS_ACCESS_TOKEN" in str(info.value)
    assert "PROCOREFS_CLIENT_ID" in str(info.value)


@pytest.mark.parametrize(("status", "headers", "cls"), [
    (401, {}, "Unauthorized"), (403, {}, "Forbidden"), (404, {}, "NotFound"),
    (409, {}, "Conflict"), (410, {}, "Gone"), (400, {}, "ValidationFailed"),
    (422, {}, "ValidationFailed"), (429, {"Retry-After": "7"}, "RateLimited"),
    (500, {}, "ServerError"), (503, {}, "ServerError"), (418, {}, "ApiError"),
])
def test_every_documented_status_has_its_error_class(status: int, headers: dict[str, str],
                                                      cls: str) -> None:
    from procorefs.api import errors as api_errors
    from procorefs.api.http import error_for
    response = httpx.Response(status, json={"errors": "the reason"}, headers=headers,
                              request=httpx.Request("GET", "https://api.procore.com/x"))
    error = error_for(response, "GET", "/rest/v1.0/x")
    assert type(error) is getattr(api_errors, cls)
    assert isinstance(error, api_errors.ApiError)
    assert error.status == status and "the reason" in str(error)
    if status == 429:
        assert error.retry_after == 7.0  # type: ignore[attr-defined]
