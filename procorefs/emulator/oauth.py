"""OAuth 2.0 as Procore serves it (procore-api.md §1), on the API origin.

``/oauth/authorize`` (an approval page for the demo user, or ``login=`` for another seeded
user: an emulator extension), ``/oauth/authorize/native`` (the out-of-band code page),
``/oauth/token`` (authorization_code, refresh_token, client_credentials; JSON, urlencoded,
multipart bodies and HTTP Basic client authentication), ``/oauth/token/info`` and
``/oauth/revoke``. Error bodies and the 401 header follow Rails Doorkeeper, which Procore's
strings match (§1.2, §6.3; inferred). Codes live ``code_ttl`` seconds (10 minutes) and are
single-use; refresh tokens are single-use and every refresh, successful or not, burns the one
it was given; the access token a refresh replaces stays valid until it expires (Doorkeeper's
default; Procore does not say).
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web

from procorefs.emulator.context import (
    INVALID_TOKEN,
    WWW_AUTHENTICATE,
    EmulatorContext,
    JsonError,
    bearer_token,
    read_params,
    token_digest,
)

OOB_URI = "urn:ietf:wg:oauth:2.0:oob"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_INVALID_CLIENT = ("Client authentication failed due to unknown client, no client "
                   "authentication included, or unsupported authentication method.")
_INVALID_GRANT = ("The provided authorization grant is invalid, expired, revoked, does not "
                  "match the redirection URI used in the authorization request, or was issued "
                  "to another client.")
_BAD_REDIRECT = "The requested redirect uri is malformed or doesn't match client redirect URI."
_DENIED = "The resource owner or authorization server denied the request."


def oauth_error(status: int, error: str, description: str) -> JsonError:
    return JsonError(status, {"error": error, "error_description": description}, _NO_STORE)


def add_routes(app: web.Application, ctx: EmulatorContext) -> None:
    handlers = OAuthHandlers(ctx)
    app.router.add_post("/oauth/token", handlers.token)
    app.router.add_get("/oauth/authorize", handlers.authorize_page)
    app.router.add_post("/oauth/authorize", handlers.authorize_decision)
    app.router.add_get("/oauth/authorize/native", handlers.native_page)
    app.router.add_get("/oauth/token/info", handlers.token_info)
    app.router.add_post("/oauth/revoke", handlers.revoke)


def token_response(access: str, refresh: str | None, ttl: int, created: int) -> dict[str, Any]:
    body: dict[str, Any] = {"access_token": access, "token_type": "bearer", "expires_in": ttl}
    if refresh is not None:
        body["refresh_token"] = refresh
    body["created_at"] = created
    return body


def _client_from_basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 §2.3.1: both halves are form-urlencoded before the Basic encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def _param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


class OAuthHandlers:
    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx

    def _client(self, request: web.Request, params: dict[str, Any]) -> str:
        """Authenticate the client (Basic header or body fields); its client_id."""
        basic = _client_from_basic(request)
        client_id, secret = basic if basic else (_param(params, "client_id"),
                                                 _param(params, "client_secret"))
        app = self.ctx.store.app(client_id) if client_id else None
        if app is None or secret is None or not secrets.compare_digest(
                str(app["client_secret"]), secret):
            raise oauth_error(401, "invalid_client", _INVALID_CLIENT)
        return str(app["client_id"])

    def _issue(self, user_id: int, client_id: str | None, *, refresh: bool = True,
               service: bool = False, ttl: int | None = None) -> web.Response:
        ttl = self.ctx.settings.token_ttl if ttl is None else ttl
        access, refresh_token, created = self.ctx.store.issue_token(
            user_id, client_id, ttl, self.ctx.now(), refresh=refresh, service=service,
            digest=token_digest)
        return web.json_response(token_response(access, refresh_token, ttl, created),
                                 headers=_NO_STORE)

    async def token(self, request: web.Request) -> web.Response:
        params = await read_params(request)
        grant = _param(params, "grant_type")
        if grant is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type.")
        if grant == "authorization_code":
            return self._authorization_code(request, params)
        if grant == "refresh_token":
            return self._refresh(request, params)
        if grant == "client_credentials":
            client_id = self._client(request, params)
            app = self.ctx.store.app(client_id)
            assert app is not None
            if app["service_user_id"] is None:
                raise oauth_error(400, "unauthorized_client", "The client is not authorized "
                                  "to perform this request using this method.")
            return self._issue(int(app["service_user_id"]), client_id, refresh=False,
                               service=True)
        raise oauth_error(400, "unsupported_grant_type",
                          "The authorization grant type is not supported by the authorization "
                          "server.")

    def _authorization_code(self, request: web.Request, params: dict[str, Any]) -> web.Response:
        code = _param(params, "code")
        if code is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: code.")
        grant = self.ctx.store.take_code(token_digest(code))
        client_id = self._client(request, params)
        redirect_uri = _param(params, "redirect_uri")
        if redirect_uri is None:
            raise oauth_error(400, "invalid_request", "Missing required parameter: redirect_uri.")
        if (grant is None or grant["used"] or grant["client_id"] != client_id
                or grant["redirect_uri"] != redirect_uri
                or self.ctx.now() - float(grant["created_at"]) > self.ctx.settings.code_ttl):
            raise oauth_error(400, "invalid_grant", _INVALID_GRANT)
        return self._issue(int(grant["user_id"]), client_id)

    def _refresh(self, request: web.Request, params: dict[str, Any]) -> web.Response:
        refresh = _param(params, "refresh_token")
        if refresh is None:
            raise oauth_error(400, "invalid_request",
                              "Missing required parameter: refresh_token.")
        row = self.ctx.store.take_refresh(token_digest(refresh))
        client_id = self._client(request, params)
        if row is None or row["refresh_used"] or row["revoked"] or (
                row["client_id"] is not None and row["client_id"] != client_id):
            raise oauth_error(400, "invalid_grant", "The refresh token is invalid")
        return self._issue(int(row["user_id"]), client_id)

    async def token_info(self, request: web.Request) -> web.Response:
        token = bearer_token(request)
        now = self.ctx.now()
        principal = None if token is None else self.ctx.store.principal_for(
            token_digest(token), now)
        if token is None or principal is None:
            raise JsonError(401, {"error": "invalid_token", "error_description": INVALID_TOKEN},
                            {"WWW-Authenticate": WWW_AUTHENTICATE})
        row = self.ctx.store.token_by_access(token_digest(token))
        assert row is not None
        request["user_id"] = principal.user_id
        expires = int(float(row["created_at"]) + int(row["expires_in"]) - now)
        return web.json_response({
            "resource_owner_id": principal.user_id, "scopes": [],
            "expires_in_seconds": max(0, expires),
            "application": {"uid": principal.client_id}, "created_at": int(row["created_at"])})

    async def revoke(self, request: web.Request) -> web.Response:
        """Always 200 (procore-api.md §1.4); revokes the pair the token belongs to."""
        params = await read_params(request)
        token = _param(params, "token")
        if token is not None:
            basic = _client_from_basic(request)
            client_id = basic[0] if basic else _param(params, "client_id")
            digest = token_digest(token)
            row = self.ctx.store.token_by_access(digest) or self.ctx.store.one(
                "SELECT * FROM tokens WHERE refresh_hash = ?", (digest,))
            if row is not None and (client_id is None or row["client_id"] in (None, client_id)):
                self.ctx.store.revoke(digest)
        return web.json_response({})

    # -- the browser side ----------------------------------------------------------------------

    def _check_client_redirect(self, client_id: str | None, redirect_uri: str | None) -> None:
        app = self.ctx.store.app(client_id) if client_id else None
        if app is None:
            raise _page_error(401, "Client authentication failed",
                        f"<p>{html.escape(_INVALID_CLIENT)}</p>")
        if redirect_uri is None or redirect_uri not in self.ctx.store.redirect_uris(app):
            raise _page_error(400, "Invalid redirect URI", f"<p>{html.escape(_BAD_REDIRECT)}</p>")

    def _user(self, login: str | None) -> Any:
        store = self.ctx.store
        user = store.user_by_login(login) if login else store.user(store.demo_user_id)
        if user is None:
            raise _page_error(404, "Unknown user", "<p>No such user in this emulator.</p>")
        return user

    async def authorize_page(self, request: web.Request) -> web.Response:
        q = request.query
        client_id, redirect_uri = q.get("client_id"), q.get("redirect_uri")
        self._check_client_redirect(client_id, redirect_uri)
        assert client_id is not None and redirect_uri is not None
        state = q.get("state")
        if q.get("response_type") != "code":
            return self._redirect_error(redirect_uri, "unsupported_response_type",
                                        "The authorization server does not support this "
                                        "response type.", state)
        user = self._user(q.get("login"))
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in (("client_id", client_id), ("redirect_uri", redirect_uri),
                         ("state", state or ""), ("response_type", "code"),
                         ("login", str(user["login"]))))
        body = (f"<p>Signed in as <strong>{html.escape(str(user['name']))}</strong> "
                f"({html.escape(str(user['login']))}).</p>"
                f"<p>Authorize <strong>{html.escape(client_id)}</strong> to use your account?</p>"
                f'<form method="post" action="/oauth/authorize">{hidden}'
                '<button type="submit" name="decision" value="approve">Authorize</button> '
                '<button type="submit" name="decision" value="deny">Deny</button></form>')
        return _page(200, "Authorization required", body)

    async def authorize_decision(self, request: web.Request) -> web.Response:
        params = await read_params(request)
        client_id, redirect_uri = _param(params, "client_id"), _param(params, "redirect_uri")
        self._check_client_redirect(client_id, redirect_uri)
        assert client_id is not None and redirect_uri is not None
        state = _param(params, "state")
        if _param(params, "decision") != "approve":
            return self._redirect_error(redirect_uri, "access_denied", _DENIED, state)
        user = self._user(_param(params, "login"))
        code = secrets.token_urlsafe(32)
        self.ctx.store.create_code(token_digest(code), client_id, int(user["id"]), redirect_uri,
                                   self.ctx.now())
        if redirect_uri == OOB_URI:
            raise web.HTTPFound(f"/oauth/authorize/native?{urlencode({'code': code})}")
        query = {"code": code, **({"state": state} if state is not None else {})}
        raise web.HTTPFound(_with_query(redirect_uri, query))

    def _redirect_error(self, redirect_uri: str, error: str, description: str,
                        state: str | None) -> web.Response:
        if redirect_uri == OOB_URI:
            return _page(400, "Authorization failed", f"<p>{html.escape(description)}</p>")
        query = {"error": error, "error_description": description,
                 **({"state": state} if state is not None else {})}
        raise web.HTTPFound(_with_query(redirect_uri, query))

    async def native_page(self, request: web.Request) -> web.Response:
        code = request.query.get("code", "")
        return _page(200, "Authorization code",
                     "<p>Copy this code and paste it into the application:</p>"
                     f'<code id="authorization_code">{html.escape(code)}</code>')


def _with_query(uri: str, query: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(query)


def _html(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _page(status: int, title: str, body: str) -> web.Response:
    return web.Response(status=status, text=_html(title, body), content_type="text/html")


def _page_error(status: int, title: str, body: str) -> web.HTTPException:
    return _HtmlPage(status, _html(title, body))


class _HtmlPage(web.HTTPException):
    def __init__(self, status: int, text: str) -> None:
        self.status_code = status
        super().__init__(text=text, content_type="text/html")
