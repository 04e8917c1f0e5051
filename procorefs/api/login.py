"""Signing a person in: the authorization-code flow, by loopback redirect or out of band.

``LoopbackReceiver`` listens on the host and port of a ``http://localhost:PORT/callback``
redirect URI (loopback only), answers the browser's redirect with a small page, and hands
over the code once the ``state`` matches the one we sent (anything else is refused and the
wait goes on: a stray or forged request must not end the sign-in). ``sign_in`` runs the
whole flow; the out-of-band variant (``urn:ietf:wg:oauth:2.0:oob``) shows the URL and reads
the code the user pastes. After the token exchange the user's login names the stored
account; ``sign_out`` revokes at the server and forgets locally.
"""

from __future__ import annotations

import html
import http.server
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from procorefs.api.auth import OAuthClient, new_http_client
from procorefs.api.errors import ApiError, NotSignedIn, Unauthorized
from procorefs.api.models import User
from procorefs.api.redact import register_secret
from procorefs.api.tokens import KeyringTokenStore, TokenSet
from procorefs.clock import Clock, SystemClock
from procorefs.config import OOB_REDIRECT_URI, Settings

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class LoginError(ApiError):
    """The sign-in did not complete (denied, timed out, state mismatch ...)."""


def is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


@dataclass
class _Outcome:
    code: str | None = None
    error: str | None = None


class LoopbackReceiver:
    """A one-shot HTTP listener for the OAuth redirect (a context manager)."""

    def __init__(self, redirect_uri: str, state: str) -> None:
        parts = urlsplit(redirect_uri)
        if not is_loopback_redirect(redirect_uri):
            raise LoginError(f"{redirect_uri} is not a loopback redirect URI")
        self.path = parts.path or "/"
        self._state = state
        self._outcome = _Outcome()
        self._done = threading.Event()
        host = "::1" if parts.hostname == "::1" else "127.0.0.1"
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query string holds the code: never log it

        server_class = http.server.ThreadingHTTPServer
        if host == "::1":
            import socket

            class V6Server(http.server.ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = V6Server
        try:
            self._server = server_class((host, parts.port or 80), Handler)
        except OSError as exc:
            raise LoginError(f"cannot listen on {host}:{parts.port} for the sign-in "
                             f"redirect ({exc.strerror}); free the port, or use "
                             f"--no-browser") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="procorefs-login", daemon=True)

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != self.path or self._done.is_set():
            self._reply(request, 404, "Not the sign-in callback.")
            return
        if query.get("state") != self._state:
            self._reply(request, 400, "This sign-in link does not belong to the procorefs "
                                      "sign-in that is waiting. Start again.")
            return
        if "code" in query:
            register_secret(query["code"])
            self._outcome.code = query["code"]
            self._reply(request, 200, "Signed in to procorefs. You can close this window.")
        else:
            error = query.get("error_description") or query.get("error") or "no code"
            self._outcome.error = error
            self._reply(request, 400, f"Sign-in failed: {error}")
        self._done.set()

    @staticmethod
    def _reply(request: http.server.BaseHTTPRequestHandler, status: int, text: str) -> None:
        body = (f"<!doctype html><html><head><title>procorefs</title></head><body>"
                f"<p>{html.escape(text)}</p></body></html>").encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def wait(self, timeout: float) -> str:
        if not self._done.wait(timeout):
            raise LoginError(f"no sign-in arrived within {timeout:.0f} s")
        if self._outcome.code is None:
            raise LoginError(f"the sign-in was not approved: {self._outcome.error}")
        return self._outcome.code


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: TokenSet
    namespace: str


def _identify(settings: Settings, http: httpx.Client, token: TokenSet) -> User:
    """GET /me with a brand-new token, to name the account it belongs to."""
    response = http.get(f"{settings.api_url}/rest/v1.0/me",
                        headers={"Authorization": f"Bearer {token.access_token}"})
    if response.status_code >= 400:
        raise Unauthorized("the new token was refused by the API",
                           status=response.status_code, method="GET", path="/rest/v1.0/me")
    try:
        return User.parse(response.json())
    except ValueError:
        raise Unauthorized("GET /rest/v1.0/me did not answer JSON",
                           method="GET", path="/rest/v1.0/me") from None


