"""Typed access to one table of the TOML file: every value checked for its kind, every
error naming ``[section] key``; secrets read from the environment or a file."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailbot.config.types import ConfigError


class Reader:
    """One reading of one configuration: the keys its sections have seen (what is left is
    unknown: keys.unknown_keys) and whether secrets are read or only checked."""

    def __init__(self, read_secrets: bool = True):
        self.seen: dict[str, set[str]] = {}  # section → keys read
        self.read_secrets = read_secrets  # False: password_env/password_file are checked

    def section(self, data: dict[str, Any], name: str, optional: bool = False) -> Section:
        return Section(data, name, optional, self)


class Section:
    """Typed access to one TOML table; every error names ``[section] key``."""

    def __init__(self, data: dict[str, Any], name: str, optional: bool = False,
                 reader: Reader | None = None):
        self.name = name
        self.reader = reader or Reader()
        self.keys = self.reader.seen.setdefault(name, set())
        value = data.get(name)
        if value is None:
            if not optional:
                raise ConfigError(f"[{name}]: missing section")
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}]: must be a table")
        self.data = value

    def error(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"[{self.name}] {key}: {msg}")

    def get(self, key: str, kind: type | tuple[type, ...], what: str, default: Any = ...) -> Any:
        self.keys.add(key)
        if key not in self.data:
            if default is ...:
                raise self.error(key, "missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _tuple(kind):
            raise self.error(key, f"must be {what}, not {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, str, "a text in quotes", default)
        if isinstance(value, str) and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def opt_str(self, key: str) -> str | None:
        return self.text(key, None)

    def integer(self, key: str, default: Any = ..., minimum: int = 1) -> Any:
        value = self.get(key, int, "a whole number", default)
        if isinstance(value, int) and value < minimum:
            raise self.error(key, f"must be at least {minimum}")
        return value

    def number(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (int, float), "a number", default)
        if value is not None and value <= 0:
            raise self.error(key, "must be greater than 0")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> Any:
        value = self.text(key, default)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def datetime(self, key: str, tz: ZoneInfo, default: Any = ...) -> Any:
        value = self.get(key, (dt.datetime, str), "a date and time like 2021-05-31T10:00:00",
                         default)
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                raise self.error(key, f"not a date and time like 2021-05-31T10:00:00: "
                                      f"{value!r}") from None
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
        return value

    def duration(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (str, int), 'a duration like "7d", "24h" or "30m"', default)
        if isinstance(value, int):
            return dt.timedelta(days=value)
        if isinstance(value, str):
            parsed = parse_duration(value)
            if parsed is None or parsed <= dt.timedelta(0):
                raise self.error(key, f'not a duration like "7d", "24h" or "30m": {value!r}')
            return parsed
        return value

    def password(self) -> str | None:
        env_name = self.opt_str("password_env")
        file_name = self.opt_str("password_file")
        if env_name and file_name:
            raise self.error("password_env", "give password_env or password_file, not both")
        if (env_name or file_name) and not self.reader.read_secrets:
            return ""
        if env_name:
            value = os.environ.get(env_name)
            if not value:
                raise self.error("password_env", f"environment variable {env_name} is not set")
            return value
        if file_name:
            return read_secret(self, file_name)
        return None


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def secret_path(name: str) -> Path:
    """A secret file's path: relative names are looked up in ``$CREDENTIALS_DIRECTORY``
    (systemd's ``LoadCredential=``) when it is set."""
    path = Path(name)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if not path.is_absolute() and creds:
        path = Path(creds) / path
    return path


def read_secret(section: Section, name: str, key: str = "password_file") -> str:
    path = secret_path(name)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise section.error(key, f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise section.error(key, f"{path} is empty")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|min|s|days?|hours?|minutes?)\s*$",
                       re.IGNORECASE)
_UNIT = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: str) -> dt.timedelta | None:
    """ "7d", "24h", "90m", "30s" (also "7 days", "1 hour") → timedelta; None if not one."""
    m = _DURATION.match(value)
    if not m:
        return None
    unit = _UNIT[m[2][0].lower()] if m[2].lower() != "min" else "minutes"
    return dt.timedelta(**{unit: float(m[1])})
