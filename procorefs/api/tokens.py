"""Token values and their one home on disk: the OS keyring, per environment and account.

A ``TokenSet`` never prints its secrets (``repr`` is redacted) and registers them with
``redact`` the moment it exists. ``KeyringTokenStore`` keeps one JSON record per
(environment namespace, account) under the keyring service ``procorefs:<namespace>``, plus a
pointer to the account used last, so ``procorefs mount`` needs no ``--account`` after one
``procorefs login``.

When the machine has no keyring backend, every operation raises ``KeyringUnavailable`` whose
message explains the environment-variable alternatives; nobody sees a keyring traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import keyring
import keyring.errors

from procorefs.api.errors import NotSignedIn
from procorefs.api.redact import register_secret

SERVICE_PREFIX = "procorefs:"
_CURRENT = "@current-account"

NO_KEYRING_HELP = (
    "no OS keyring is available to keep your Procore sign-in (install and unlock one, e.g. "
    "GNOME Keyring/KWallet, or the Windows/macOS credential store). Without a keyring, set "
    "PROCOREFS_CLIENT_ID and PROCOREFS_CLIENT_SECRET (a service account), or "
    "PROCOREFS_ACCESS_TOKEN (a token you obtained yourself)")


class KeyringUnavailable(NotSignedIn):
    """No keyring backend: tokens cannot be kept; the message says what to do instead."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(NO_KEYRING_HELP + (f" [{detail}]" if detail else ""))


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None   # Unix seconds, by the local clock
    lifetime: float | None = None     # expires_in as granted
    grant: str = "authorization_code"  # | "client_credentials" | "static"
    account: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        register_secret(self.access_token)
        register_secret(self.refresh_token)
        register_secret(self.client_secret)

    def expiring(self, now: float, margin: float | None = None) -> bool:
        """Expired, or close enough to it that a request should not start with it."""
        if self.expires_at is None:
            return False
        if margin is None:
            margin = min(300.0, max(5.0, 0.1 * (self.lifetime or 3600.0)))
        return now >= self.expires_at - margin

    @classmethod
    def from_grant(cls, body: Mapping[str, Any], *, now: float, grant: str,
                   client_id: str | None, client_secret: str | None,
                   account: str | None = None) -> TokenSet:
        """From a ``/oauth/token`` answer; raises ValueError if it has no usable token."""
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise ValueError("no access_token in the token response")
        refresh = body.get("refresh_token")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) \
            and not isinstance(expires_in, bool) and expires_in > 0 else None
        expires_at: float | None = None
        if lifetime is not None:
            expires_at = now + lifetime
            created = body.get("created_at")
            # created_at + expires_in is the documented expiry; never trust it to be later
            # than our own clock says (skew, or a server clock that was moved).
            if isinstance(created, int | float) and not isinstance(created, bool):
                expires_at = min(expires_at, float(created) + lifetime)
        return cls(access_token=access,
                   refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                   expires_at=expires_at, lifetime=lifetime, grant=grant, account=account,
                   client_id=client_id, client_secret=client_secret)

    def with_account(self, account: str) -> TokenSet:
        return TokenSet(**{**asdict(self), "account": account})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TokenSet | None:
        try:
            data = json.loads(text)
            known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            token = cls(**known)
        except (ValueError, TypeError):
            return None
        return token if isinstance(token.access_token, str) and token.access_token else None


class KeyringTokenStore:
    """Token records in the OS keyring, for one environment namespace."""

    def __init__(self, namespace: str) -> None:
        self.service = SERVICE_PREFIX + namespace

    def _call(self, fn: Any, *args: str) -> Any:
        try:
            return fn(*args)
        except keyring.errors.NoKeyringError as exc:
            raise KeyringUnavailable() from exc
        except keyring.errors.PasswordDeleteError:
            return None
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(type(exc).__name__) from exc
        except RuntimeError as exc:  # some backends raise bare RuntimeErrors when locked
            raise KeyringUnavailable(type(exc).__name__) from exc

    def current_account(self) -> str | None:
        value = self._call(keyring.get_password, self.service, _CURRENT)
        return value if isinstance(value, str) and value else None

    def load(self, account: str | None = None) -> TokenSet | None:
        account = account or self.current_account()
        if not account:
            return None
        raw = self._call(keyring.get_password, self.service, account)
        return TokenSet.from_json(raw) if isinstance(raw, str) else None

    def save(self, token: TokenSet, *, make_current: bool = True) -> None:
        account = token.account or "default"
        self._call(keyring.set_password, self.service, account, token.to_json())
        if make_current:
            self._call(keyring.set_password, self.service, _CURRENT, account)

    def delete(self, account: str) -> None:
        self._call(keyring.delete_password, self.service, account)
        if self.current_account() == account:
            self._call(keyring.delete_password, self.service, _CURRENT)
