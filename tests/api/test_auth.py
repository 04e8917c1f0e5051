"""Signing in against the emulator: concurrent refresh across processes, login, logout, whoami."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from procorefs.api import ProcoreClient
from procorefs.api.tokens import KeyringTokenStore
from procorefs.cli import UserError
from procorefs.cli import auth as cli_auth
from tests.api.conftest import World, count, log_when
from tests.api.keyrings import FileKeyring

REPO = Path(__file__).resolve().parents[2]


def _env(world: World, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCOREFS_")}
    env.update({
        "PYTHONPATH": str(REPO), "PROCOREFS_API_URL": world.emulator.api_url,
        "PROCOREFS_CLIENT_ID": world.client_id, "PROCOREFS_CLIENT_SECRET": world.client_secret,
        "PROCOREFS_CONFIG": str(world.tmp_path / "none.toml"),
        "PROCOREFS_CONFIG_DIR": str(world.tmp_path / "config"),
        "PROCOREFS_CACHE_DIR": str(world.tmp_path / "cache"),
        "PROCOREFS_STATE_DIR": str(world.tmp_path / "state")})
    env.update(extra)
    return env


def test_two_processes_refresh_once(world: World, file_keyring: FileKeyring) -> None:
    """Both start with an expiring token; one refreshes, the other uses the stored result."""
    (world.tmp_path / "none.toml").write_text("")
    settings = world.settings()
    world.sign_in(settings, expires_at=time.time() - 1)
    go = world.tmp_path / "go"
    mark = world.emulator.log_mark()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.api.refresh_worker",
                               str(file_keyring.path), str(go)], cwd=REPO, env=_env(world),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert [r["login"] for r in results] == [world.demo_login] * 2
    assert sorted(r["refreshes"] for r in results) == [0, 1]
    log = log_when(world.emulator, mark, lambda lg: count("GET", "/rest/v1.0/me")(lg) >= 2)
    assert sum(1 for r in log if r["path"] == "/oauth/token") == 1
    assert [r["status"] for r in log if r["path"] == "/rest/v1.0/me"] == [200, 200]
    stored = KeyringTokenStore(settings.token_namespace).load(world.demo_login)
    assert stored is not None and stored.expires_at is not None
    assert stored.expires_at > time.time() + 3000


class Browser:
    """An HTTP client standing in for the user's browser: approve, follow the redirect."""

    def __init__(self) -> None:
        self.http = httpx.Client(follow_redirects=False, timeout=30)
        self.visited: list[str] = []
        self.error: BaseException | None = None

    def approve(self, url: str) -> httpx.Response:
        self.visited.append(url)
        page = self.http.get(url)
        assert page.status_code == 200, page.text
        form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
        assert form is not None, page.text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                                 form.group(2)))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        fields["decision"] = "approve"
        answer = self.http.post(str(httpx.URL(url).join(form.group(1))), data=fields)
        assert answer.status_code in (302, 303), answer.text
        return self.http.get(str(httpx.URL(url).join(answer.headers["location"])))

    def open_in_background(self, url: str) -> bool:
        def run() -> None:
            try:
                callback = self.approve(url)
                assert callback.status_code == 200, callback.text
            except BaseException as exc:  # reported by the test
                self.error = exc

        threading.Thread(target=run, daemon=True).start()
        return True


def _cli(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="procorefs")
    sub = parser.add_subparsers()
    cli_auth.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"procorefs: {exc}", file=sys.stderr)
        return 2


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    (world.tmp_path / "none.toml").write_text("")
    for key in list(os.environ):
        if key.startswith("PROCOREFS_"):
            monkeypatch.delenv(key)
    for key, value in _env(world).items():
        if key.startswith("PROCOREFS_"):
            monkeypatch.setenv(key, value)
    return world


