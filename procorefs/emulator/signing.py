"""Presigned URLs and signed upload policies for the storage origin, and opaque download links.

Real Procore hands out AWS SigV4 presigned S3 URLs and POST policies; the emulator keeps their
*shape* (``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-Signature``, a base64 JSON ``policy`` with an
``expiration``) but signs with a plain HMAC-SHA256 over a canonical string, under one secret
kept in the emulator's database. What matters to a client is what it can observe: a URL or policy
works until it expires, and any change to the method, the path or a query parameter makes the
storage origin answer 403.

The v2.1 unified uploads use Procore's own style instead (``expires_at``, ``user_id``, ``sig``
query parameters, procore-api.md 5.2); :meth:`Signer.verify` accepts both.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

AMZ_ALGORITHM = "AWS4-HMAC-SHA256"
# S3 refuses presigned URLs valid for more than seven days.
MAX_EXPIRES = 7 * 24 * 3600
_CREDENTIAL_ID = "EMULATORACCESSKEY0001"
_REGION = "us-east-1"


class SignatureError(Exception):
    """A presigned URL or policy that storage must refuse (always HTTP 403 there)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def amz_date(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def parse_amz_date(text: str) -> float:
    try:
        parsed = time.strptime(text, "%Y%m%dT%H%M%SZ")
    except ValueError as exc:
        raise SignatureError("AuthorizationQueryParametersError",
                             "X-Amz-Date must be in the ISO8601 Long Format") from exc
    return float(_timegm(parsed))


def _timegm(parsed: time.struct_time) -> int:
    return calendar.timegm(parsed)


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class Policy:
    """A decoded, verified POST policy: its expiry and its exact-match field conditions."""

    expiration: float
    conditions: dict[str, str]
    max_size: int


class Signer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("signing key too short")
        self._key = key

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    @staticmethod
    def _canonical(method: str, path: str, params: Mapping[str, str]) -> str:
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                         for k, v in sorted(params.items()))
        return f"{method.upper()}\n{path}\n{query}"

    def token(self, *parts: str) -> str:
        """A MAC over ``parts`` (stable: no time in it), for opaque links such as /fas URLs."""
        return self._mac("\x1f".join(parts))[:40]

    def check_token(self, token: str, *parts: str) -> bool:
        return hmac.compare_digest(token, self.token(*parts))

    # -- S3 style ------------------------------------------------------------------------------

    def presign_s3(self, method: str, base_url: str, path: str, *, now: float,
                   expires_in: int, params: Mapping[str, str] | None = None) -> str:
        expires_in = max(1, min(int(expires_in), MAX_EXPIRES))
        query: dict[str, str] = dict(params or {})
        query.update({
            "X-Amz-Algorithm": AMZ_ALGORITHM,
            "X-Amz-Credential": f"{_CREDENTIAL_ID}/{amz_date(now)[:8]}/{_REGION}/s3/aws4_request",
            "X-Amz-Date": amz_date(now),
            "X-Amz-Expires": str(expires_in),
            "X-Amz-SignedHeaders": "host",
        })
        query["X-Amz-Signature"] = self._mac(self._canonical(method, path, query))
        return f"{base_url.rstrip('/')}{quote(path)}?{urlencode(query, quote_via=quote)}"

    # -- Procore (v2.1) style ------------------------------------------------------------------

    def presign_procore(self, method: str, base_url: str, path: str, *, expires_at: int,
                        params: Mapping[str, str] | None = None) -> str:
        query: dict[str, str] = dict(params or {})
        query["expires_at"] = str(int(expires_at))
        query["sig"] = self._mac(self._canonical(method, path, query))
        return f"{base_url.rstrip('/')}{quote(path)}?{urlencode(query, quote_via=quote)}"

    # -- verification --------------------------------------------------------------------------

    def verify(self, method: str, path: str, query: Mapping[str, str], *, now: float,
               force_expired: bool = False) -> float:
        """Check a presigned request; returns its expiry time or raises SignatureError.

        ``path`` is the decoded request path. As on S3 the signature covers the method, so a
        HEAD sent to a URL presigned for GET fails.
        """
        params = dict(query)
        if "X-Amz-Signature" in params:
            given = params.pop("X-Amz-Signature")
            for required in ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires"):
                if required not in params:
                    raise SignatureError(
                        "AuthorizationQueryParametersError",
                        f"Query-string authentication requires the {required} parameter")
            expected = self._mac(self._canonical(method, path, params))
            if not hmac.compare_digest(given, expected):
                raise SignatureError(
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you "
                    "provided.")
            try:
                expires_in = int(params["X-Amz-Expires"])
            except ValueError as exc:
                raise SignatureError("AuthorizationQueryParametersError",
                                     "X-Amz-Expires should be a number") from exc
            expires_at = parse_amz_date(params["X-Amz-Date"]) + expires_in
        elif "sig" in params:
            given = params.pop("sig")
            expected = self._mac(self._canonical(method, path, params))
            if not hmac.compare_digest(given, expected):
                raise SignatureError("SignatureDoesNotMatch", "Invalid signature")
            try:
                expires_at = float(params["expires_at"])
            except (KeyError, ValueError) as exc:
                raise SignatureError("AuthorizationQueryParametersError",
                                     "expires_at is required") from exc
        else:
            raise SignatureError("AccessDenied", "Request is not signed")
        if force_expired or now >= expires_at:
            raise SignatureError("AccessDenied", "Request has expired")
        return expires_at

    # -- POST policies ---------------------------------------------------------------------------

    def sign_policy(self, *, now: float, expires_in: int, conditions: Mapping[str, str],
                    max_size: int) -> dict[str, str]:
        """The signed form fields of an S3-style browser POST (without the payload fields)."""
        date = amz_date(now)
        credential = f"{_CREDENTIAL_ID}/{date[:8]}/{_REGION}/s3/aws4_request"
        cond: list[object] = [{k: v} for k, v in conditions.items()]
        cond.append(["content-length-range", 0, max_size])
        cond.append({"x-amz-algorithm": AMZ_ALGORITHM})
        cond.append({"x-amz-credential": credential})
        cond.append({"x-amz-date": date})
        document = {"expiration": iso8601(now + expires_in), "conditions": cond}
        policy = base64.b64encode(
            json.dumps(document, separators=(",", ":")).encode("utf-8")).decode("ascii")
        return {
            "policy": policy,
            "x-amz-credential": credential,
            "x-amz-algorithm": AMZ_ALGORITHM,
            "x-amz-date": date,
            "x-amz-signature": self._mac("policy\n" + policy),
        }

    def verify_policy(self, fields: Mapping[str, str], *, now: float,
                      force_expired: bool = False) -> Policy:
        """Check a POST form's policy, its signature, its expiry and every exact-match
        condition against the submitted fields (field names compare case-insensitively)."""
        lowered = {k.lower(): v for k, v in fields.items()}
        policy = lowered.get("policy")
        signature = lowered.get("x-amz-signature")
        if not policy or not signature:
            raise SignatureError("AccessDenied", "Bucket POST must contain a policy and a "
                                 "signature")
        if not hmac.compare_digest(signature, self._mac("policy\n" + policy)):
            raise SignatureError("SignatureDoesNotMatch",
                                 "The request signature we calculated does not match the "
                                 "signature you provided.")
        try:
            document = json.loads(base64.b64decode(policy, validate=True))
            expiration = float(_timegm(time.strptime(document["expiration"],
                                                     "%Y-%m-%dT%H:%M:%SZ")))
            raw_conditions = document["conditions"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError("InvalidPolicyDocument", "Invalid Policy") from exc
        if force_expired or now >= expiration:
            raise SignatureError("AccessDenied", "Invalid according to Policy: Policy expired.")
        conditions: dict[str, str] = {}
        max_size = 0
        for item in raw_conditions:
            if isinstance(item, dict):
                for key, value in item.items():
                    conditions[str(key).lower()] = str(value)
            elif isinstance(item, list) and len(item) == 3 and item[0] == "content-length-range":
                max_size = int(item[2])
        for key, value in conditions.items():
            if key == "bucket":
                continue
            if lowered.get(key) != value:
                raise SignatureError(
                    "AccessDenied",
                    f"Invalid according to Policy: Policy Condition failed: "
                    f'["eq", "${key}", "{value}"]')
        return Policy(expiration=expiration, conditions=conditions, max_size=max_size)
