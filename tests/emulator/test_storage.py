"""Contract tests: the storage origin (procore-api.md §4.9, §5.1): presigned part PUTs and
their checks, the POST policy, presigned ranged GETs, refusal of ``Authorization``, expiry, and
the connection-reset faults on a GET and a PUT."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.emulator.test_uploads_support import (
    MB,
    api,
    create_file,
    latest_version_url,
    payload,
    project_uploads,
    put_segment,
    resolve,
    segment_specs,
    storage,
    uploaded_file,
)

STORAGE_URL_TTL = 3600  # EmulatorSettings.storage_url_ttl default


def _create_segmented(client: httpx.Client, parts: list[bytes],
                      specs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    answer = client.post(project_uploads(), json={
        "response_filename": "part.bin", "segments": specs or segment_specs(parts)})
    assert answer.status_code == 201, answer.text
    upload: dict[str, Any] = answer.json()
    return upload


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _code(answer: httpx.Response) -> str:
    text = answer.text
    start = text.index("<Code>") + len("<Code>")
    return text[start:text.index("</Code>")]


# -- Authorization, signatures, expiry ------------------------------------------------------


def test_any_request_with_authorization_is_refused(emulator: Any) -> None:
    data = payload(2000, seed=20)
    with api(emulator) as client, storage() as s3:
        upload = _create_segmented(client, [data])
        segment = upload["segments"][0]
        refused = put_segment(s3, segment, data, Authorization="Bearer secret-token")
        assert refused.status_code == 400
        assert _code(refused) == "InvalidArgument"

        plain = client.post(project_uploads(), json={"response_filename": "a.txt"}).json()
        posted = s3.post(plain["url"], data=plain["fields"], files={"file": ("a", data)},
                         headers={"Authorization": "Bearer secret-token"})
        assert posted.status_code == 400

        location = resolve(client, uploaded_file(client, data))
        got = s3.get(location, headers={"Authorization": "Bearer secret-token"})
        assert got.status_code == 400
        # Nothing was spoiled: the same requests without the header go through.
        assert put_segment(s3, segment, data).status_code == 200
        assert s3.get(location).content == data


def test_a_tampered_presigned_url_is_forbidden(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=21), payload(10, seed=22)]
    with api(emulator) as client, storage() as s3:
        upload = _create_segmented(client, parts)
        segment = upload["segments"][1]
        # Part 2's body sent to a URL edited to say part 1.
        moved = dict(segment, url=_with_query(segment["url"], partNumber="1"))
        answer = put_segment(s3, moved, parts[1])
        assert answer.status_code == 403
        assert _code(answer) == "SignatureDoesNotMatch"

        location = resolve(client, uploaded_file(client, b"some bytes"))
        forged = _with_query(location, **{"X-Amz-Expires": "604800"})
        assert s3.get(forged).status_code == 403
        unsigned = urlunsplit(urlsplit(location)._replace(query=""))
        assert s3.get(unsigned).status_code == 403


def test_an_expired_presigned_get_is_forbidden_until_resolved_again(emulator: Any) -> None:
    data = payload(10_000, seed=23)
    with api(emulator) as client, storage() as s3:
        link = uploaded_file(client, data)
        location = resolve(client, link)
        assert s3.get(location).status_code == 200
        emulator.advance_clock(STORAGE_URL_TTL + 1)
        expired = s3.get(location)
        assert expired.status_code == 403
        assert _code(expired) == "AccessDenied"
        fresh = resolve(client, link)
        assert s3.get(fresh).content == data


def test_expire_urls_fault(emulator: Any) -> None:
    with api(emulator) as client, storage() as s3:
        location = resolve(client, uploaded_file(client, b"soon gone"))
        emulator.set_faults([{"action": "expire_urls", "origin": "storage", "times": 1}])
        assert s3.get(location).status_code == 403
        assert s3.get(location).status_code == 200


# -- segment checks ------------------------------------------------------------------------


def test_a_segment_whose_bytes_differ_from_its_sha256_is_refused(emulator: Any) -> None:
    part = payload(4000, seed=24)
    with api(emulator) as client, storage() as s3:
        upload = _create_segmented(client, [part], specs=segment_specs([part], with_md5=False))
        segment = upload["segments"][0]
        assert "content-md5" not in segment["headers"]
        corrupted = bytes([part[0] ^ 1]) + part[1:]
        answer = put_segment(s3, segment, corrupted)
        assert answer.status_code == 400
        assert _code(answer) == "XAmzContentSHA256Mismatch"
        assert put_segment(s3, segment, part).status_code == 200


def test_a_segment_whose_bytes_differ_from_its_content_md5_is_refused(emulator: Any) -> None:
    part = payload(4000, seed=25)
    with api(emulator) as client, storage() as s3:
        # The SHA-256 is right, the declared MD5 is not: storage checks what it receives.
        spec = segment_specs([part])[0]
        spec["md5"] = hashlib.md5(b"something else").hexdigest()
        upload = _create_segmented(client, [part], specs=[spec])
        answer = put_segment(s3, upload["segments"][0], part)
        assert answer.status_code == 400
        assert _code(answer) == "BadDigest"


def test_segment_headers_are_signed(emulator: Any) -> None:
    part = payload(4000, seed=26)
    with api(emulator) as client, storage() as s3:
        upload = _create_segmented(client, [part])
        segment = upload["segments"][0]
        other_md5 = put_segment(s3, segment, part, **{"content-md5": "AAAAAAAAAAAAAAAAAAAAAA=="})
        assert other_md5.status_code == 403
        other_sha = put_segment(s3, segment, part,
                                **{"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
        assert other_sha.status_code == 403


def test_a_segment_of_the_wrong_size_is_refused(emulator: Any) -> None:
    part = payload(4000, seed=27)
    with api(emulator) as client, storage() as s3:
        upload = _create_segmented(client, [part])
        segment = upload["segments"][0]
        headers = {k: v for k, v in segment["headers"].items() if k != "content-length"}
        answer = s3.put(segment["url"], content=part[:-1], headers=headers)
        assert answer.status_code == 400


def test_the_post_policy_binds_its_fields(emulator: Any) -> None:
    with api(emulator) as client, storage() as s3:
        plain = client.post(project_uploads(), json={"response_filename": "a.txt",
                                                     "response_content_type": "text/plain"}
                            ).json()
        for name, value in (("Content-Type", "text/html"), ("key", "companies/1/other"),
                            ("x-amz-signature", "0" * 64)):
            fields = dict(plain["fields"], **{name: value})
            answer = s3.post(plain["url"], data=fields, files={"file": ("a.txt", b"x")})
            assert answer.status_code == 403, name
        ok = s3.post(plain["url"], data=plain["fields"], files={"file": ("a.txt", b"x")})
        assert ok.status_code == 204
        assert ok.headers["ETag"] == f'"{hashlib.md5(b"x").hexdigest()}"'


# -- ranged GETs ---------------------------------------------------------------------------


def test_range_reads(emulator: Any) -> None:
    size = 3 * MB
    data = payload(size, seed=28)
    with api(emulator) as client, storage() as s3:
        location = resolve(client, uploaded_file(client, data, "range.bin"))
        whole = s3.get(location)
        assert whole.status_code == 200
        assert whole.content == data
        etag = whole.headers["ETag"]
        assert etag == f'"{hashlib.md5(data).hexdigest()}"'
        assert whole.headers["Accept-Ranges"] == "bytes"
        assert 'filename="range.bin"' in whole.headers["Content-Disposition"]

        cases = {
            "bytes=100-199": (100, 199),
            "bytes=2999900-": (2_999_900, size - 1),       # open-ended
            "bytes=-50": (size - 50, size - 1),             # suffix
            "bytes=2999990-9999999": (2_999_990, size - 1),  # end clipped to the object
            "bytes=0-0": (0, 0),
        }
        for header, (first, last) in cases.items():
            answer = s3.get(location, headers={"Range": header})
            assert answer.status_code == 206, header
            assert answer.content == data[first:last + 1], header
            assert answer.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
            assert int(answer.headers["Content-Length"]) == last - first + 1
            assert answer.headers["ETag"] == etag

        unsatisfiable = s3.get(location, headers={"Range": f"bytes={size}-"})
        assert unsatisfiable.status_code == 416
        assert unsatisfiable.headers["Content-Range"] == f"bytes */{size}"
        # Several ranges: the whole object, as S3 answers.
        several = s3.get(location, headers={"Range": "bytes=0-1,5-6"})
        assert several.status_code == 200
        assert len(several.content) == size
        assert s3.get(location, headers={"If-None-Match": etag}).status_code == 304
        stale = s3.get(location, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
        assert stale.status_code == 200


# -- connection-reset faults -----------------------------------------------------------------


def test_reset_fault_on_a_get(emulator: Any) -> None:
    data = payload(2 * MB, seed=29)
    with api(emulator) as client, storage() as s3:
        location = resolve(client, uploaded_file(client, data))
        emulator.set_faults([{"action": "reset", "origin": "storage", "method": "GET",
                              "after_bytes": 100_000, "times": 1}])
        with pytest.raises(httpx.RemoteProtocolError):
            s3.get(location)
        retried = s3.get(location)
        assert retried.status_code == 200
        assert retried.content == data


def test_reset_fault_on_a_put(emulator: Any) -> None:
    parts = [payload(5 * MB, seed=30), payload(1000, seed=31)]
    with api(emulator) as client:
        upload = _create_segmented(client, parts)
        emulator.set_faults([{"action": "reset", "origin": "storage", "method": "PUT",
                              "after_bytes": 256 * 1024, "times": 1}])
        with storage() as s3, pytest.raises(httpx.TransportError):
            put_segment(s3, upload["segments"][0], parts[0])
        etags = []
        with storage() as s3:
            for segment, part in zip(upload["segments"], parts, strict=True):
                answer = put_segment(s3, segment, part)
                assert answer.status_code == 200, answer.text
                etags.append(answer.headers["ETag"])
        done = client.patch(f"{project_uploads()}/{upload['uuid']}",
                            json={"segments": [{"etag": e} for e in etags]})
        assert done.status_code == 200, done.text
        made = create_file(client, "after-reset.bin", upload["uuid"])
        assert made.status_code == 201, made.text
        with storage() as s3:
            got = s3.get(resolve(client, latest_version_url(made.json()))).content
        assert got == b"".join(parts)