def sign_in(settings: Settings, *, open_browser: Callable[[str], bool] | None,
            read_code: Callable[[str], str], announce: Callable[[str], None],
            timeout: float = 300.0, clock: Clock | None = None,
            http: httpx.Client | None = None) -> SignedIn:
    """Authorization code flow; stores the tokens in the keyring and returns who signed in.

    ``open_browser(url)`` returns False when no browser could be started: the flow then
    falls back to out-of-band. ``None`` means out-of-band from the start (``--no-browser``).
    ``read_code(prompt)`` reads the pasted code; ``announce`` shows text to the user.
    """
    if not settings.client_id:
        raise NotSignedIn("signing in needs your app's client id: --client-id or "
                          "PROCOREFS_CLIENT_ID (see docs/signing-in.md)")
    clock = clock or SystemClock()
    own_http = http is None
    http = http or new_http_client(settings)
    try:
        oauth = OAuthClient(settings.login_url, http, clock)
        store = KeyringTokenStore(settings.token_namespace)
        store.current_account()  # fail early, before the user approves anything
        state = secrets.token_urlsafe(24)
        code: str | None = None
        redirect_uri = settings.redirect_uri
        if open_browser is not None and is_loopback_redirect(redirect_uri):
            with LoopbackReceiver(redirect_uri, state) as receiver:
                url = oauth.authorize_url(settings.client_id, redirect_uri, state)
                if open_browser(url):
                    announce(f"Approve procorefs in your browser. If it did not open, "
                             f"visit:\n  {url}")
                    code = receiver.wait(timeout)
        if code is None:
            redirect_uri = OOB_REDIRECT_URI
            url = oauth.authorize_url(settings.client_id, redirect_uri, state)
            announce(f"Open this address in a browser, sign in and approve procorefs:\n"
                     f"  {url}\nthen paste the code Procore shows you.")
            code = read_code("Code: ").strip()
            if not code:
                raise LoginError("no code was entered")
        token = oauth.exchange_code(code, client_id=settings.client_id,
                                    client_secret=settings.client_secret,
                                    redirect_uri=redirect_uri)
        user = _identify(settings, http, token)
        token = token.with_account(user.login or f"user-{user.id}")
        store.save(token)  # persisted before the caller gets to use it
        return SignedIn(user=user, token=token, namespace=settings.token_namespace)
    finally:
        if own_http:
            http.close()


@dataclass(frozen=True)
class SignedOut:
    account: str
    revoked: bool
    problem: str | None = None


def sign_out(settings: Settings, *, clock: Clock | None = None,
             http: httpx.Client | None = None) -> SignedOut | None:
    """Revoke the stored sign-in at the server and forget it; None if nobody was signed in.

    The local copy is forgotten even when the server cannot be reached (``revoked`` False
    and ``problem`` say so): signing out must work offline."""
    store = KeyringTokenStore(settings.token_namespace)
    account = settings.account or store.current_account()
    if not account:
        return None
    token = store.load(account)
    own_http = http is None
    http = http or new_http_client(settings)
    problem: str | None = None
    try:
        if token is not None:
            oauth = OAuthClient(settings.login_url, http, clock or SystemClock())
            client_id = token.client_id or settings.client_id
            secret = token.client_secret or settings.client_secret
            # Revoking the access token revokes its refresh token too (procore-api.md 1.4);
            # the refresh token is revoked as well in case the access token already expired.
            for value in (token.access_token, token.refresh_token):
                if value:
                    try:
                        oauth.revoke(value, client_id=client_id, client_secret=secret)
                    except ApiError as exc:
                        problem = str(exc)
        store.delete(account)
    finally:
        if own_http:
            http.close()
    return SignedOut(account=account, revoked=token is not None and problem is None,
                     problem=problem)


__all__ = ["LoginError", "LoopbackReceiver", "SignedIn", "SignedOut", "sign_in", "sign_out"]
