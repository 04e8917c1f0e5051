"""Settings: presets, precedence (flags > env > file > defaults), validation, private dirs."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest

from procorefs.config import (
    DEFAULT_PART_SIZE,
    PRESETS,
    ConfigError,
    Settings,
    add_connection_arguments,
    settings_from_args,
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def settings(argv: list[str], env: dict[str, str], cfg: Path) -> Settings:
    return settings_from_args(parse([*argv, "--config", str(cfg)]) if cfg.exists()
                              else parse(argv), {**env, "PROCOREFS_CONFIG": str(cfg)}
                              if cfg.exists() else env)


def test_defaults_are_production(cfg: Path) -> None:
    s = settings([], {}, cfg)
    assert (s.environment, s.api_url, s.login_url) == ("production", *PRESETS["production"])
    assert s.upload_part_size == DEFAULT_PART_SIZE
    assert s.redirect_uri == "http://localhost:8765/callback"
    assert s.token_namespace == "production"


@pytest.mark.parametrize("name", ["sandbox", "monthly"])
def test_presets(name: str, cfg: Path) -> None:
    s = settings(["--env", name], {}, cfg)
    assert (s.api_url, s.login_url) == PRESETS[name]
    assert s.token_namespace == name


def test_sandbox_hosts_are_the_documented_ones(cfg: Path) -> None:
    s = settings(["--env", "sandbox"], {}, cfg)
    assert s.api_url == "https://sandbox.procore.com"
    assert s.login_url == "https://login-sandbox.procore.com"
    m = settings(["--env", "monthly"], {}, cfg)
    assert m.api_url == "https://api-monthly.procore.com"
    assert m.login_url == "https://login-sandbox-monthly.procore.com"


def test_precedence_flag_over_env_over_file(cfg: Path) -> None:
    cfg.write_text('company_id = 1\nproject_id = 10\nclient_id = "file"\n')
    env = {"PROCOREFS_COMPANY_ID": "2", "PROCOREFS_CLIENT_ID": "env"}
    s = settings(["--company", "3"], env, cfg)
    assert s.company_id == 3          # flag
    assert s.client_id == "env"       # env over file
    assert s.project_id == 10         # file over default
    assert settings([], env, cfg).company_id == 2


def test_environment_table_in_the_file_applies_only_to_that_environment(cfg: Path) -> None:
    cfg.write_text('environment = "sandbox"\nclient_id = "top"\n'
                   '[sandbox]\nclient_id = "sandbox-app"\n'
                   '[production]\nclient_id = "prod-app"\n')
    assert settings([], {}, cfg).client_id == "sandbox-app"
    s = settings(["--env", "production"], {}, cfg)
    assert (s.environment, s.client_id) == ("production", "prod-app")
    s = settings([], {"PROCOREFS_ENV": "monthly"}, cfg)
    assert (s.environment, s.client_id) == ("monthly", "top")


def test_custom_url_makes_a_custom_environment(cfg: Path) -> None:
    s = settings(["--api-url", "http://127.0.0.1:8630/"], {}, cfg)
    assert s.environment == "custom"
    assert s.api_url == s.login_url == "http://127.0.0.1:8630"
    assert s.token_namespace == "custom:http://127.0.0.1:8630"
    s = settings(["--api-url", "http://127.0.0.1:1", "--login-url", "http://localhost:2"], {},
                 cfg)
    assert s.login_url == "http://localhost:2"


def test_endpoint_layer_is_decided_as_a_whole(cfg: Path) -> None:
    env = {"PROCOREFS_API_URL": "http://127.0.0.1:8630"}
    assert settings([], env, cfg).environment == "custom"
    # --env on the command line is not half-overridden by a URL from the shell.
    s = settings(["--env", "sandbox"], env, cfg)
    assert (s.environment, s.api_url) == ("sandbox", PRESETS["sandbox"][0])
    # --env custom takes its URL from a lower layer.
    assert settings(["--env", "custom"], env, cfg).api_url == "http://127.0.0.1:8630"


def test_preset_urls_given_explicitly_are_that_preset(cfg: Path) -> None:
    api, login = PRESETS["sandbox"]
    s = settings(["--api-url", api, "--login-url", login], {}, cfg)
    assert s.environment == "sandbox"


@pytest.mark.parametrize("text, needle", [
    ('access_token = "abc"\n', "must not be stored"),
    ('[sandbox]\naccess_token = "abc"\n', "must not be stored"),
    ('colour = "blue"\n', "unknown setting"),
    ('company_id = "twelve"\n', "must be a number"),
    ('upload_part_size = 1024\n', "upload_part_size"),
    ('environment = "moon"\n', "unknown environment"),
    ("this is not toml", "cannot read"),
])
def test_bad_files_are_refused_clearly(cfg: Path, text: str, needle: str) -> None:
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        settings([], {}, cfg)


def test_plain_http_only_for_loopback(cfg: Path) -> None:
    with pytest.raises(ConfigError, match="https"):
        settings(["--api-url", "http://example.com"], {}, cfg)
    with pytest.raises(ConfigError, match="URL"):
        settings(["--api-url", "ftp://x"], {}, cfg)


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        settings_from_args(parse(["--config", str(tmp_path / "nope.toml")]), {})


def test_tuning_from_the_environment(cfg: Path) -> None:
    s = settings([], {"PROCOREFS_UPLOAD_PART_SIZE": str(8 * 1024 * 1024),
                      "PROCOREFS_UPLOAD_PARALLEL": "2", "PROCOREFS_TIMEOUT": "5.5"}, cfg)
    assert (s.upload_part_size, s.upload_parallel, s.timeout) == (8 * 1024 * 1024, 2, 5.5)


def test_secrets_do_not_show_in_repr(cfg: Path) -> None:
    s = settings([], {"PROCOREFS_CLIENT_SECRET": "s3cr3t-value",
                      "PROCOREFS_ACCESS_TOKEN": "tok-value-123"}, cfg)
    assert s.client_secret == "s3cr3t-value"
    assert "s3cr3t" not in repr(s) and "tok-value" not in repr(s)


def test_trusted_origins() -> None:
    prod = Settings(environment="production", api_url=PRESETS["production"][0],
                    login_url=PRESETS["production"][1])
    assert prod.is_trusted_url("https://api.procore.com/rest/v1.0/me")
    assert prod.is_trusted_url("https://us02.procore.com/fas/api/v5/x?sig=1")
    assert not prod.is_trusted_url("http://us02.procore.com/fas")  # never over plain http
    assert not prod.is_trusted_url("https://prostore.s3.amazonaws.com/x")
    assert not prod.is_trusted_url("https://evilprocore.com/x")
    assert not prod.is_trusted_url("not a url")
    emu = Settings(environment="custom", api_url="http://127.0.0.1:8630",
                   login_url="http://127.0.0.1:8630")
    assert emu.is_trusted_url("http://127.0.0.1:8630/fas/x")
    # Same host, another port: the emulator's storage origin must never see the token.
    assert not emu.is_trusted_url("http://127.0.0.1:8631/blobs/x")
    assert not emu.is_trusted_url("http://localhost:8630/x")
    assert not emu.is_trusted_url("https://storage.procore.com/x")


def test_prepare_dirs_makes_private_directories(tmp_path: Path) -> None:
    s = Settings(environment="production", api_url=PRESETS["production"][0],
                 login_url=PRESETS["production"][1], cache_dir=tmp_path / "c" / "cache",
                 state_dir=tmp_path / "state")
    s.prepare_dirs()
    for path in (s.cache_dir, s.state_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_local_only_names_from_every_layer(cfg: Path) -> None:
    cfg.write_text('local_only = ["scratch-*", "*.wip"]\nupload_dwg_backups = true\n')
    from_file = settings([], {}, cfg)
    assert from_file.local_only == ("scratch-*", "*.wip")
    assert from_file.upload_dwg_backups is True
    from_env = settings([], {"PROCOREFS_LOCAL_ONLY": "a-*, b-*",
                             "PROCOREFS_UPLOAD_DWG_BACKUPS": "no",
                             "PROCOREFS_NOT_LOCAL_ONLY": "*.tmp"}, cfg)
    assert from_env.local_only == ("a-*", "b-*")      # the env list replaces the file's
    assert from_env.not_local_only == ("*.tmp",)
    assert from_env.upload_dwg_backups is False
    args = parse([])
    args.local_only = ["flag-*"]
    assert settings_from_args(args, {"PROCOREFS_LOCAL_ONLY": "env-*"}).local_only == (
        "flag-*",)
    assert Settings(environment="production", api_url="", login_url="").local_only == ()


@pytest.mark.parametrize(("text", "needle"), [
    ('local_only = "*.wip"\nupload_dwg_backups = "perhaps"\n', "true or false"),
    ('local_only = [1]\n', "must hold strings"),
    ('local_only = ["sub/dir*"]\n', "patterns match one file name"),
])
def test_bad_local_only_settings_are_refused(cfg: Path, text: str, needle: str) -> None:
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        settings([], {}, cfg)


def test_transfer_tuning_from_flags_over_env_over_file(cfg: Path) -> None:
    cfg.write_text("upload_parallel = 2\ntimeout = 10\nmax_retries = 1\n")
    env = {"PROCOREFS_UPLOAD_PARALLEL": "3", "PROCOREFS_TIMEOUT": "20"}
    s = settings(["--upload-parallel", "5", "--upload-part-size", str(8 * 1024 * 1024),
                  "--download-parallel", "6", "--small-upload-max", "0"], env, cfg)
    assert settings(["--request-timeout", "7"], env, cfg).timeout == 7.0
    assert (s.upload_parallel, s.upload_part_size, s.download_parallel) == (5, 8 << 20, 6)
    assert s.small_upload_max == 0
    assert (s.timeout, s.max_retries) == (20.0, 1)            # env over file, file over default
    with pytest.raises(ConfigError, match="upload_part_size"):
        settings(["--upload-part-size", "1024"], {}, cfg)
