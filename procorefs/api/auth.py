"""OAuth 2.0 against Procore's login host, and the ``httpx.Auth`` that signs API requests.

Three credential kinds (shared/procore-api.md 1.3):
- ``UserCredentials``: an authorization-code sign-in kept in the keyring. Refreshed ahead of
  expiry and once after a 401. Procore refresh tokens are single-use, so a refresh is
  single-flight across threads (a lock) and across processes (a ``filelock`` in the state
  dir); after taking the lock the store is read again, because another process may already
  have refreshed, and the new pair is written to the store before anybody uses it.
- ``ClientCredentials``: a service account (DMSA); no refresh token, a new grant on expiry.
- ``StaticCredentials``: ``PROCOREFS_ACCESS_TOKEN``; nothing to refresh.

``ProcoreAuth`` attaches the Bearer token only to hosts the settings trust, whatever the
caller asked for: a token must never reach a storage host.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import filelock
import httpx

from procorefs import __version__
from procorefs.api.errors import ApiError, NetworkError, NotSignedIn, Unauthorized
from procorefs.api.redact import redact, register_secret
from procorefs.api.retry import NOT_SENT_ERRORS, Backoff
from procorefs.api.tokens import KeyringTokenStore, KeyringUnavailable, TokenSet
from procorefs.clock import Clock
from procorefs.config import Settings, ensure_private_dir

log = logging.getLogger(__name__)

USER_AGENT = f"procorefs/{__version__}"
_LOCK_TIMEOUT = 120.0


class OAuthClient:
    """The token, revoke and authorize endpoints of one login origin."""

    def __init__(self, login_url: str, http: httpx.Client, clock: Clock,
                 backoff: Backoff | None = None) -> None:
        self.login_url = login_url.rstrip("/")
        self._http = http
        self._clock = clock
        self._backoff = backoff or Backoff(max_retries=3)

    def authorize_url(self, client_id: str, redirect_uri: str, state: str) -> str:
        query = urlencode({"response_type": "code", "client_id": client_id,
                           "redirect_uri": redirect_uri, "state": state})
        return f"{self.login_url}/oauth/authorize?{query}"

    def exchange_code(self, code: str, *, client_id: str, client_secret: str | None,
                      redirect_uri: str) -> TokenSet:
        register_secret(code)
        body = self._token_call({"grant_type": "authorization_code", "code": code,
                                 "client_id": client_id, "client_secret": client_secret or "",
                                 "redirect_uri": redirect_uri})
        return self._token(body, "authorization_code", client_id, client_secret)

    def refresh(self, token: TokenSet, *, client_id: str, client_secret: str | None,
                redirect_uri: str | None = None) -> TokenSet:
        assert token.refresh_token is not None
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token,
                "client_id": client_id, "client_secret": client_secret or ""}
        if redirect_uri:
            form["redirect_uri"] = redirect_uri
        body = self._token_call(form, repeatable=False)
        new = self._token(body, "authorization_code", client_id, client_secret)
        return TokenSet(access_token=new.access_token,
                        refresh_token=new.refresh_token or None, expires_at=new.expires_at,
                        lifetime=new.lifetime, grant=token.grant, account=token.account,
                        client_id=client_id, client_secret=client_secret)

    def client_credentials(self, client_id: str, client_secret: str) -> TokenSet:
        body = self._token_call({"grant_type": "client_credentials", "client_id": client_id,
                                 "client_secret": client_secret})
        return self._token(body, "client_credentials", client_id, client_secret)

    def revoke(self, token: str, *, client_id: str | None, client_secret: str | None) -> None:
        """Best effort: Procore answers 200 even for unknown tokens."""
        form = {"token": token}
        if client_id:
            form["client_id"] = client_id
        if client_secret:
            form["client_secret"] = client_secret
        try:
            response = self._http.post(f"{self.login_url}/oauth/revoke", data=form)
        except httpx.TransportError as exc:
            raise NetworkError(f"cannot reach {self.login_url} to revoke the token: "
                               f"{type(exc).__name__}", path="/oauth/revoke") from None
        if response.status_code >= 400:
            raise ApiError(f"token revocation refused: {_oauth_error(response)}",
                           status=response.status_code, method="POST", path="/oauth/revoke")

    # ---------------------------------------------------------------------------------------

    def _token(self, body: Mapping[str, Any], grant: str, client_id: str,
               client_secret: str | None) -> TokenSet:
        try:
            return TokenSet.from_grant(body, now=self._clock.time(), grant=grant,
                                       client_id=client_id, client_secret=client_secret)
        except ValueError as exc:
            raise Unauthorized(f"the login server answered without a token ({exc})",
                               method="POST", path="/oauth/token") from None

    def _token_call(self, form: dict[str, str], *, repeatable: bool = True) -> Mapping[str, Any]:
        """POST /oauth/token. A refresh is never repeated once it may have been processed:
        it burns the refresh token whether or not we saw the answer."""
        for secret_key in ("code", "refresh_token", "client_secret"):
            register_secret(form.get(secret_key))
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(f"{self.login_url}/oauth/token", data=form)
            except NOT_SENT_ERRORS as exc:
                if self._backoff.allows(attempt):
                    self._clock.sleep(self._backoff.delay(attempt))
                    continue
                raise NetworkError(f"cannot reach the login server {self.login_url}: "
                                   f"{type(exc).__name__}", path="/oauth/token") from None
            except httpx.TransportError as exc:
                if repeatable and self._backoff.allows(attempt):
                    self._clock.sleep(self._backoff.delay(attempt))
                    continue
                raise NetworkError(f"the login server's answer was lost "
                                   f"({type(exc).__name__}); sign in again if this persists",
                                   path="/oauth/token") from None
            status = response.status_code
            if (status in (429, 503) or (status >= 500 and repeatable)) \
                    and self._backoff.allows(attempt):
                retry_after = response.headers.get("retry-after")
                hint = float(retry_after) if retry_after and retry_after.isdigit() else None
                self._clock.sleep(self._backoff.delay(attempt, hint))
                continue
            if status >= 400:
                error = _oauth_error(response)
                if status in (400, 401):
                    raise Unauthorized(f"the login server refused the request: {error}",
                                       status=status, method="POST", path="/oauth/token")
                raise ApiError(f"the login server failed: {error}", status=status,
                               method="POST", path="/oauth/token")
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, Mapping):
                raise Unauthorized("the login server's answer is not JSON", status=status,
                                   method="POST", path="/oauth/token")
            return body


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return redact(response.text[:200]) or f"HTTP {response.status_code}"
    if isinstance(body, Mapping):
        parts = [str(body[k]) for k in ("error", "error_description", "errors", "message")
                 if body.get(k)]
        if parts:
            return redact(": ".join(parts))
    return f"HTTP {response.status_code}"


# --- credential sources ----------------------------------------------------------------------

class Credentials(Protocol):
    kind: str        # "user" | "service" | "static"
    identity: str    # stable across refreshes: keys the rate limiter

    def token(self) -> TokenSet:
        """A token good for at least the next request."""

    def after_unauthorized(self, rejected: TokenSet) -> TokenSet | None:
        """A 401 answered ``rejected``: a fresh token, or None if there is no way to one."""


class StaticCredentials:
    kind = "static"

    def __init__(self, access_token: str) -> None:
        self._token = TokenSet(access_token=access_token, grant="static")
        self.identity = "static:" + _digest(access_token)

    def token(self) -> TokenSet:
        return self._token

    def after_unauthorized(self, rejected: TokenSet) -> TokenSet | None:
        return None


class ClientCredentials:
    kind = "service"

    def __init__(self, oauth: OAuthClient, client_id: str, client_secret: str,
                 clock: Clock) -> None:
        self._oauth = oauth
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._current: TokenSet | None = None
        self.identity = "service:" + client_id
        register_secret(client_secret)

    def token(self) -> TokenSet:
        with self._lock:
            if self._current is None or self._current.expiring(self._clock.time()):
                self._current = self._grant()
            return self._current

    def after_unauthorized(self, rejected: TokenSet) -> TokenSet | None:
        with self._lock:
            if self._current is not None and self._current.access_token != \
                    rejected.access_token:
                return self._current
            self._current = self._grant()
            return self._current

    def _grant(self) -> TokenSet:
        try:
            return self._oauth.client_credentials(self._client_id, self._secret)
        except Unauthorized as exc:
            # The usual cause: the id/secret belong to an app people sign in to, and nobody
            # is signed in. Say both things.
            raise NotSignedIn(f"not signed in, and client {self._client_id} cannot sign in "
                              f"as a service account ({exc.message}): run `procorefs login`, "
                              f"or use the credentials of an installed service account",
                              status=exc.status, method=exc.method, path=exc.path) from None


class UserCredentials:
    kind = "user"

    def __init__(self, store: KeyringTokenStore, account: str, oauth: OAuthClient,
                 clock: Clock, lock_path: Path, *, client_id: str | None = None,
                 client_secret: str | None = None, redirect_uri: str | None = None,
                 initial: TokenSet | None = None) -> None:
        self._store = store
        self.account = account
        self._oauth = oauth
        self._clock = clock
        self._lock_path = lock_path
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._lock = threading.Lock()
        self._current = initial
        self.identity = f"user:{store.service}:{account}"
        self.refreshes = 0  # refreshes this object performed (status and tests)

    def token(self) -> TokenSet:
        with self._lock:
            current = self._current or self._load()
            self._current = current
            if current.expiring(self._clock.time()):
                return self._refresh(current, forced=False)
            return current

    def after_unauthorized(self, rejected: TokenSet) -> TokenSet | None:
        with self._lock:
            if rejected.refresh_token is None and (self._current is None or
                                                   self._current.refresh_token is None):
                return None
            return self._refresh(rejected, forced=True)

    def _load(self) -> TokenSet:
        token = self._store.load(self.account)
        if token is None:
            raise NotSignedIn(f"not signed in as {self.account}: run `procorefs login`")
        return token

    def _refresh(self, stale: TokenSet, *, forced: bool) -> TokenSet:
        """Under ``self._lock``: single-flight refresh, across processes too."""
        now = self._clock.time()
        current = self._current
        if current is not None and current.access_token != stale.access_token \
                and not current.expiring(now):
            return current  # another thread refreshed while we waited for the lock
        ensure_private_dir(self._lock_path.parent)
        lock = filelock.FileLock(str(self._lock_path), timeout=_LOCK_TIMEOUT)
        try:
            with lock:
                stored = self._store.load(self.account)
                if stored is None:
                    raise NotSignedIn(f"signed out of {self.account} meanwhile: "
                                      f"run `procorefs login`")
                if stored.access_token != stale.access_token and not stored.expiring(now):
                    # Another process refreshed already; its pair is the live one.
                    self._current = stored
                    return stored
                if not forced and not stored.expiring(now):
                    self._current = stored
                    return stored
                if not stored.refresh_token:
                    raise Unauthorized("the sign-in expired and cannot be renewed: "
                                       "run `procorefs login`")
                client_id = stored.client_id or self._client_id
                if not client_id:
                    raise Unauthorized("no client id to renew the sign-in with: set "
                                       "PROCOREFS_CLIENT_ID or run `procorefs login`")
                secret = stored.client_secret or self._client_secret
                try:
                    new = self._oauth.refresh(stored, client_id=client_id,
                                              client_secret=secret,
                                              redirect_uri=self._redirect_uri)
                except Unauthorized as exc:
                    raise Unauthorized(f"{exc.message}; run `procorefs login` again",
                                       status=exc.status, method=exc.method,
                                       path=exc.path) from None
                # Stored before use: if we die now, the next process finds the live pair.
                self._store.save(new.with_account(self.account), make_current=False)
                self.refreshes += 1
                log.info("renewed the Procore sign-in of %s", self.account)
                self._current = new.with_account(self.account)
                return self._current
        except filelock.Timeout:
            raise NetworkError(f"another procorefs process holds the token lock "
                               f"{self._lock_path} for over {_LOCK_TIMEOUT:.0f} s") from None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def lock_path_for(settings: Settings, account: str) -> Path:
    name = _digest(f"{settings.token_namespace}|{account}")
    return settings.state_dir / "locks" / f"token-{name}.lock"


def credentials_from_settings(settings: Settings, oauth: OAuthClient, clock: Clock) -> Credentials:
    """Pick the credentials: an env token, else a stored sign-in, else a service account."""
    if settings.access_token:
        return StaticCredentials(settings.access_token)
    store = KeyringTokenStore(settings.token_namespace)
    keyring_problem: KeyringUnavailable | None = None
    try:
        account = settings.account or store.current_account()
        token = store.load(account) if account else None
    except KeyringUnavailable as exc:
        keyring_problem, account, token = exc, None, None
    if token is not None and account:
        return UserCredentials(store, account, oauth, clock, lock_path_for(settings, account),
                               client_id=settings.client_id,
                               client_secret=settings.client_secret,
                               redirect_uri=settings.redirect_uri, initial=token)
    if settings.client_id and settings.client_secret:
        return ClientCredentials(oauth, settings.client_id, settings.client_secret, clock)
    if keyring_problem is not None:
        raise keyring_problem
    where = settings.environment if settings.environment != "custom" else settings.api_url
    if settings.account:
        raise NotSignedIn(f"no sign-in for account {settings.account} on {where}: "
                          f"run `procorefs login`")
    raise NotSignedIn(f"not signed in to Procore ({where}): run `procorefs login`, or set "
                      f"PROCOREFS_CLIENT_ID and PROCOREFS_CLIENT_SECRET (service account) or "
                      f"PROCOREFS_ACCESS_TOKEN")


class ProcoreAuth(httpx.Auth):
    """Bearer auth with one refresh-and-retry on 401, only ever sent to trusted hosts."""

    def __init__(self, credentials: Credentials, settings: Settings) -> None:
        self.credentials = credentials
        self._settings = settings

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._settings.is_trusted_url(str(request.url)):
            request.headers.pop("Authorization", None)
            yield request
            return
        token = self.credentials.token()
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = self.credentials.after_unauthorized(token)
        if fresh is None or fresh.access_token == token.access_token:
            return
        # (httpx reads and closes the rejected response itself.)
        request.headers["Authorization"] = f"Bearer {fresh.access_token}"
        yield request


def new_http_client(settings: Settings, **kw: Any) -> httpx.Client:
    """An httpx client with our identity and no automatic redirects (we follow by hand)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    headers.update(kw.pop("headers", {}))
    return httpx.Client(headers=headers, timeout=httpx.Timeout(settings.timeout, connect=15.0),
                        follow_redirects=False, **kw)
