"""Settings: which Procore to talk to, as whom, and how hard; owns every ``PROCOREFS_*`` name.

Values come from four layers, highest first: command-line flags, environment variables
(``PROCOREFS_*``), the TOML config file in the platform's config directory, built-in defaults.
The endpoints (``api_url``/``login_url``) are decided by the highest layer that names any of
``environment``, ``api_url`` or ``login_url``, so ``--env production`` on the command line is
never half-overridden by a stale ``PROCOREFS_API_URL`` in the shell.

The config file may hold one table per environment (``[sandbox]``, ``[production]`` ...) whose
keys apply only when that environment is selected: a Developer Sandbox has its own client id,
the monthly sandbox uses the production one. Secrets (tokens) are never read from the file;
they live in the OS keyring or come from the environment for automation.

This module is a leaf: stdlib and platformdirs only.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

APP_NAME = "procorefs"

MiB = 1024 * 1024

# (api_url, login_url); shared/procore-api.md section 1.1.
PRESETS: Mapping[str, tuple[str, str]] = {
    "production": ("https://api.procore.com", "https://login.procore.com"),
    "sandbox": ("https://sandbox.procore.com", "https://login-sandbox.procore.com"),
    "monthly": ("https://api-monthly.procore.com", "https://login-sandbox-monthly.procore.com"),
}
ENVIRONMENTS = (*PRESETS, "custom")

DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"

# Procore's part limits (shared/procore-api.md 5.1/5.2 and 9.14): 6-100 MiB satisfies both APIs.
MIN_PART_SIZE = 6 * MiB
MAX_PART_SIZE = 100 * MiB
DEFAULT_PART_SIZE = 16 * MiB


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True)
class Settings:
    environment: str
    api_url: str
    login_url: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    company_id: int | None = None
    project_id: int | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    config_dir: Path = field(default_factory=lambda: Path(platformdirs.user_config_dir(APP_NAME)))
    cache_dir: Path = field(default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME)))
    state_dir: Path = field(default_factory=lambda: Path(platformdirs.user_state_dir(APP_NAME)))
    # Which stored sign-in to use when several accounts signed in to one environment.
    account: str | None = None
    upload_part_size: int = DEFAULT_PART_SIZE
    upload_parallel: int = 4
    # Files up to this size go through the non-segmented upload: one API call instead of two
    # (no completion PATCH) and no hashing pass. Above it, segmented uploads win: parallel
    # parts, each retried alone, resumable after a crash. Equal to the default part size, so
    # everything that would be a single segment anyway takes the cheaper path.
    small_upload_max: int = DEFAULT_PART_SIZE
    download_parallel: int = 4
    timeout: float = 60.0
    max_retries: int = 6
    # The save-pattern name set (core/localnames.py): globs added to the names that never
    # reach Procore, default globs taken out of it, and whether AutoCAD's X.bak is uploaded.
    local_only: tuple[str, ...] = ()
    not_local_only: tuple[str, ...] = ()
    upload_dwg_backups: bool = False

    @property
    def token_namespace(self) -> str:
        """Where tokens are kept: one namespace per environment (tokens never carry across)."""
        if self.environment in PRESETS and (self.api_url, self.login_url) == PRESETS[
                self.environment]:
            return self.environment
        return f"custom:{self.api_url}"

    @property
    def trusted_origins(self) -> tuple[tuple[str, str, int], ...]:
        """Origins (scheme, host, port) that may see the Bearer token: the API and login
        origins. Whole origins, not hosts: the emulator serves storage on another port of
        the same host, and storage must never see the token."""
        return tuple(sorted({o for o in (_origin(self.api_url), _origin(self.login_url))
                             if o is not None}))

    @property
    def trusts_procore_domain(self) -> bool:
        """True for the real Procore environments, whose file URLs live on ``*.procore.com``."""
        return self.environment in PRESETS

    def is_trusted_url(self, url: str) -> bool:
        """May a request to ``url`` carry the Bearer token?"""
        origin = _origin(url)
        if origin is None:
            return False
        if origin in self.trusted_origins:
            return True
        scheme, host, _ = origin
        return self.trusts_procore_domain and scheme == "https" and (
            host == "procore.com" or host.endswith(".procore.com"))

    def prepare_dirs(self) -> None:
        """Create the cache and state directories, private to the user (0700)."""
        ensure_private_dir(self.cache_dir)
        ensure_private_dir(self.state_dir)



def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


# --- the layers -------------------------------------------------------------------------------

_ENV_KEYS: Mapping[str, str] = {
    "environment": "PROCOREFS_ENV",
    "api_url": "PROCOREFS_API_URL",
    "login_url": "PROCOREFS_LOGIN_URL",
    "client_id": "PROCOREFS_CLIENT_ID",
    "client_secret": "PROCOREFS_CLIENT_SECRET",
    "access_token": "PROCOREFS_ACCESS_TOKEN",
    "company_id": "PROCOREFS_COMPANY_ID",
    "project_id": "PROCOREFS_PROJECT_ID",
    "redirect_uri": "PROCOREFS_REDIRECT_URI",
    "account": "PROCOREFS_ACCOUNT",
    "config_dir": "PROCOREFS_CONFIG_DIR",
    "cache_dir": "PROCOREFS_CACHE_DIR",
    "state_dir": "PROCOREFS_STATE_DIR",
    "upload_part_size": "PROCOREFS_UPLOAD_PART_SIZE",
    "upload_parallel": "PROCOREFS_UPLOAD_PARALLEL",
    "small_upload_max": "PROCOREFS_SMALL_UPLOAD_MAX",
    "download_parallel": "PROCOREFS_DOWNLOAD_PARALLEL",
    "timeout": "PROCOREFS_TIMEOUT",
    "max_retries": "PROCOREFS_MAX_RETRIES",
    "local_only": "PROCOREFS_LOCAL_ONLY",
    "not_local_only": "PROCOREFS_NOT_LOCAL_ONLY",
    "upload_dwg_backups": "PROCOREFS_UPLOAD_DWG_BACKUPS",
}
ENV_CONFIG_FILE = "PROCOREFS_CONFIG"

# Keys the config file may not carry: a token in a plain file is exactly what we promise not
# to do. (The client secret is tolerated: Procore's own docs put it in app configuration.)
_FILE_FORBIDDEN = frozenset({"access_token"})
_ENDPOINT_KEYS = ("environment", "api_url", "login_url")
_INT_KEYS = frozenset({"company_id", "project_id", "upload_part_size", "upload_parallel",
                       "small_upload_max", "download_parallel", "max_retries"})
_FLOAT_KEYS = frozenset({"timeout"})
_PATH_KEYS = frozenset({"config_dir", "cache_dir", "state_dir"})
# Lists: a TOML array, a repeated flag, or a comma-separated variable.
_LIST_KEYS = frozenset({"local_only", "not_local_only"})
_BOOL_KEYS = frozenset({"upload_dwg_backups"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_KNOWN = frozenset(_ENV_KEYS)


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def env_layer(environ: Mapping[str, str]) -> dict[str, str]:
    return {key: environ[name] for key, name in _ENV_KEYS.items() if environ.get(name)}


def file_layer(path: Path, environment: str | None = None) -> dict[str, Any]:
    """The top-level keys of the TOML file, with ``[<environment>]`` applied over them.

    ``environment`` is the one chosen by a higher layer, if any; otherwise the file's own
    ``environment`` key picks the table. A missing file is an empty layer.
    """
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    layer: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in ENVIRONMENTS:
                raise ConfigError(f"{path}: unknown table [{key}] (tables are named after "
                                  f"environments: {', '.join(ENVIRONMENTS)})")
            for sub in value:
                _check_file_key(path, f"{key}.{sub}", sub)
            continue
        _check_file_key(path, key)
        layer[key] = value
    chosen = environment or layer.get("environment")
    table = data.get(chosen) if isinstance(chosen, str) else None
    if isinstance(table, dict):
        layer.update(table)
    return layer


def _check_file_key(path: Path, shown: str, key: str | None = None) -> None:
    key = key or shown
    if key in _FILE_FORBIDDEN:
        raise ConfigError(f"{path}: '{shown}' must not be stored in a file; "
                          f"use {_ENV_KEYS[key]} or `procorefs login`")
    if key not in _KNOWN:
        raise ConfigError(f"{path}: unknown setting '{shown}'")


def _coerce(key: str, value: object, source: str) -> object:
    if value is None:
        return None
    if key in _LIST_KEYS:
        return _coerce_list(key, value, source)
    if key in _BOOL_KEYS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    try:
        if key in _INT_KEYS:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(str(value).strip()) if not isinstance(value, int) else value
        if key in _FLOAT_KEYS:
            return float(value)  # type: ignore[arg-type]
        if key in _PATH_KEYS:
            return Path(str(value)).expanduser()
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} must be a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
    return value


def _coerce_list(key: str, value: object, source: str) -> tuple[str, ...]:
    items: list[object]
    if isinstance(value, str):
        items = list(value.split(","))
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(f"{source}: {key} must be a list of name patterns, got {value!r}")
    patterns: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{source}: {key} must hold strings, got {item!r}")
        if item.strip():
            if "/" in item or "\\" in item:
                raise ConfigError(f"{source}: {key}: {item!r} is a path; patterns match one "
                                  "file name")
            patterns.append(item.strip())
    return tuple(patterns)


def resolve(layers: list[tuple[str, Mapping[str, object]]]) -> Settings:
    """Merge named layers (highest precedence first) into checked ``Settings``."""
    merged: dict[str, object] = {}
    for key in _KNOWN - set(_ENDPOINT_KEYS):
        for source, layer in layers:
            if layer.get(key) not in (None, "", [], ()):
                merged[key] = _coerce(key, layer[key], source)
                break
    environment, api_url, login_url = _endpoints(layers)
    settings = Settings(environment=environment, api_url=api_url, login_url=login_url,
                        **merged)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _endpoints(layers: list[tuple[str, Mapping[str, object]]]) -> tuple[str, str, str]:
    for source, layer in layers:
        env = layer.get("environment")
        api = layer.get("api_url")
        login = layer.get("login_url")
        if not (env or api or login):
            continue
        env_s = str(_coerce("environment", env, source)) if env else None
        if env_s is not None and env_s not in ENVIRONMENTS:
            raise ConfigError(f"{source}: unknown environment {env_s!r} "
                              f"(choose from {', '.join(ENVIRONMENTS)})")
        if env_s is not None and env_s in PRESETS and not api and not login:
            preset = PRESETS[env_s]
            return env_s, preset[0], preset[1]
        if not api and env_s == "custom":
            # "--env custom" alone: the URLs may come from a lower layer.
            for _, lower in layers:
                if lower.get("api_url"):
                    api, login = lower.get("api_url"), lower.get("login_url")
                    break
        if not api:
            raise ConfigError(f"{source}: a custom environment needs an API URL (--api-url)")
        api_s = _url(str(_coerce("api_url", api, source)), source, "api_url")
        # The emulator (like the JS SDK's view of Procore) serves /oauth on the API origin.
        login_s = _url(str(_coerce("login_url", login, source)), source, "login_url") \
            if login else api_s
        for name, (p_api, p_login) in PRESETS.items():
            if (api_s, login_s) == (p_api, p_login):
                return name, api_s, login_s
        return "custom", api_s, login_s
    preset = PRESETS["production"]
    return "production", preset[0], preset[1]


def _url(value: str, source: str, key: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source}: {key} must be an http(s) URL, got {value!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"{source}: {key} must use https (plain http only for loopback)")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _validate(s: Settings) -> None:
    if not MIN_PART_SIZE <= s.upload_part_size <= MAX_PART_SIZE:
        raise ConfigError(f"upload_part_size must be within {MIN_PART_SIZE // MiB}-"
                          f"{MAX_PART_SIZE // MiB} MiB, got {s.upload_part_size}")
    for name in ("upload_parallel", "download_parallel"):
        if not 1 <= getattr(s, name) <= 32:
            raise ConfigError(f"{name} must be within 1-32")
    if s.small_upload_max < 0 or s.max_retries < 0 or s.timeout <= 0:
        raise ConfigError("small_upload_max and max_retries must be >= 0, timeout > 0")
    for name in ("company_id", "project_id"):
        value = getattr(s, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive id")


# --- the command line -------------------------------------------------------------------------

def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every command that talks to Procore shares."""
    group = parser.add_argument_group("connection")
    group.add_argument("--env", dest="environment", choices=ENVIRONMENTS, default=None,
                       help="Procore environment: production (default), sandbox (the developer "
                            "sandbox), monthly (the monthly sandbox), or custom with --api-url")
    group.add_argument("--api-url", default=None,
                       help="API origin, e.g. the emulator's http://127.0.0.1:8630")
    group.add_argument("--login-url", default=None,
                       help="OAuth origin (defaults to --api-url for a custom environment)")
    group.add_argument("--client-id", default=None,
                       help="OAuth client id of your app (secret: PROCOREFS_CLIENT_SECRET)")
    group.add_argument("--company", dest="company_id", type=int, default=None,
                       help="company id")
    group.add_argument("--project", dest="project_id", type=int, default=None,
                       help="project id (omit for company-level Documents)")
    group.add_argument("--account", default=None,
                       help="which signed-in account to use when there are several")
    group.add_argument("--config", dest="config_file", type=Path, default=None,
                       help=f"config file (default: {default_config_file()}, "
                            f"or ${ENV_CONFIG_FILE})")
    tuning = parser.add_argument_group(
        "transfer tuning", "also PROCOREFS_<NAME> variables and config-file keys")
    tuning.add_argument("--upload-part-size", type=int, default=None, metavar="BYTES",
                        help=f"segment size of large uploads, {MIN_PART_SIZE // MiB}-"
                             f"{MAX_PART_SIZE // MiB} MiB (default {DEFAULT_PART_SIZE // MiB} MiB)")
    tuning.add_argument("--upload-parallel", type=int, default=None, metavar="N",
                        help="segments uploaded at once (default 4)")
    tuning.add_argument("--small-upload-max", type=int, default=None, metavar="BYTES",
                        help="files up to this size use the one-request upload")
    tuning.add_argument("--download-parallel", type=int, default=None, metavar="N",
                        help="ranged GETs at once for large reads (default 4)")
    tuning.add_argument("--request-timeout", dest="request_timeout", type=float, default=None,
                        metavar="SECONDS",
                        help="per-request timeout (default 60)")
    tuning.add_argument("--max-retries", type=int, default=None, metavar="N",
                        help="retries of a failed idempotent request (default 6)")


