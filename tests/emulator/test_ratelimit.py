"""Contract tests: the hourly and spike windows and the X-Rate-Limit-* headers (§6.2)."""

from __future__ import annotations

import httpx

from procorefs.emulator.seed import COMPANY_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.emulator.test_rest_helpers import api
from tests.support.emulator import Emulator

MESSAGE = ("You have surpassed the max number of requests for an hour. "
           "Please wait until your limit resets.")


def _limits(answer: httpx.Response) -> tuple[int, int, int]:
    return (int(answer.headers["X-Rate-Limit-Limit"]),
            int(answer.headers["X-Rate-Limit-Remaining"]),
            int(answer.headers["X-Rate-Limit-Reset"]))


def test_spike_window_answers_429_with_retry_after(emulator: Emulator) -> None:
    emulator.settings(rate_limit="50/5")
    with api(emulator, company_id=None) as client:
        answers = [client.get("/rest/v1.0/me") for _ in range(6)]
        now = emulator.info()["now"]
        emulator.advance_clock(10)
        after = client.get("/rest/v1.0/me")
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [_limits(a)[1] for a in answers[:5]] == [4, 3, 2, 1, 0]
    assert all(_limits(a)[0] == 5 for a in answers)
    refused = answers[5]
    assert refused.json() == {"errors": MESSAGE}
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert _limits(refused)[1] == 0
    assert now < _limits(refused)[2] <= now + 11
    assert after.status_code == 200


def test_hourly_window_is_reported_when_it_is_closest_to_running_out(
        emulator: Emulator) -> None:
    emulator.settings(rate_limit="6/4")
    with api(emulator, company_id=None) as client:
        first = [client.get("/rest/v1.0/me") for _ in range(4)]
        emulator.advance_clock(10)
        second = [client.get("/rest/v1.0/me") for _ in range(3)]
    assert [_limits(a)[:2] for a in first] == [(4, 3), (4, 2), (4, 1), (4, 0)]
    assert [a.status_code for a in second] == [200, 200, 429]
    assert _limits(second[0])[:2] == (6, 1)
    assert _limits(second[1])[:2] == (6, 0)
    assert int(second[2].headers["Retry-After"]) > 3000


def test_windows_are_per_token(emulator: Emulator) -> None:
    emulator.settings(rate_limit="100/2")
    with api(emulator, company_id=None) as one, api(emulator, company_id=None) as two:
        used = [one.get("/rest/v1.0/me").status_code for _ in range(3)]
        fresh = two.get("/rest/v1.0/me")
    assert used == [200, 200, 429]
    assert fresh.status_code == 200


def test_windows_are_per_token_and_company(emulator: Emulator) -> None:
    # §6.2 (emulator): one bucket per (token, Procore-Company-Id); a call without the
    # header is a bucket of its own.
    emulator.settings(rate_limit="100/2")
    with api(emulator, company_id=None) as client:

        def me(company: int | None) -> int:
            headers = {} if company is None else {"Procore-Company-Id": str(company)}
            return client.get("/rest/v1.0/me", headers=headers).status_code

        first = [me(COMPANY_ID) for _ in range(3)]
        other = [me(COMPANY_ID + 1) for _ in range(3)]
        plain = me(None)
    assert first == [200, 200, 429]
    assert other == [200, 200, 429]
    assert plain == 200


def test_every_api_answer_carries_the_headers(emulator: Emulator) -> None:
    base = emulator.api_url
    answers = [
        httpx.get(f"{base}/rest/v1.0/me"),
        httpx.get(f"{base}/nowhere"),
        httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials",
                                                "client_id": DEMO_CLIENT_ID,
                                                "client_secret": DEMO_CLIENT_SECRET}),
    ]
    with api(emulator) as client:
        answers.append(client.get("/rest/v1.0/folders", params={"project_id": 1}))
    for answer in answers:
        names = {name.lower() for name in answer.headers}
        assert {"x-rate-limit-limit", "x-rate-limit-remaining",
                "x-rate-limit-reset"} <= names, answer.request.url


def test_control_calls_are_not_limited(emulator: Emulator) -> None:
    emulator.settings(rate_limit="100/1")
    for _ in range(5):
        answer = emulator.control("GET", "info")
        assert answer.status_code == 200
        assert "X-Rate-Limit-Limit" not in answer.headers


def test_the_spike_window_length_can_be_shortened_for_tests(emulator: Emulator) -> None:
    assert emulator.settings(rate_limit="50/2", rate_spike_window=3)["rate_spike_window"] == 3
    with api(emulator, company_id=None) as client:
        answers = [client.get("/rest/v1.0/me") for _ in range(3)]
        emulator.advance_clock(3.5)                     # past the 3 s window, not 10 s
        after = client.get("/rest/v1.0/me")
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 3
    assert after.status_code == 200
    bad = httpx.post(f"{emulator.api_url}/_emulator/settings", json={"rate_spike_window": 0})
    assert bad.status_code == 400
