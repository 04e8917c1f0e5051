"""Counting a workload's requests from the emulator's request log."""

from __future__ import annotations

from typing import Any

from bench.calls import (
    count_calls,
    endpoint,
    is_commit,
    last_activity,
    last_commit_time,
    timeline,
)

ME, OTHER = 7, 8


def entry(method: str, path: str, *, origin: str = "api", user: int | None = ME,
          status: int = 200, time: float = 0.0) -> dict[str, Any]:
    return {"seq": 1, "time": time, "method": method, "path": path, "query": "",
            "status": status, "origin": origin, "user_id": user, "fault": None,
            "duration_ms": 1.0}


def test_endpoints_fold_ids_and_keys() -> None:
    assert endpoint("get", "/rest/v1.0/folders/100000007") == "GET /rest/v1.0/folders/{id}"
    assert endpoint("PATCH", "/rest/v1.1/projects/318842/uploads/01JEXAMPLE0000000000000001") \
        == "PATCH /rest/v1.1/projects/{id}/uploads/{key}"
    assert endpoint("GET", "/fas/api/v5/files/x/y?sig=1") == "GET /fas/... (download URL)"
    assert endpoint("GET", "/rest/v1.0/folders") == "GET /rest/v1.0/folders"


def test_api_calls_are_the_users_and_storage_is_counted_apart() -> None:
    log = [
        entry("GET", "/rest/v1.0/folders/1"),
        entry("GET", "/rest/v1.0/folders/2"),
        entry("GET", "/rest/v1.0/folders/1", user=OTHER),  # the bench's own commit poll
        entry("POST", "/rest/v1.1/projects/5/uploads"),
        entry("POST", "/pro-core.com/", origin="storage", user=None),
        entry("PUT", "/pro-core.com/companies/1/01J", origin="storage", user=None),
        entry("GET", "/pro-core.com/blobs/k", origin="storage", user=None),
        entry("POST", "/rest/v1.0/files", status=429),  # a refused call still costs budget
    ]
    calls = count_calls(log, user_id=ME)
    assert (calls.api, calls.storage, calls.storage_puts) == (4, 3, 2)
    assert calls.kinds == {"GET /rest/v1.0/folders/{id}": 2,
                           "POST /rest/v1.1/projects/{id}/uploads": 1,
                           "POST /rest/v1.0/files": 1}
    assert count_calls(log, user_id=None).api == 5
    assert calls.describe() == ("4 API (2 x GET /rest/v1.0/folders/{id}, "
                                "1 x POST /rest/v1.0/files, "
                                "1 x POST /rest/v1.1/projects/{id}/uploads) + 3 storage")


def test_an_empty_window_costs_nothing() -> None:
    calls = count_calls([], user_id=ME)
    assert (calls.api, calls.storage) == (0, 0)
    assert calls.describe() == "0 API + 0 storage"


def test_what_counts_as_a_commit() -> None:
    assert is_commit(entry("POST", "/rest/v1.0/files", status=201))
    assert is_commit(entry("POST", "/rest/v1.0/file_versions", status=201))
    assert is_commit(entry("PATCH", "/rest/v1.0/files/4294967301"))
    assert is_commit(entry("POST", "/rest/v1.0/companies/3/files", status=201))
    assert not is_commit(entry("POST", "/rest/v1.0/files", status=422))
    assert not is_commit(entry("GET", "/rest/v1.0/files/4294967301"))
    assert not is_commit(entry("PATCH", "/rest/v1.0/folders/9"))
    assert not is_commit(entry("POST", "/rest/v1.0/folders", status=201))
    assert not is_commit(entry("DELETE", "/rest/v1.0/files/4"))
    assert not is_commit(entry("PUT", "/pro-core.com/companies/1/files", origin="storage"))


def test_the_commit_moment_is_the_last_commit_before_it_was_seen() -> None:
    log = [entry("POST", "/rest/v1.0/files", status=201, time=10.0),
           entry("POST", "/rest/v1.0/files", status=201, time=12.5),
           entry("POST", "/rest/v1.0/files", status=201, time=12.0, user=OTHER),
           entry("GET", "/rest/v1.0/folders/1", time=13.0),
           entry("POST", "/rest/v1.0/files", status=201, time=20.0)]  # after the sighting
    assert last_commit_time(log, user_id=ME, until=14.0) == 12.5
    assert last_commit_time(log, user_id=ME, until=9.0) is None


def test_last_activity_ignores_other_users_but_not_storage() -> None:
    log = [entry("GET", "/rest/v1.0/folders/1", time=5.0),
           entry("GET", "/rest/v1.0/folders/1", time=9.0, user=OTHER),
           entry("PUT", "/b/k", origin="storage", user=None, time=7.0)]
    assert last_activity(log, user_id=ME) == 7.0
    assert last_activity([], user_id=ME) is None


def test_timeline_orders_request_kinds_by_when_they_ended() -> None:
    log = [entry("POST", "/rest/v1.1/projects/5/uploads", status=201, time=101.0),
           entry("PUT", "/b/k/1", origin="storage", user=None, time=101.5),
           entry("PUT", "/b/k/2", origin="storage", user=None, time=102.25),
           entry("GET", "/rest/v1.0/folders/3", user=OTHER, time=100.5),  # the bench's poll
           entry("POST", "/rest/v1.0/files", status=201, time=103.0)]
    assert timeline(log, user_id=ME, start=100.0) == (
        "POST /rest/v1.1/projects/{id}/uploads +1.00 s; PUT (storage) x2 +1.50..2.25 s; "
        "POST /rest/v1.0/files +3.00 s")
    assert timeline([], user_id=ME, start=0.0) == ""
