"""Load and validate the TOML configuration into frozen dataclasses.

The key names are a documented interface (see ``config/example.toml``): keys may be
added, never renamed. Every problem is reported as a :class:`ConfigError` whose message
names the key, so the command line can print it as one line and exit 2.

Relative paths (database, Maildir, dry-run folder, password files) are taken relative to
the current working directory, as a shell user would expect; cron and systemd examples
``cd`` into the project folder or use absolute paths.
"""


from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from mailbot.config.keys import unknown_keys
from mailbot.config.read import read, section_problems, serve_password, with_preset
from mailbot.config.section import Reader, parse_duration, secret_path
from mailbot.config.types import (
    AUTH_MODES,
    DEFAULT_PATH,
    DEFAULT_PORTS,
    OAUTH2_PROVIDERS,
    OAUTH2_SCOPES,
    SECURITY_MODES,
    Config,
    ConfigError,
    ContactConfig,
    DaemonConfig,
    DigestConfig,
    EventConfig,
    ImapConfig,
    LimitsConfig,
    MaildirConfig,
    OAuth2Config,
    PrivacyConfig,
    ServeConfig,
    SmtpConfig,
    ZoomConfig,
)

__all__ = [  # the names other modules import from here, wherever they are defined
    "AUTH_MODES", "DEFAULT_PATH", "DEFAULT_PORTS", "OAUTH2_PROVIDERS", "OAUTH2_SCOPES",
    "SECURITY_MODES", "Config", "ConfigError", "ContactConfig", "DaemonConfig",
    "DigestConfig", "EventConfig", "ImapConfig", "LimitsConfig", "MaildirConfig",
    "OAuth2Config", "PrivacyConfig", "ServeConfig", "SmtpConfig", "ZoomConfig", "load",
    "parse", "parse_duration", "problems", "resolve_path", "secret_path", "serve_password",
    "unknown_keys"]


def resolve_path(cli_path: str | os.PathLike[str] | None) -> Path:
    """The config path: ``--config``, else ``$MAILBOT_CONFIG``, else ``config/mailbot.toml``."""
    if cli_path:
        return Path(cli_path)
    if os.environ.get("MAILBOT_CONFIG"):
        return Path(os.environ["MAILBOT_CONFIG"])
    return DEFAULT_PATH


def load(path: str | os.PathLike[str], secrets: bool = True) -> Config:
    """Read and validate the file at ``path``; raise :class:`ConfigError` on any problem.
    With ``secrets=False`` the passwords are not read (they are empty): for the commands
    that only read the database, so they run without the service's credentials."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse(data, source=path, secrets=secrets)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse(data: dict[str, Any], source: Path | None = None, secrets: bool = True) -> Config:
    """Validate an already-decoded TOML document. A key or section that mailbot does not
    know is an error (a typo would otherwise silently leave a default in place)."""
    reader = Reader(read_secrets=secrets)
    try:
        config = read(with_preset(data), source, reader)
    except ConfigError:
        unknown = unknown_keys(data, reader.seen)  # a typo explains a "missing" better
        if unknown:
            raise ConfigError(unknown[0]) from None
        raise
    unknown = unknown_keys(data, reader.seen)
    if unknown:
        raise ConfigError(unknown[0])
    return config


def problems(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of the file, not only the first (for `mailbot check`): each section
    is validated on its own."""
    try:
        load(path)
        return []
    except ConfigError as exc:
        first = str(exc)
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return [first]
    reader = Reader()
    found = [f"{path}: {problem}" for problem in unknown_keys(data, reader.seen)]
    try:
        data = with_preset(data)
    except ConfigError as exc:
        return [f"{path}: {exc}"]
    found += [f"{path}: {problem}" for problem in section_problems(data, reader)]
    found += [f"{path}: {p}" for p in unknown_keys(data, reader.seen)
              if f"{path}: {p}" not in found]
    return found or [first]
