"""``procorefs login``, ``logout`` and ``whoami``: signing in to Procore and seeing where.

``login`` runs the authorization-code flow (browser plus loopback redirect, or out of band
with ``--no-browser`` or when no browser can be started) and keeps the tokens in the OS
keyring; ``logout`` revokes and forgets them; ``whoami`` shows the user, the companies and
their projects with the ids that ``--company`` and ``--project`` take. Failures a user can act
on become one line (``UserError``), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from typing import Any

from procorefs.api import ApiError, ProcoreClient
from procorefs.api.auth import ClientCredentials, StaticCredentials
from procorefs.api.login import sign_in, sign_out
from procorefs.api.redact import install_log_redaction
from procorefs.cli import UserError
from procorefs.config import ConfigError, Settings, add_connection_arguments, settings_from_args


def open_browser(url: str) -> bool:
    """Start the user's browser at ``url``; False when there is none to start."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False  # a console browser taking over the terminal helps nobody
    try:
        return webbrowser.open(url, new=1)
    except webbrowser.Error:
        return False


def read_code(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:
        return ""


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return settings_from_args(args)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _where(settings: Settings) -> str:
    if settings.environment == "custom":
        return settings.api_url
    return f"{settings.environment} ({settings.api_url})"


def cmd_login(args: argparse.Namespace) -> int:
    install_log_redaction()
    settings = _settings(args)
    if settings.access_token:
        print("note: PROCOREFS_ACCESS_TOKEN is set and takes precedence over the sign-in "
              "stored by this login", file=sys.stderr)
    try:
        result = sign_in(settings, open_browser=None if args.no_browser else open_browser,
                         read_code=read_code, announce=lambda text: print(text, flush=True),
                         timeout=args.timeout)
    except ApiError as exc:
        raise UserError(f"sign-in failed: {exc}") from None
    user = result.user
    print(f"Signed in to {_where(settings)} as {user.name or user.login} "
          f"<{user.login}> (user id {user.id}).")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    install_log_redaction()
    settings = _settings(args)
    try:
        result = sign_out(settings)
    except ApiError as exc:
        raise UserError(f"sign-out failed: {exc}") from None
    if result is None:
        print(f"Not signed in to {_where(settings)}.")
    else:
        print(f"Signed out {result.account} from {_where(settings)}.")
        if not result.revoked:
            print(f"warning: the token could not be revoked at the server "
                  f"({result.problem or 'no token was stored'}); it was forgotten here and "
                  f"expires on its own.", file=sys.stderr)
    if settings.access_token:
        print("note: PROCOREFS_ACCESS_TOKEN is still set in this shell.", file=sys.stderr)
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    install_log_redaction()
    settings = _settings(args)
    try:
        with ProcoreClient.from_settings(settings) as client:
            return _whoami(client, settings)
    except ApiError as exc:
        raise UserError(str(exc)) from None


def _whoami(client: ProcoreClient, settings: Settings) -> int:
    kind = ("service account" if isinstance(client.credentials, ClientCredentials)
            else "PROCOREFS_ACCESS_TOKEN" if isinstance(client.credentials, StaticCredentials)
            else "signed-in user")
    user = client.me()
    print(f"{user.name or user.login or 'user'} <{user.login or '-'}> (user id {user.id}), "
          f"{kind}, on {_where(settings)}")
    companies = client.companies()
    if settings.company_id is not None:
        companies = [c for c in companies if c.id == settings.company_id]
    if not companies:
        print("No companies are visible to this account.")
        return 0
    print("Companies and projects (use the ids with --company and --project):")
    for company in companies:
        active = "" if company.is_active else "  (inactive)"
        print(f"  company {company.id}  {company.name}{active}")
        try:
            projects = client.projects(company.id)
        except ApiError as exc:
            print(f"      (projects not visible: {exc.message})")
            continue
        for project in projects:
            mark = "" if project.active else "  (inactive)"
            print(f"      project {project.id}  {project.display_name}{mark}")
        if not projects:
            print("      (no projects; company-level Documents only)")
    status = client.rate_limit()
    if status.remaining is not None:
        print(f"Rate limit: {status.remaining} of {status.limit} requests left in this window.")
    return 0


def register(subparsers: Any) -> None:
    login = subparsers.add_parser(
        "login", help="sign in to Procore (browser, or --no-browser to paste a code)",
        description="Sign in with your Procore account. The tokens are kept in the OS "
                    "keyring, one sign-in per environment and account.")
    add_connection_arguments(login)
    login.add_argument("--no-browser", action="store_true",
                       help="do not start a browser: show the address and paste the code")
    login.add_argument("--redirect-uri", default=None,
                       help="the loopback redirect URI registered for your app "
                            "(default http://localhost:8765/callback)")
    login.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for the browser sign-in (default 300)")
    login.set_defaults(func=cmd_login)

    logout = subparsers.add_parser("logout", help="revoke and forget the stored sign-in")
    add_connection_arguments(logout)
    logout.set_defaults(func=cmd_logout)

    whoami = subparsers.add_parser(
        "whoami", help="show the signed-in user, companies and projects (with ids)")
    add_connection_arguments(whoami)
    whoami.set_defaults(func=cmd_whoami)
