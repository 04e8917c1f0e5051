"""Contract tests: /me, companies, projects and the Procore-Company-Id rule (procore-api.md
§1.4, §2, §3), and the error body shapes (§6.3)."""

from __future__ import annotations

import httpx

from procorefs.emulator.seed import (
    COMPANY_ID,
    COMPANY_NAME,
    DEMO_USER_ID,
    DEMO_USER_LOGIN,
    PROJECT_ID,
    PROJECT_NAME,
    SECOND_PROJECT_ID,
)
from tests.emulator.test_rest_helpers import api, headers
from tests.support.emulator import Emulator


def test_me_needs_no_company_header_for_a_user_token(emulator: Emulator) -> None:
    with api(emulator, company_id=None) as client:
        me = client.get("/rest/v1.0/me")
    assert me.status_code == 200
    assert me.json() == {"id": DEMO_USER_ID, "login": DEMO_USER_LOGIN, "name": "Dana Demo"}
    assert me.headers["X-Request-Id"]


def test_me_with_a_company_id_needs_the_header(emulator: Emulator) -> None:
    with api(emulator, company_id=None) as client:
        answer = client.get("/rest/v1.0/me", params={"company_id": COMPANY_ID})
    assert answer.status_code == 400
    assert answer.json()["errors"].startswith("Missing Procore-Company-Id header!")


def test_companies(emulator: Emulator) -> None:
    with api(emulator, company_id=None) as client:
        answer = client.get("/rest/v1.0/companies")
    assert answer.status_code == 200
    assert answer.json() == [{"id": COMPANY_ID, "name": COMPANY_NAME, "is_active": True,
                              "logo_url": None, "pcn_business_experience": False,
                              "my_company": True}]
    assert answer.headers["Total"] == "1"


def test_projects_v10_and_v11(demo_emulator: Emulator) -> None:
    with api(demo_emulator) as client:
        v10 = client.get("/rest/v1.0/projects", params={"company_id": COMPANY_ID})
        v11 = client.get("/rest/v1.1/projects", params={"company_id": COMPANY_ID})
        compact = client.get("/rest/v1.1/projects",
                             params={"company_id": COMPANY_ID, "view": "compact"})
        ids = client.get("/rest/v1.1/projects", params={"company_id": COMPANY_ID, "view": "ids"})
    assert v10.status_code == 200
    assert v10.json() == v11.json()
    first = v10.json()[0]
    assert first["id"] == PROJECT_ID
    assert first["name"] == PROJECT_NAME
    assert first["company"] == {"id": COMPANY_ID, "name": COMPANY_NAME}
    assert {"display_name", "project_number", "active", "created_at", "updated_at"} <= set(first)
    assert set(compact.json()[0]) == {"id", "name", "display_name"}
    assert ids.json() == [PROJECT_ID, SECOND_PROJECT_ID]


def test_projects_need_the_company_header_and_a_company_id(emulator: Emulator) -> None:
    with api(emulator, company_id=None) as client:
        no_header = client.get("/rest/v1.0/projects", params={"company_id": COMPANY_ID})
        wrong = client.get("/rest/v1.0/projects", params={"company_id": COMPANY_ID},
                           headers={"Procore-Company-Id": "42"})
    with api(emulator) as client:
        no_company = client.get("/rest/v1.0/projects")
        unknown = client.get("/rest/v1.0/projects", params={"company_id": 42},
                             headers={"Procore-Company-Id": "42"})
    assert no_header.status_code == 400
    assert no_header.json()["errors"].startswith("Missing Procore-Company-Id header!")
    assert wrong.status_code == 400
    assert no_company.status_code == 400
    assert unknown.status_code == 404
    assert unknown.json() == {"errors": "Not Found"}


def test_documents_routes_need_the_company_header(emulator: Emulator) -> None:
    token = emulator.token()["access_token"]
    answer = httpx.get(f"{emulator.api_url}/rest/v1.0/folders",
                       params={"project_id": PROJECT_ID}, headers=headers(token, None))
    company = httpx.get(f"{emulator.api_url}/rest/v1.0/companies/{COMPANY_ID}/folders",
                        headers=headers(token, None))
    assert answer.status_code == 400
    assert "Missing Procore-Company-Id header!" in answer.json()["errors"]
    assert company.status_code == 400


def test_project_routes_need_project_id(emulator: Emulator) -> None:
    with api(emulator) as client:
        answer = client.get("/rest/v1.0/folders")
        unknown = client.get("/rest/v1.0/folders", params={"project_id": 1})
    assert answer.status_code == 400
    assert "project_id" in answer.json()["errors"]
    assert unknown.status_code == 404


def test_unknown_route_is_a_404(emulator: Emulator) -> None:
    with api(emulator) as client:
        answer = client.get("/rest/v1.0/nothing-here")
    assert answer.status_code == 404
    assert "X-Rate-Limit-Limit" in answer.headers
