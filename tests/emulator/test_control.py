"""Contract tests: the control API (docs/emulator.md): info, reset, tokens, apps, the clock,
the request log, fault plans on both origins, remote changes and persistence."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from procorefs.emulator.seed import (
    COMPANY_ID,
    DEMO_USER_ID,
    OTHER_USER_ID,
    PM_USER_LOGIN,
    PROJECT_ID,
)
from tests.emulator.test_rest_helpers import PROJECT, api, download, make_file, make_folder, root
from tests.support.emulator import Emulator


def test_info_describes_people_apps_and_places(emulator: Emulator) -> None:
    info = emulator.info()
    assert info["seed"] == "empty"
    assert info["demo_user_id"] == DEMO_USER_ID
    assert info["other_user_id"] == OTHER_USER_ID
    demo_app = next(a for a in info["apps"] if a["redirect_uris"])
    assert demo_app["client_secret"]
    company = info["companies"][0]
    assert company["id"] == COMPANY_ID
    assert company["root_folder_id"] and company["recycle_bin_id"]
    assert company["projects"][0]["id"] == PROJECT_ID
    demo = next(u for u in info["users"] if u["id"] == DEMO_USER_ID)
    assert demo["admin_of"] == [COMPANY_ID]


def test_reset_is_fast_and_wipes_state(emulator: Emulator) -> None:
    with api(emulator) as client:
        make_folder(client, "Temporary")
    token = emulator.token()["access_token"]
    started = time.monotonic()
    emulator.reset("empty")
    assert time.monotonic() - started < 1.0
    assert httpx.get(f"{emulator.api_url}/rest/v1.0/me",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with api(emulator) as client:
        assert root(client)["folders"] == []


def test_reset_rejects_unknown_seeds(emulator: Emulator) -> None:
    assert emulator.control("POST", "reset", json={"seed": "nope"}).status_code == 400
    bad_knob = emulator.control("POST", "reset", json={"seed": "demo", "files": 3})
    assert bad_knob.status_code == 400


def test_reset_to_a_large_seed_with_knobs(emulator: Emulator) -> None:
    emulator.reset("large", folders=3, files=7, file_size=64)
    with api(emulator) as client:
        index = client.get(f"/rest/v1.0/projects/{PROJECT_ID}/documents",
                           params={"filters[is_in_recycle_bin]": "false"})
    kinds = [d["document_type"] for d in index.json()]
    assert kinds.count("folder") == 3
    assert kinds.count("file") == 7


def test_minted_tokens_obey_ttl_and_login(emulator: Emulator) -> None:
    token = emulator.token(PM_USER_LOGIN, ttl=30)
    assert token["expires_in"] == 30
    me = httpx.get(f"{emulator.api_url}/rest/v1.0/me",
                   headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.json()["login"] == PM_USER_LOGIN
    assert emulator.control("POST", "token", json={"login": "ghost"}).status_code == 404


def test_registering_an_app_and_a_redirect_uri(emulator: Emulator) -> None:
    made = emulator.control("POST", "apps", json={
        "client_id": "third-party", "client_secret": "s3cret",
        "redirect_uri": "http://localhost:7000/cb"})
    assert made.status_code == 200, made.text
    emulator.control("POST", "apps", json={"client_id": "third-party",
                                           "redirect_uri": "http://localhost:7001/cb"})
    app = next(a for a in emulator.info()["apps"] if a["client_id"] == "third-party")
    assert app["redirect_uris"] == ["http://localhost:7000/cb", "http://localhost:7001/cb"]
    with httpx.Client(base_url=emulator.api_url) as client:
        params = {"response_type": "code", "client_id": "third-party",
                  "redirect_uri": "http://localhost:7001/cb", "decision": "approve"}
        answer = client.post("/oauth/authorize", data=params)
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        token = client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": "third-party",
            "client_secret": "s3cret", "redirect_uri": "http://localhost:7001/cb"})
    assert token.status_code == 200, token.text


def test_clock_advance(emulator: Emulator) -> None:
    before = emulator.info()["now"]
    emulator.advance_clock(86400)
    after = emulator.control("GET", "clock").json()
    assert after["offset"] == 86400
    assert after["now"] - before >= 86400
    emulator.reset()
    assert emulator.control("GET", "clock").json()["offset"] == 0


def test_request_log_counts_api_and_storage_calls_but_not_control(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "log.txt", b"logged")
        mark = emulator.log_mark()
        client.get(f"/rest/v1.0/files/{made['id']}", params=PROJECT)
        client.get("/rest/v1.0/folders/1", params=PROJECT)
        emulator.info()
        download(client, made["file_versions"][0])
    entries = emulator.requests(since=mark)
    assert [(e["method"], e["origin"], e["status"]) for e in entries] == [
        ("GET", "api", 200), ("GET", "api", 404), ("GET", "api", 302), ("GET", "storage", 200)]
    assert entries[0]["path"] == f"/rest/v1.0/files/{made['id']}"
    assert entries[0]["query"] == f"project_id={PROJECT_ID}"
    assert entries[0]["user_id"] == DEMO_USER_ID
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert all(e["seq"] > mark for e in entries)
    assert emulator.requests(since=mark, origin="storage") == entries[3:]


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_status_faults_fire_then_run_out(emulator: Emulator, status: int) -> None:
    emulator.set_faults([{"action": "status", "status": status, "path": "^/rest/v1.0/me$",
                          "times": 1}])
    with api(emulator, company_id=None) as client:
        first = client.get("/rest/v1.0/me")
        second = client.get("/rest/v1.0/me")
    assert first.status_code == status
    assert "errors" in first.json()
    if status in (429, 503):
        assert first.headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in first.headers
    assert second.status_code == 200
    rule = emulator.faults()[0]
    assert (rule["matched"], rule["fired"]) == (1, 1)
    log = emulator.requests(since=emulator.log_mark() - 2)
    assert log[0]["fault"] == f"status:{status}"


def test_skip_and_probability(emulator: Emulator) -> None:
    emulator.set_faults([
        {"action": "status", "status": 500, "path": "/me$", "skip": 2, "times": 1},
        {"action": "status", "status": 503, "path": "/companies$", "probability": 0.0},
    ])
    with api(emulator, company_id=None) as client:
        codes = [client.get("/rest/v1.0/me").status_code for _ in range(4)]
        never = [client.get("/rest/v1.0/companies").status_code for _ in range(3)]
    assert codes == [200, 200, 500, 200]
    assert never == [200, 200, 200]


def test_latency_fault(emulator: Emulator) -> None:
    emulator.set_faults([{"action": "latency", "delay": 0.3, "method": "GET",
                          "path": "/me$"}])
    with api(emulator, company_id=None) as client:
        started = time.monotonic()
        answer = client.get("/rest/v1.0/me")
        elapsed = time.monotonic() - started
    assert answer.status_code == 200
    assert elapsed >= 0.3


def test_stall_fault_times_the_client_out(emulator: Emulator) -> None:
    emulator.set_faults([{"action": "stall", "path": "/me$", "times": 1}])
    with api(emulator, company_id=None) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/rest/v1.0/me", timeout=0.3)
        assert client.get("/rest/v1.0/me").status_code == 200


def test_lost_answer_does_the_work(emulator: Emulator) -> None:
    emulator.set_faults([{"action": "lost", "method": "POST", "path": "^/rest/v1.0/folders$",
                          "times": 1}])
    with api(emulator) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/rest/v1.0/folders", params=PROJECT, json={"folder": {"name": "Made"}})
        names = [f["name"] for f in root(client)["folders"]]
    assert names == ["Made"]


def test_reset_mid_body_on_the_api(emulator: Emulator) -> None:
    with api(emulator) as client:
        for n in range(5):
            make_folder(client, f"Folder {n}")
        emulator.set_faults([{"action": "reset", "path": "/documents$", "after_bytes": 50,
                              "times": 1}])
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"/rest/v1.0/projects/{PROJECT_ID}/documents")
        assert client.get(f"/rest/v1.0/projects/{PROJECT_ID}/documents").status_code == 200


def test_reset_mid_body_on_a_storage_download(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "big.bin", bytes(range(256)) * 4096)
        hop = client.get(made["file_versions"][0]["url"])
    emulator.set_faults([{"action": "reset", "origin": "storage", "method": "GET",
                          "after_bytes": 10000, "times": 1}])
    with httpx.Client() as storage:
        with pytest.raises(httpx.RemoteProtocolError):
            storage.get(hop.headers["Location"])
        assert len(storage.get(hop.headers["Location"]).content) == 256 * 4096


def test_storage_status_faults_answer_s3_xml(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "s3.txt", b"s3")
        hop = client.get(made["file_versions"][0]["url"])
    emulator.set_faults([{"action": "status", "status": 503, "origin": "storage",
                          "times": 1}])
    with httpx.Client() as storage:
        answer = storage.get(hop.headers["Location"])
    assert answer.status_code == 503
    assert "<Error><Code>SlowDown</Code>" in answer.text
    assert answer.headers["Retry-After"] == "1"


def test_storage_urls_that_expire_at_once(emulator: Emulator) -> None:
    with api(emulator) as client:
        made = make_file(client, "expiring.txt", b"soon")
        emulator.set_faults([{"action": "expire_urls", "times": 1}])
        hop = client.get(made["file_versions"][0]["url"])
        with httpx.Client() as storage:
            expired = storage.get(hop.headers["Location"])
            again = client.get(made["file_versions"][0]["url"])
            fresh = storage.get(again.headers["Location"])
    assert expired.status_code == 403
    assert fresh.status_code == 200
    assert fresh.content == b"soon"


def test_bad_fault_rules_are_refused(emulator: Emulator) -> None:
    for rule in ({"action": "explode"}, {"action": "status", "status": 200},
                 {"action": "latency", "path": "("}, {"action": "lost", "colour": "red"}):
        answer = emulator.control("PUT", "faults", json={"rules": [rule]})
        assert answer.status_code == 400, rule
    emulator.set_faults([{"action": "status", "status": 500}])
    emulator.clear_faults()
    assert emulator.faults() == []


def test_control_calls_are_never_faulted(emulator: Emulator) -> None:
    emulator.set_faults([{"action": "status", "status": 500}])
    assert emulator.control("GET", "info").status_code == 200


# -- remote changes ---------------------------------------------------------------------------


def test_remote_changes_as_another_user(emulator: Emulator) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "Shared")
    made = emulator.control("POST", "remote/files", json={
        "project_id": PROJECT_ID, "parent_id": folder["id"], "name": "remote.txt",
        "content": "from afar"})
    assert made.status_code == 201, made.text
    file_id = made.json()["id"]
    assert made.json()["file_versions"][0]["created_by"]["id"] == OTHER_USER_ID
    version = emulator.control("POST", f"remote/files/{file_id}/versions",
                               json={"size": 100_000, "notes": "remote v2"})
    assert version.status_code == 201
    sub = emulator.control("POST", "remote/folders", json={
        "project_id": PROJECT_ID, "parent_id": folder["id"], "name": "Sub"}).json()
    moved = emulator.control("PATCH", f"remote/items/{file_id}",
                             json={"name": "moved.txt", "parent_id": sub["id"]})
    assert moved.status_code == 200
    with api(emulator) as client:
        shown = client.get(f"/rest/v1.0/files/{file_id}", params=PROJECT).json()
        newest = max(shown["file_versions"], key=lambda v: v["number"])
        assert len(download(client, newest)) == 100_000
    assert shown["name_with_path"].endswith("/Shared/Sub/moved.txt")
    assert newest["notes"] == "remote v2"
    out = emulator.control("POST", f"remote/files/{file_id}/checkout", json={"seconds": 600})
    assert out.json()["checked_out_by"]["id"] == OTHER_USER_ID
    with api(emulator, PM_USER_LOGIN) as pm:
        refused = pm.patch(f"/rest/v1.0/files/{file_id}", params=PROJECT,
                           json={"file": {"name": "mine.txt"}})
    assert refused.status_code == 409
    emulator.control("POST", f"remote/files/{file_id}/checkout", json={"until": None})
    gone = emulator.control("DELETE", f"remote/items/{file_id}")
    assert gone.json()["is_deleted"] is True
    duplicate = emulator.control("POST", "remote/folders", json={
        "project_id": PROJECT_ID, "parent_id": folder["id"], "name": "Sub"})
    assert duplicate.status_code == 400


def test_state_survives_a_restart(emulator: Emulator) -> None:
    with api(emulator) as client:
        folder = make_folder(client, "Durable")
        made = make_file(client, "durable.txt", b"still here", folder["id"])
    token = emulator.token()["access_token"]
    api_url = emulator.api_url
    emulator.stop()
    emulator.start()
    assert emulator.api_url == api_url
    with httpx.Client(base_url=api_url, headers={
            "Authorization": f"Bearer {token}",
            "Procore-Company-Id": str(COMPANY_ID)}) as client:
        shown = client.get(f"/rest/v1.0/files/{made['id']}", params=PROJECT)
        assert shown.status_code == 200
        assert download(client, shown.json()["file_versions"][0]) == b"still here"
