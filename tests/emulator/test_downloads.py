"""Contract tests: ``file_versions[].url`` on the API origin (procore-api.md §4.9): Bearer
required, rate-limited, a 302 to a presigned expiring storage URL that serves the bytes."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from procorefs.emulator.seed import EMPTY_FILE_PATH, MULTI_VERSION_PATHS, PROJECT_ID
from tests.emulator.test_uploads_support import (
    MB,
    api,
    create_file,
    form_upload,
    latest_version_url,
    payload,
    resolve,
    segmented_upload,
    storage,
    uploaded_file,
)

STORAGE_URL_TTL = 3600  # EmulatorSettings.storage_url_ttl default


def test_the_download_link_needs_the_bearer_token(emulator: Any) -> None:
    data = payload(50_000, seed=40)
    with api(emulator) as client:
        link = uploaded_file(client, data, "drawing.pdf")
        assert link.startswith(emulator.api_url + "/fas/")
        with httpx.Client() as anonymous:
            refused = anonymous.get(link, follow_redirects=False)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

        answer = client.get(link, follow_redirects=False)
        assert answer.status_code == 302
        # Rate-limited like any API call: the three headers are there.
        for name in ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"):
            assert name in answer.headers
        location = answer.headers["Location"]
        assert location.startswith(emulator.storage_url)
        query = parse_qs(urlsplit(location).query)
        assert query["X-Amz-Expires"] == [str(STORAGE_URL_TTL)]
        assert "X-Amz-Signature" in query

    with storage() as s3:
        got = s3.get(location)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-Type"] == "application/pdf"
    assert 'filename="drawing.pdf"' in got.headers["Content-Disposition"]


def test_the_download_link_ignores_range_and_serves_no_bytes(emulator: Any) -> None:
    with api(emulator) as client:
        link = uploaded_file(client, b"0123456789")
        answer = client.get(link, headers={"Range": "bytes=0-3"}, follow_redirects=False)
        assert answer.status_code == 302
        assert answer.content == b"" or b"0123" not in answer.content


def test_an_edited_download_link_is_not_found(emulator: Any) -> None:
    with api(emulator) as client:
        link = uploaded_file(client, b"guarded")
        parts = urlsplit(link)
        forged_sig = urlunsplit(parts._replace(query=parts.query.replace("sig=", "sig=0")))
        assert client.get(forged_sig, follow_redirects=False).status_code == 404
        token = parts.path.rsplit("/", 1)[1]
        other = token[:-1] + ("1" if token[-1] != "1" else "2")
        edited = urlunsplit(parts._replace(path=parts.path[:-len(token)] + other))
        assert client.get(edited, follow_redirects=False).status_code == 404


def test_each_version_has_its_own_link(emulator: Any) -> None:
    with api(emulator) as client, storage() as s3:
        first = form_upload(client, b"version one", filename="v.txt")
        made = create_file(client, "v.txt", first["uuid"]).json()
        second = form_upload(client, b"version two", filename="v.txt")
        version = client.post("/rest/v1.0/file_versions",
                              params={"project_id": PROJECT_ID, "file_id": made["id"]},
                              json={"file_version": {"upload_uuid": second["uuid"]}})
        assert version.status_code == 201, version.text
        old_link = made["file_versions"][0]["url"]
        new_link = version.json()["url"]
        assert old_link != new_link
        assert s3.get(resolve(client, old_link)).content == b"version one"
        assert s3.get(resolve(client, new_link)).content == b"version two"


def test_a_twenty_mib_segmented_file_read_back_in_parallel_ranges(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=41 + i) for i in range(4)] + [payload(971_520, seed=45)]
    whole = b"".join(parts)
    with api(emulator) as client:
        upload = segmented_upload(client, parts, filename="big.bin")
        made = create_file(client, "big.bin", upload["uuid"])
        assert made.status_code == 201, made.text
        location = resolve(client, latest_version_url(made.json()))
    size = len(whole)
    step = 4 * 1024 * 1024

    def fetch(offset: int) -> bytes:
        with storage() as s3:
            answer = s3.get(location, headers={
                "Range": f"bytes={offset}-{min(offset + step, size) - 1}"})
        assert answer.status_code == 206
        return answer.content

    with ThreadPoolExecutor(max_workers=4) as pool:
        pieces = list(pool.map(fetch, range(0, size, step)))
    assert hashlib.sha256(b"".join(pieces)).hexdigest() == hashlib.sha256(whole).hexdigest()


def _seeded_file(client: httpx.Client, name: str) -> dict[str, Any]:
    found = client.get(f"/rest/v1.0/projects/{PROJECT_ID}/documents",
                       params={"view": "extended", "filters[document_type]": "file",
                               "filters[search]": name})
    assert found.status_code == 200, found.text
    entries = [e for e in found.json() if e["name"] == name]
    assert len(entries) == 1, [e["name"] for e in found.json()]
    entry: dict[str, Any] = entries[0]
    return entry


def test_seeded_versions_download_including_an_empty_file(demo_emulator: Any) -> None:
    empty_name = EMPTY_FILE_PATH.rsplit("/", 1)[1]
    multi_name = MULTI_VERSION_PATHS[0].rsplit("/", 1)[1]
    with api(demo_emulator) as client, storage() as s3:
        empty = _seeded_file(client, empty_name)["file"]["current_version"]
        location = resolve(client, empty["url"])
        got = s3.get(location)
        assert got.status_code == 200
        assert got.content == b""
        assert got.headers["Content-Length"] == "0"
        assert s3.get(location, headers={"Range": "bytes=0-"}).status_code == 416

        entry = _seeded_file(client, multi_name)
        shown = client.get(f"/rest/v1.0/files/{entry['id']}", params={"project_id": PROJECT_ID})
        versions = sorted(shown.json()["file_versions"], key=lambda v: v["number"])
        assert len(versions) > 1
        bodies = [s3.get(resolve(client, v["url"])).content for v in versions]
        assert [len(b) for b in bodies] == [v["size"] for v in versions]
        assert len(set(bodies)) == len(bodies)  # every version has its own bytes
        assert bodies[-1][:4] == b"%PDF"
