"""Contract tests: direct uploads v1.0/v1.1 (procore-api.md §5.1) and unified uploads v2.1
(§5.2) on the emulator, over loopback HTTP: create, storage transfer, completion, and use as
``file[upload_uuid]`` with the documented refusals."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from procorefs.emulator.seed import COMPANY_ID, OTHER_USER_LOGIN, PROJECT_ID
from tests.emulator.test_uploads_support import (
    MB,
    MIB,
    api,
    company_uploads,
    create_file,
    form_upload,
    latest_version_url,
    payload,
    project_uploads,
    put_segment,
    resolve,
    segment_specs,
    storage,
)

START_WINDOW = 3600  # EmulatorSettings.upload_start_window default, §5.1


def _download(client: httpx.Client, version_url: str) -> bytes:
    with storage() as s3:
        answer = s3.get(resolve(client, version_url))
    assert answer.status_code == 200, answer.text
    return answer.content


# -- v1.1 non-segmented ------------------------------------------------------------------------


def test_non_segmented_upload_round_trip(emulator: Any) -> None:
    data = payload(300_000, seed=1)
    with api(emulator) as client:
        upload = form_upload(client, data, filename="notes.txt")
        assert set(upload) >= {"uuid", "url", "fields"}
        assert upload["url"].startswith(emulator.storage_url)
        assert {"key", "policy", "x-amz-signature", "x-amz-date"} <= set(upload["fields"])

        shown = client.get(f"{project_uploads()}/{upload['uuid']}")
        assert shown.status_code == 200
        assert shown.json()["status"] == "complete"

        made = create_file(client, "notes.txt", upload["uuid"])
        assert made.status_code == 201, made.text
        assert made.json()["size"] == len(data)
        assert _download(client, latest_version_url(made.json())) == data


def test_v11_requires_response_filename_and_v10_does_not(emulator: Any) -> None:
    with api(emulator) as client:
        refused = client.post(project_uploads("v1.1"), json={})
        assert refused.status_code == 400
        assert "response_filename" in refused.json()["errors"]
        accepted = client.post(project_uploads("v1.0"), json={})
        assert accepted.status_code == 201, accepted.text


def test_create_accepts_bracket_keyed_form_body(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=2), payload(10, seed=3)]
    specs = segment_specs(parts)
    pairs = [("upload[response_filename]", "plan.pdf")]
    for index, spec in enumerate(specs):
        pairs += [(f"upload[segments][{index}][{k}]", str(v)) for k, v in spec.items()]
    with api(emulator) as client:
        created = client.post(project_uploads(), content=urlencode(pairs),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["status"] == "ready"
        assert [s["size"] for s in body["segments"]] == [5 * MB, 10]


# -- v1.1 segmented ----------------------------------------------------------------------------


def test_segmented_upload_of_several_parts(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=4), payload(5 * MB + 1, seed=5), payload(123_457, seed=6)]
    whole = b"".join(parts)
    with api(emulator) as client:
        created = client.post(project_uploads(), json={"response_filename": "model.rvt",
                                                       "segments": segment_specs(parts)})
        assert created.status_code == 201, created.text
        upload = created.json()
        assert upload["status"] == "ready"
        for segment, part in zip(upload["segments"], parts, strict=True):
            assert segment["url"].startswith(emulator.storage_url)
            assert segment["headers"]["x-amz-content-sha256"] == hashlib.sha256(part).hexdigest()
            assert segment["headers"]["content-length"] == str(len(part))
            assert segment["headers"]["content-md5"] == base64.b64encode(
                hashlib.md5(part).digest()).decode()
        etags = []
        with storage() as s3:
            for segment, part in zip(upload["segments"], parts, strict=True):
                answer = put_segment(s3, segment, part)
                assert answer.status_code == 200, answer.text
                assert answer.headers["ETag"] == f'"{hashlib.md5(part).hexdigest()}"'
                etags.append(answer.headers["ETag"])
        done = client.patch(f"{project_uploads()}/{upload['uuid']}",
                            json={"segments": [{"etag": e} for e in etags]})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "complete"
        assert [s["etag"] for s in done.json()["segments"]] == [e.strip('"') for e in etags]

        made = create_file(client, "model.rvt", upload["uuid"])
        assert made.status_code == 201, made.text
        assert made.json()["size"] == len(whole)
        got = _download(client, latest_version_url(made.json()))
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(whole).hexdigest()


@pytest.mark.parametrize(("sizes", "status"), [
    ([5 * MB, 5 * MB, 1], 201),
    ([5 * MB, 5 * MB - 1, 1], 422),       # a middle segment under 5 MB
    ([5 * MB - 1, 1], 422),               # the first of two
    ([5 * MB - 1], 201),                  # the last (and only) one may be small
    ([5 * 1024**3 + 1], 422),             # over 5 GB
])
def test_segment_size_rules(emulator: Any, sizes: list[int], status: int) -> None:
    segments = [{"size": s, "sha256": "a" * 64} for s in sizes]
    with api(emulator) as client:
        answer = client.post(project_uploads(), json={"response_filename": "x.bin",
                                                      "segments": segments})
        assert answer.status_code == status, answer.text
        if status == 422:
            assert isinstance(answer.json()["errors"], dict)


def test_segment_sha256_is_mandatory(emulator: Any) -> None:
    with api(emulator) as client:
        answer = client.post(project_uploads(), json={"response_filename": "x.bin",
                                                      "segments": [{"size": 10}]})
        assert answer.status_code == 422


def test_completion_checks_etags_in_order(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=7), payload(10, seed=8)]
    with api(emulator) as client:
        upload = client.post(project_uploads(), json={"response_filename": "a.bin",
                                                      "segments": segment_specs(parts)}).json()
        url = f"{project_uploads()}/{upload['uuid']}"
        etags: list[str] = []
        with storage() as s3:
            answer = put_segment(s3, upload["segments"][0], parts[0])
            etags.append(answer.headers["ETag"].strip('"'))
            # The second part is not in storage yet: completing now fails.
            early = client.patch(url, json={"segments": [{"etag": etags[0]}, {"etag": "0" * 32}]})
            assert early.status_code == 422
            answer = put_segment(s3, upload["segments"][1], parts[1])
            etags.append(answer.headers["ETag"].strip('"'))
        swapped = client.patch(url, json={"segments": [{"etag": etags[1]}, {"etag": etags[0]}]})
        assert swapped.status_code == 422
        missing = client.patch(url, json={"segments": [{"etag": etags[0]}]})
        assert missing.status_code == 422
        no_etag = client.patch(url, json={"segments": [{"etag": etags[0]}, {"size": 10}]})
        assert no_etag.status_code == 422
        assert client.get(url).json()["status"] == "ready"
        # Unquoted ETags, with the size and sha256 the spec also lists (§9.13).
        specs = segment_specs(parts)
        body = {"segments": [{"etag": e, "size": s["size"], "sha256": s["sha256"]}
                             for e, s in zip(etags, specs, strict=True)]}
        done = client.patch(url, json=body)
        assert done.status_code == 200, done.text
        # A retried completion (its first answer lost) is answered the same way.
        again = client.patch(url, json=body)
        assert again.status_code == 200
        assert again.json()["status"] == "complete"


def test_patch_of_an_expired_upload_is_gone(emulator: Any) -> None:
    with api(emulator) as client:
        upload = client.post(project_uploads(), json={
            "response_filename": "a.bin", "segments": segment_specs([b"x"])}).json()
        emulator.advance_clock(START_WINDOW + 1)
        answer = client.patch(f"{project_uploads()}/{upload['uuid']}",
                              json={"segments": [{"etag": hashlib.md5(b"x").hexdigest()}]})
        assert answer.status_code == 410
        assert "errors" in answer.json()


def test_storage_refuses_a_transfer_started_after_the_window(emulator: Any) -> None:
    with api(emulator) as client:
        segmented = client.post(project_uploads(), json={
            "response_filename": "a.bin", "segments": segment_specs([b"late"])}).json()
        plain = client.post(project_uploads(), json={"response_filename": "b.txt"}).json()
    emulator.advance_clock(START_WINDOW + 1)
    with storage() as s3:
        put = put_segment(s3, segmented["segments"][0], b"late")
        assert put.status_code == 403
        assert "<Code>AccessDenied</Code>" in put.text
        post = s3.post(plain["url"], data=plain["fields"], files={"file": ("b.txt", b"late")})
        assert post.status_code == 403


def test_a_started_upload_may_finish_after_the_window(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=9), payload(100, seed=10)]
    with api(emulator) as client:
        upload = client.post(project_uploads(), json={"response_filename": "a.bin",
                                                      "segments": segment_specs(parts)}).json()
        with storage() as s3:
            first = put_segment(s3, upload["segments"][0], parts[0])
            assert first.status_code == 200
            emulator.advance_clock(START_WINDOW + 1)
            second = put_segment(s3, upload["segments"][1], parts[1])
            assert second.status_code == 200, second.text
        done = client.patch(f"{project_uploads()}/{upload['uuid']}", json={
            "segments": [{"etag": first.headers["ETag"]}, {"etag": second.headers["ETag"]}]})
        assert done.status_code == 200, done.text


# -- ownership and use -------------------------------------------------------------------------


def test_only_the_creator_can_see_complete_or_use_an_upload(emulator: Any) -> None:
    with api(emulator) as owner, api(emulator, OTHER_USER_LOGIN) as other:
        upload = form_upload(owner, b"mine", filename="mine.txt")
        url = f"{project_uploads()}/{upload['uuid']}"
        assert other.get(url).status_code == 404
        assert other.patch(url, json={"segments": []}).status_code == 404
        stolen = create_file(other, "mine.txt", upload["uuid"])
        assert stolen.status_code == 422
        assert "upload_uuid" in stolen.json()["errors"]
        assert create_file(owner, "mine.txt", upload["uuid"]).status_code == 201


def test_an_upload_is_used_once(emulator: Any) -> None:
    with api(emulator) as client:
        upload = form_upload(client, b"once", filename="once.txt")
        first = create_file(client, "once.txt", upload["uuid"])
        assert first.status_code == 201, first.text
        second = create_file(client, "twice.txt", upload["uuid"])
        assert second.status_code == 422
        assert "upload_uuid" in second.json()["errors"]
        version = client.post("/rest/v1.0/file_versions",
                              params={"project_id": PROJECT_ID, "file_id": first.json()["id"]},
                              json={"file_version": {"upload_uuid": upload["uuid"]}})
        assert version.status_code == 422


def test_an_incomplete_upload_cannot_be_used(emulator: Any) -> None:
    with api(emulator) as client:
        segmented = client.post(project_uploads(), json={
            "response_filename": "a.bin", "segments": segment_specs([b"abc"])}).json()
        plain = client.post(project_uploads(), json={"response_filename": "b.txt"}).json()
        for uuid in (segmented["uuid"], plain["uuid"], "01JUNKNOWNUPLOAD0000000000"):
            answer = create_file(client, "x.bin", uuid)
            assert answer.status_code == 422, (uuid, answer.text)
            assert "upload_uuid" in answer.json()["errors"]


def test_company_uploads_belong_to_the_company_scope(emulator: Any) -> None:
    path = company_uploads()
    with api(emulator) as client:
        upload = form_upload(client, b"company level", path=path, filename="c.txt")
        assert client.get(f"{path}/{upload['uuid']}").json()["status"] == "complete"
        # Not visible through a project's uploads, nor usable for a project file.
        assert client.get(f"{project_uploads()}/{upload['uuid']}").status_code == 404
        assert create_file(client, "c.txt", upload["uuid"]).status_code == 422
        made = client.post(f"/rest/v1.0/companies/{COMPANY_ID}/files",
                           json={"file": {"name": "c.txt", "upload_uuid": upload["uuid"]}})
        assert made.status_code == 201, made.text


def test_upload_routes_need_a_token_and_the_company_header(emulator: Any) -> None:
    body = {"response_filename": "a.txt"}
    with httpx.Client(base_url=emulator.api_url) as anonymous:
        answer = anonymous.post(project_uploads(), json=body)
        assert answer.status_code == 401
        assert "WWW-Authenticate" in answer.headers
    with api(emulator, company_id=None) as client:
        assert client.post(project_uploads(), json=body).status_code == 400
    with api(emulator) as client:
        assert client.post(project_uploads(project_id=999_999), json=body).status_code == 404


# -- v2.1 unified uploads ----------------------------------------------------------------------

V2 = f"/rest/v2.1/companies/{COMPANY_ID}/projects/{PROJECT_ID}/uploads"


def _v2_create(client: httpx.Client, parts: list[bytes], **extra: Any) -> httpx.Response:
    whole = b"".join(parts)
    return client.post(V2, json={
        "file_name": "report: final?.pdf", "file_size": len(whole),
        "content_type": "application/pdf", "sha256": hashlib.sha256(whole).hexdigest(),
        "segments": segment_specs(parts), **extra})


def test_unified_upload_flow(emulator: Any) -> None:
    parts = [payload(5 * MIB + 1, seed=11), payload(1000, seed=12)]
    with api(emulator) as client, storage() as s3:
        created = _v2_create(client, parts)
        assert created.status_code == 201, created.text
        data = created.json()["data"]
        assert data["status"] == "ready"
        assert isinstance(data["upload_id"], str)
        assert all(s["headers"] == {"Content-Length": str(len(p))}
                   for s, p in zip(data["segments"], parts, strict=True))
        url = f"{V2}/{data['upload_id']}"

        second = s3.put(data["segments"][1]["url"], content=parts[1],
                        headers=data["segments"][1]["headers"])
        assert second.status_code == 200, second.text
        partial = client.patch(url, json={"part_etags": [None, second.headers["ETag"]]})
        assert partial.status_code == 200, partial.text
        assert partial.json()["data"]["status"] == "receiving"

        status = client.get(url).json()["data"]
        assert status["status"] == "receiving"
        assert status["sanitized_file_name"] == "report_ final_.pdf"
        remaining = status["segments"]
        assert len(remaining) == 1  # fresh URLs for what is still missing
        first = s3.put(remaining[0]["url"], content=parts[0], headers=remaining[0]["headers"])
        assert first.status_code == 200, first.text

        done = client.patch(url, json={"part_etags": [first.headers["ETag"],
                                                      second.headers["ETag"]]})
        assert done.status_code == 200, done.text
        assert done.json()["data"] == {"upload_id": data["upload_id"], "status": "complete"}
        assert client.get(url).json()["data"]["status"] == "available"

        made = create_file(client, "report.pdf", data["upload_id"])
        assert made.status_code == 201, made.text
        assert made.json()["size"] == sum(map(len, parts))


@pytest.mark.parametrize(("sizes", "status"), [
    ([5 * MIB, 10], 422),            # exactly 5 MiB is not more than 5 MiB
    ([5 * MIB + 1, 10], 201),
    ([100 * MIB + 1], 422),          # over 100 MiB
    ([100 * MIB], 201),
    ([6 * MIB] * 10_001, 422),       # over 10,000 parts
])
def test_unified_part_limits(emulator: Any, sizes: list[int], status: int) -> None:
    segments = [{"size": s, "sha256": "b" * 64} for s in sizes]
    with api(emulator) as client:
        answer = client.post(V2, json={"file_name": "a.bin", "file_size": sum(sizes),
                                       "segments": segments})
        assert answer.status_code == status, answer.text[:300]


def test_unified_upload_checks_part_bytes_and_owner(emulator: Any) -> None:
    parts = [b"right bytes"]
    with api(emulator) as client, api(emulator, OTHER_USER_LOGIN) as other, storage() as s3:
        data = _v2_create(client, parts).json()["data"]
        segment = data["segments"][0]
        wrong = s3.put(segment["url"], content=b"wrong bytes", headers=segment["headers"])
        assert wrong.status_code == 400
        assert "errors" in wrong.json()
        authed = s3.put(segment["url"], content=parts[0],
                        headers={**segment["headers"], "Authorization": "Bearer nope"})
        assert authed.status_code == 400
        assert other.get(f"{V2}/{data['upload_id']}").status_code == 404
        assert other.patch(f"{V2}/{data['upload_id']}",
                           json={"part_etags": [None]}).status_code == 404
