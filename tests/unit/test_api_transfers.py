"""Upload and download mechanics with MockTransport: digests, state, headers, expiry."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from procorefs.api import FileVersion, Scope, UploadState
from procorefs.api.downloads import location_expiry
from procorefs.api.uploads import digest_parts
from tests.api.fakes import API, STORAGE, jsonr, make_client

MiB = 1024 * 1024
SCOPE = Scope(11, 22)


def test_digests_in_one_pass(tmp_path: Path) -> None:
    data = bytes(range(256)) * (4096 * 7) + b"tail"
    src = tmp_path / "f"
    src.write_bytes(data)
    parts = digest_parts(src, 3 * MiB)
    assert [p.size for p in parts] == [3 * MiB, 3 * MiB, len(data) - 6 * MiB]
    for i, p in enumerate(parts):
        chunk = data[i * 3 * MiB:(i + 1) * 3 * MiB]
        assert p.sha256 == hashlib.sha256(chunk).hexdigest()
        assert p.md5 == hashlib.md5(chunk).hexdigest()
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * (2 * MiB))
    assert len(digest_parts(exact, MiB)) == 2  # no empty trailing part
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert digest_parts(empty, MiB) == ()


def test_upload_state_round_trip_and_garbage(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"a" * 100)
    parts = digest_parts(src, 64)
    state = UploadState(uuid="U", company_id=1, project_id=None, filename="f", size=100,
                        mtime_ns=5, part_size=64, parts=parts, etags=("e1", None))
    again = UploadState.from_json(state.to_json())
    assert again == state and again.parts_done == 1 and again.bytes_done == 64
    for bad in ("{}", "[]", "nope", json.dumps({**json.loads(state.to_json()), "version": 9}),
                json.dumps({**json.loads(state.to_json()), "etags": ["x"]})):
        with pytest.raises(ValueError):
            UploadState.from_json(bad)


class FakeStorage:
    """Uploads API plus a storage origin that checks what S3 checks."""

    def __init__(self, expire_first: bool = False) -> None:
        self.requests: list[httpx.Request] = []
        self.uploads: list[dict[str, Any]] = []
        self.parts: dict[tuple[str, int], bytes] = {}
        self.expire_first = expire_first

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if url.startswith(STORAGE):
            assert "authorization" not in request.headers
            if request.method == "POST":
                return httpx.Response(204)
            uuid, n = request.url.params["u"], int(request.url.params["n"])
            if self.expire_first and uuid == "U0":
                return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
            body = request.read()
            seg = self.uploads[int(uuid[1:])]["segments"][n]
            assert request.headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
            assert request.headers["content-md5"] == base64.b64encode(
                hashlib.md5(body).digest()).decode()
            assert len(body) == seg["size"]
            self.parts[(uuid, n)] = body
            return httpx.Response(200, headers={"etag": f'"etag-{uuid}-{n}"'})
        assert request.headers["authorization"].startswith("Bearer ")
        if request.method == "POST":
            body = json.loads(request.content)
            uuid = f"U{len(self.uploads)}"
            if "segments" not in body:
                upload = {"uuid": uuid, "url": STORAGE + "/bucket",
                          "fields": {"key": f"k/{uuid}", "policy": "p"}}
            else:
                upload = {"uuid": uuid, "status": "ready", "segments": [
                    {**s, "url": f"{STORAGE}/p?u={uuid}&n={i}",
                     "headers": {"x-amz-content-sha256": s["sha256"],
                                 "content-length": str(s["size"]),
                                 "content-md5": base64.b64encode(
                                     bytes.fromhex(s["md5"])).decode()}}
                    for i, s in enumerate(body["segments"])]}
            self.uploads.append({**upload, **body})
            return jsonr(201, upload)
        if request.method == "PATCH":
            return jsonr(200, {"uuid": request.url.path.rsplit("/", 1)[1], "status": "complete"})
        return jsonr(404, {})


def test_small_file_is_one_api_call_and_one_form_post(tmp_path: Path) -> None:
    src = tmp_path / "small.txt"
    src.write_bytes(b"hello")
    fake = FakeStorage()
    with make_client(tmp_path, fake) as client:
        assert client.upload(SCOPE, src, filename="small.txt") == "U0"
    assert [(r.method, str(r.url).startswith(STORAGE)) for r in fake.requests] == [
        ("POST", False), ("POST", True)]
    form = fake.requests[1].read()
    assert b'name="policy"' in form and b'name="file"; filename="small.txt"' in form
    assert b"hello" in form
    create = json.loads(fake.requests[0].content)
    assert create["response_filename"] == "small.txt"
    assert fake.requests[0].url.path == "/rest/v1.1/projects/22/uploads"


def test_segmented_upload_headers_order_and_completion(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(251)) * (int(6.5 * MiB) // 251 * 2))
    fake = FakeStorage()
    seen: list[tuple[int, int]] = []
    with make_client(tmp_path, fake, upload_part_size=6 * MiB, small_upload_max=0,
                     upload_parallel=3) as client:
        uuid = client.upload(SCOPE, src, filename="big.bin",
                             progress=lambda d, t: seen.append((d, t)))
    patch = next(r for r in fake.requests if r.method == "PATCH")
    body = json.loads(patch.content)["segments"]
    assert [s["etag"] for s in body] == [f"etag-{uuid}-{i}" for i in range(len(body))]
    assert all({"size", "sha256", "etag"} <= set(s) for s in body)
    joined = b"".join(fake.parts[(uuid, i)] for i in range(len(body)))
    assert joined == src.read_bytes()
    assert seen[-1] == (src.stat().st_size, src.stat().st_size)


def test_storage_403_means_a_new_upload(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(b"z" * (7 * MiB))
    fake = FakeStorage(expire_first=True)
    with make_client(tmp_path, fake, upload_part_size=6 * MiB, small_upload_max=0) as client:
        assert client.upload(SCOPE, src, filename="big.bin") == "U1"
    assert len(fake.uploads) == 2


def test_location_expiry() -> None:
    now = 1_750_000_000.0
    amz = ("https://s3/x?X-Amz-Date=20250615T150000Z&X-Amz-Expires=600&X-Amz-Signature=s")
    signed = 1_749_999_600.0  # 2025-06-15T15:00:00Z, 400 s before now
    # The earlier of "signed + 600" and "now + 600", less a margin.
    expiry = location_expiry(amz, now)
    assert signed + 600 - 60 <= expiry < signed + 600
    assert location_expiry("https://s3/x?X-Amz-Expires=600", now) == pytest.approx(
        now + 600 - 60)
    assert location_expiry(f"https://s3/x?Expires={int(now) + 100}", now) == pytest.approx(
        now + 90)
    assert location_expiry("https://s3/x", now, default_ttl=300) == pytest.approx(now + 270)
    assert location_expiry("https://s3/x?X-Amz-Expires=soon", now, 300) == pytest.approx(
        now + 270)


def test_download_resolves_once_and_never_sends_the_token_to_storage(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    resolves = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(STORAGE):
            assert "authorization" not in request.headers
            if request.url.params.get("gen") == "1" and resolves[0] == 1 and \
                    request.headers["range"] == "bytes=100-109":
                return httpx.Response(403)  # the first location "expired"
            start, _, end = request.headers["range"].removeprefix("bytes=").partition("-")
            lo, hi = int(start), int(end) if end else len(data) - 1
            if lo >= len(data):
                return httpx.Response(416)
            return httpx.Response(206, content=data[lo:hi + 1])
        assert request.headers["authorization"] == "Bearer static-token-value"
        resolves[0] += 1
        return httpx.Response(302, headers={
            "location": f"{STORAGE}/obj?gen={resolves[0]}&X-Amz-Expires=3600"})

    version = FileVersion(id=1, number=1, size=len(data), url=f"{API}/fas/files/1",
                          created_at=None)
    with make_client(tmp_path, handler) as client:
        assert client.read_range(version, 0, 10) == data[:10]
        assert client.read_range(version, 50, 10) == data[50:60]
        assert resolves[0] == 1
        assert client.read_range(version, 100, 10) == data[100:110]  # 403, re-resolve
        assert resolves[0] == 2
        assert client.read_range(version, len(data) + 5, 10) == b""


def test_download_resumes_after_a_broken_body(tmp_path: Path) -> None:
    data = b"0123456789" * 1000
    calls: list[str] = []

    class Broken(httpx.SyncByteStream):
        def __init__(self, body: bytes) -> None:
            self.body = body

        def __iter__(self):  # type: ignore[no-untyped-def]
            yield self.body[:3000]
            raise httpx.ReadError("connection reset")

    def handler(request: httpx.Request) -> httpx.Response:
        if not str(request.url).startswith(STORAGE):
            return httpx.Response(302, headers={"location": f"{STORAGE}/o"})
        calls.append(request.headers["range"])
        lo = int(request.headers["range"].removeprefix("bytes=").partition("-")[0])
        if len(calls) == 1:
            return httpx.Response(206, stream=Broken(data[lo:]))
        return httpx.Response(206, content=data[lo:])

    version = FileVersion(id=1, number=1, size=len(data), url=f"{API}/fas/1", created_at=None)
    out = tmp_path / "out"
    with make_client(tmp_path, handler) as client:
        assert client.download_to(version, out, parallel=1) == len(data)
    assert out.read_bytes() == data
    assert calls == ["bytes=0-", "bytes=3000-"]  # to the end, resumed at the first gap