def settings_from_args(args: argparse.Namespace,
                       environ: Mapping[str, str] | None = None) -> Settings:
    """Flags > ``PROCOREFS_*`` variables > config file > defaults."""
    env = os.environ if environ is None else environ
    cli = {key: getattr(args, key) for key in
           ("environment", "api_url", "login_url", "client_id", "company_id", "project_id",
            "account", "redirect_uri", "local_only", "not_local_only", "upload_dwg_backups",
            "upload_part_size", "upload_parallel", "small_upload_max", "download_parallel",
            "max_retries")
           if getattr(args, key, None) is not None}
    if getattr(args, "request_timeout", None) is not None:  # `login --timeout` is another one
        cli["timeout"] = args.request_timeout
    env_values = env_layer(env)
    explicit_file = getattr(args, "config_file", None) or env.get(ENV_CONFIG_FILE)
    path = Path(explicit_file).expanduser() if explicit_file else default_config_file()
    if explicit_file and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    chosen_env = cli.get("environment") or env_values.get("environment")
    file_values = file_layer(path, chosen_env if isinstance(chosen_env, str) else None)
    return resolve([("command line", cli), ("environment", env_values),
                    (str(path), file_values)])


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: caches hold the user's documents."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        os.chmod(path, 0o700)
    return path