def test_login_with_the_loopback_redirect(cli_env: World, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    world = cli_env
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    world.emulator.control("POST", "apps", json={"client_id": world.client_id,
                                                 "redirect_uri": redirect})
    browser = Browser()
    monkeypatch.setattr(cli_auth, "open_browser", browser.open_in_background)
    assert _cli(["login", "--redirect-uri", redirect, "--timeout", "60"]) == 0
    assert browser.error is None
    out = capsys.readouterr().out
    assert world.demo_login in out
    url = httpx.URL(browser.visited[0])
    assert url.path == "/oauth/authorize"
    assert url.params["redirect_uri"] == redirect and url.params["state"]
    settings = world.settings()
    stored = KeyringTokenStore(settings.token_namespace).load()
    assert stored is not None and stored.account == world.demo_login
    assert stored.refresh_token and stored.client_id == world.client_id
    # The stored sign-in works for a new client (what `procorefs mount` will do).
    with ProcoreClient.from_settings(settings) as client:
        assert client.me().login == world.demo_login
    # No token in the output.
    assert stored.access_token not in out and stored.refresh_token not in out


def test_loopback_refuses_a_wrong_state(cli_env: World, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    world = cli_env
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    world.emulator.control("POST", "apps", json={"client_id": world.client_id,
                                                 "redirect_uri": redirect})
    forged: list[int] = []

    def attacker_then_user(url: str) -> bool:
        def run() -> None:
            forged.append(httpx.get(f"{redirect}?code=evil&state=wrong").status_code)
            Browser().approve(url)
        threading.Thread(target=run, daemon=True).start()
        return True

    monkeypatch.setattr(cli_auth, "open_browser", attacker_then_user)
    assert _cli(["login", "--redirect-uri", redirect, "--timeout", "60"]) == 0
    assert forged == [400]


def test_login_out_of_band(cli_env: World, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    browser = Browser()
    pasted: list[str] = []

    def read_code(prompt: str) -> str:
        # The user opens the shown address elsewhere, approves, and copies the code.
        shown = capsys.readouterr().out
        url = re.search(r"(http://\S+/oauth/authorize\S+)", shown)
        assert url is not None, shown
        assert "urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob" in url.group(1)
        page = browser.approve(url.group(1))
        code = re.search(r'<code id="authorization_code">([^<]+)</code>', page.text)
        assert code is not None, page.text
        pasted.append(code.group(1))
        return code.group(1)

    monkeypatch.setattr(cli_auth, "read_code", read_code)
    assert _cli(["login", "--no-browser"]) == 0
    assert pasted
    out = capsys.readouterr().out
    assert "Signed in" in out and pasted[0] not in out


def test_login_falls_back_to_out_of_band_without_a_browser(
        cli_env: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_auth, "open_browser", lambda url: False)
    monkeypatch.setattr(cli_auth, "read_code", lambda prompt: "not-a-real-code")
    assert _cli(["login", "--redirect-uri",
                 f"http://127.0.0.1:{_free_port()}/callback"]) == 2  # invalid_grant, cleanly


def test_whoami_and_logout(cli_env: World, capsys: pytest.CaptureFixture[str]) -> None:
    world = cli_env
    settings = world.settings()
    token = world.sign_in(settings)
    assert _cli(["whoami"]) == 0
    out = capsys.readouterr().out
    assert world.demo_login in out
    assert f"company {world.company_id}" in out and f"project {world.project_id}" in out
    mark = world.emulator.log_mark()
    assert _cli(["logout"]) == 0
    assert "Signed out" in capsys.readouterr().out
    assert count("POST", "/oauth/revoke")(log_when(world.emulator, mark,
                                                   lambda lg: bool(lg))) >= 1
    assert KeyringTokenStore(settings.token_namespace).load(world.demo_login) is None
    # The revoked token is dead at the server too.
    me = httpx.get(f"{world.emulator.api_url}/rest/v1.0/me",
                   headers={"Authorization": f"Bearer {token.access_token}"})
    assert me.status_code == 401
    assert _cli(["logout"]) == 0
    assert "Not signed in" in capsys.readouterr().out
    assert _cli(["whoami"]) == 2
    assert "procorefs login" in capsys.readouterr().err


def test_whoami_with_a_service_account(cli_env: World, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    world = cli_env
    service = next(a for a in world.info["apps"] if a["service_user_id"] is not None)
    monkeypatch.setenv("PROCOREFS_CLIENT_ID", service["client_id"])
    monkeypatch.setenv("PROCOREFS_CLIENT_SECRET", service["client_secret"])
    monkeypatch.setenv("PROCOREFS_COMPANY_ID", str(world.company_id))
    assert _cli(["whoami"]) == 0
    out = capsys.readouterr().out
    assert "service account" in out and f"company {world.company_id}" in out


def test_whoami_with_an_env_token(cli_env: World, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    world = cli_env
    monkeypatch.setenv("PROCOREFS_ACCESS_TOKEN", world.emulator.token()["access_token"])
    assert _cli(["whoami"]) == 0
    assert "PROCOREFS_ACCESS_TOKEN" in capsys.readouterr().out
    monkeypatch.setenv("PROCOREFS_ACCESS_TOKEN", "not-a-valid-token")
    assert _cli(["whoami"]) == 2
    err = capsys.readouterr().err
    assert "401" in err and "not-a-valid-token" not in err


def test_no_keyring_is_a_clear_message(cli_env: World, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring

    monkeypatch.delenv("PROCOREFS_CLIENT_SECRET")
    opened: list[str] = []
    monkeypatch.setattr(cli_auth, "open_browser", lambda url: bool(opened.append(url)))
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        assert _cli(["whoami"]) == 2
        err = capsys.readouterr().err
        assert "keyring" in err and "PROCOREFS_ACCESS_TOKEN" in err
        assert "Traceback" not in err
        assert _cli(["login"]) == 2
        err = capsys.readouterr().err
        assert "keyring" in err and "PROCOREFS_CLIENT_ID" in err
        assert opened == []  # failed before sending the user to approve anything
    finally:
        keyring.set_keyring(previous)
