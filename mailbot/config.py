"""Load and validate the TOML configuration into frozen dataclasses.

The key names are a documented interface (see ``config/example.toml``): keys may be
added, never renamed. Every problem is reported as a :class:`ConfigError` whose message
names the key, so the command line can print it as one line and exit 2.

Relative paths (database, Maildir, dry-run folder, password files) are taken relative to
the current working directory, as a shell user would expect; cron and systemd examples
``cd`` into the project folder or use absolute paths.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .text import ADDR_RE

DEFAULT_PATH = Path("config/mailbot.toml")
SECURITY_MODES = ("tls", "starttls", "none")
DEFAULT_PORTS = {
    "imap": {"tls": 993, "starttls": 143, "none": 143},
    "smtp": {"tls": 465, "starttls": 587, "none": 25},
}


class ConfigError(Exception):
    """Raised when the configuration file is missing, unreadable or has a bad key.

    The message is one line and names the offending key, e.g. ``[event] start: missing``.
    """


@dataclass(frozen=True)
class EventConfig:
    title: str
    start: dt.datetime  # aware, in `timezone`
    end: dt.datetime
    timezone: str
    language: str = "de"
    capacity: int | None = None
    registration_deadline: dt.datetime | None = None
    cancelled: bool = False  # the whole event is off: `mailbot announce` tells everyone

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def deadline(self) -> dt.datetime:
        return self.registration_deadline or self.start


@dataclass(frozen=True)
class ZoomConfig:
    url: str
    meeting_id: str
    passcode: str | None = None  # a meeting without passcode: leave the key out


@dataclass(frozen=True)
class ContactConfig:
    name: str
    address: str
    organisation: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    ca_file: str | None = None
    timeout: float = 60.0
    authserv_id: str | None = None  # our server's Authentication-Results id (DMARC check)


@dataclass(frozen=True)
class MaildirConfig:
    path: Path
    processed_folder: str = "Processed"


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None = None
    port: int | None = None
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    dry_run_dir: Path | None = None
    ca_file: str | None = None
    timeout: float = 60.0
    connections: int = 2  # SMTP connections used side by side for a batch of replies


@dataclass(frozen=True)
class DaemonConfig:
    poll_interval: float = 60.0
    batch_size: int = 100
    max_age: dt.timedelta = dt.timedelta(days=7)  # older mail is recorded, never answered
    idle: bool = True  # use IMAP IDLE where the server offers it


@dataclass(frozen=True)
class LimitsConfig:
    max_message_bytes: int = 25_000_000  # larger mail is not downloaded → review
    replies_per_recipient_per_day: int = 5
    replies_per_domain_per_day: int = 200
    max_participants: int = 10  # more people in one mail → review
    # people registered by someone else ("others"): at most this many are mailed per
    # sender and day, and overall per hour; beyond → review, no mail
    max_others_per_sender_per_day: int = 10
    max_others_per_hour: int = 30
    others_get_details: bool = True  # False: they are only asked, the details follow
    max_new_per_domain_per_hour: int = 20  # a burst of new registrations → review


@dataclass(frozen=True)
class PrivacyConfig:
    note: str | None = None  # replaces the default privacy note of German replies
    note_en: str | None = None  # … of English replies
    retain_days: int = 30  # personal data is erased this many days after the event
    mailbox: str = "delete"  # forget/purge also delete the mails ("keep": leave them)
    backup_days: int = 7  # forget/purge first write a backup, kept this many days


@dataclass(frozen=True)
class DigestConfig:
    to: str | None = None  # the organiser's address; None: no digest
    at: dt.time = dt.time(8, 0)  # local time of [event] timezone


@dataclass(frozen=True)
class Config:
    event: EventConfig
    zoom: ZoomConfig
    contact: ContactConfig
    smtp: SmtpConfig
    database: Path
    imap: ImapConfig | None = None
    maildir: MaildirConfig | None = None
    daemon: DaemonConfig = DaemonConfig()
    limits: LimitsConfig = LimitsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    reminders: tuple[dt.timedelta, ...] = (dt.timedelta(hours=24), dt.timedelta(hours=1))
    templates: Path | None = None
    source: Path | None = None
    digest: DigestConfig = DigestConfig()


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
    _Section.seen = {}
    _Section.read_secrets = secrets
    try:
        config = _parse(data, source)
    except ConfigError:
        unknown = unknown_keys(data)  # a typo explains a "missing" better than "missing"
        if unknown:
            raise ConfigError(unknown[0]) from None
        raise
    finally:
        _Section.read_secrets = True
    unknown = unknown_keys(data)
    if unknown:
        raise ConfigError(unknown[0])
    return config


def _parse(data: dict[str, Any], source: Path | None) -> Config:
    event = _event(_Section(data, "event"))
    imap = _imap(_Section(data, "imap")) if "imap" in data else None
    maildir = _maildir(_Section(data, "maildir")) if "maildir" in data else None
    if imap and maildir:
        raise ConfigError("[imap] and [maildir]: give one inbox, not both")
    if not imap and not maildir:
        raise ConfigError("[imap]: missing (or [maildir] for a local inbox)")
    templates = _Section(data, "templates", optional=True).opt_str("path")
    return Config(
        event=event,
        zoom=_zoom(_Section(data, "zoom")),
        contact=_contact(_Section(data, "contact")),
        smtp=_smtp(_Section(data, "smtp")),
        database=Path(_Section(data, "database").text("path")),
        imap=imap,
        maildir=maildir,
        daemon=_daemon(_Section(data, "daemon", optional=True)),
        limits=_limits(_Section(data, "limits", optional=True)),
        privacy=_privacy(_Section(data, "privacy", optional=True)),
        reminders=_reminders(_Section(data, "reminders", optional=True)),
        templates=Path(templates) if templates else None,
        source=source,
        digest=_digest(_Section(data, "digest", optional=True)),
    )


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
    _Section.seen = {}
    found = [f"{path}: {problem}" for problem in unknown_keys(data)]
    parts: list[tuple[str, Any]] = [
        ("event", _event), ("zoom", _zoom), ("contact", _contact), ("smtp", _smtp),
        ("daemon", _daemon), ("limits", _limits), ("privacy", _privacy),
        ("reminders", _reminders), ("digest", _digest)]
    parts.append(("imap", _imap) if "imap" in data or "maildir" not in data
                 else ("maildir", _maildir))
    optional = {"daemon", "limits", "privacy", "reminders", "digest"}
    for name, check in parts:
        try:
            check(_Section(data, name, optional=name in optional))
        except ConfigError as exc:
            found.append(f"{path}: {exc}")
    try:
        _Section(data, "database").text("path")
    except ConfigError as exc:
        found.append(f"{path}: {exc}")
    found += [f"{path}: {p}" for p in unknown_keys(data) if f"{path}: {p}" not in found]
    return found or [first]


# TOML keys whose name is not the name of the dataclass field they fill. A key named
# like its field needs no entry: the known keys of a section are its dataclass's fields,
# these, and every key the section's parser reads (so a new key is known by being read).
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "password": ("password_env", "password_file"),
    "max_message_bytes": ("max_message_mb",),
    "max_participants": ("max_participants_per_mail",),
    "retain_days": ("retain_days_after_event",),
}
# Sections whose value is not a dataclass: their keys.
PLAIN_SECTIONS: dict[str, tuple[str, ...]] = {
    "database": ("path",), "templates": ("path",), "reminders": ("before",)}
NOT_SECTIONS = {"source"}  # Config fields that are not read from the file


def unknown_keys(data: dict[str, Any]) -> list[str]:
    """One line per section or key of ``data`` that mailbot does not know, with the
    nearest known name ("did you mean …") where one is close."""
    sections = {f.name: f.name for f in dataclasses.fields(Config)
                if f.name not in NOT_SECTIONS}
    hints = get_type_hints(Config)
    found = []
    for name, value in data.items():
        if name not in sections:
            found.append(f"[{name}]: unknown section{_suggest(name, sections)}")
        elif isinstance(value, dict):
            found += _unknown_in(value, name, _dataclass_of(hints[name]))
    return found


def _unknown_in(table: dict[str, Any], name: str, cls: type | None) -> list[str]:
    known = set(PLAIN_SECTIONS.get(name, ())) | _Section.seen.get(name, set())
    hints = get_type_hints(cls) if cls else {}
    for f in dataclasses.fields(cls) if cls else ():
        known.update(KEY_ALIASES.get(f.name, (f.name,)))  # an aliased name is not read
    found = []
    for key, value in table.items():
        if key not in known:
            found.append(f"[{name}] {key}: unknown key{_suggest(key, known)}")
        elif isinstance(value, dict) and _dataclass_of(hints.get(key)):
            found += _unknown_in(value, f"{name}.{key}", _dataclass_of(hints[key]))
    return found


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass in a type hint like ``ImapConfig | None``, else None."""
    for candidate in (hint, *get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _suggest(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    if close:
        return f" — did you mean {close[0]}?"
    return f" (known: {', '.join(sorted(known))})"


class _Section:
    """Typed access to one TOML table; every error names ``[section] key``."""

    seen: dict[str, set[str]] = {}  # section → keys read (see unknown_keys)
    read_secrets = True  # False: password_env/password_file are checked, not read

    def __init__(self, data: dict[str, Any], name: str, optional: bool = False):
        self.name = name
        self.keys = _Section.seen.setdefault(name, set())
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
        if (env_name or file_name) and not _Section.read_secrets:
            return ""
        if env_name:
            value = os.environ.get(env_name)
            if not value:
                raise self.error("password_env", f"environment variable {env_name} is not set")
            return value
        if file_name:
            return _read_secret(self, file_name)
        return None


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _read_secret(section: _Section, name: str) -> str:
    path = Path(name)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if not path.is_absolute() and creds:
        path = Path(creds) / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise section.error("password_file", f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise section.error("password_file", f"{path} is empty")
    return value


def _event(s: _Section) -> EventConfig:
    tz_name = s.text("timezone")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise s.error("timezone", f"unknown time zone {tz_name!r} (e.g. Europe/Berlin)") from None
    start = s.datetime("start", tz)
    end = s.datetime("end", tz)
    if end <= start:
        raise s.error("end", "must be after start")
    language = s.choice("language", ("de", "en"), "de")
    return EventConfig(
        title=s.text("title"),
        start=start,
        end=end,
        timezone=tz_name,
        language=language,
        capacity=s.integer("capacity", None),
        registration_deadline=s.datetime("registration_deadline", tz, None),
        cancelled=s.get("cancelled", bool, "true or false", False),
    )


def _zoom(s: _Section) -> ZoomConfig:
    url = s.text("url")
    if not url.startswith(("https://", "http://")):
        raise s.error("url", f"must start with https://, not {url!r}")
    return ZoomConfig(url=url, meeting_id=s.text("meeting_id"), passcode=s.opt_str("passcode"))


def _contact(s: _Section) -> ContactConfig:
    address = s.text("address").strip().lower()
    if not ADDR_RE.fullmatch(address):  # it becomes the SMTP envelope sender as it is
        raise s.error("address", f"not an e-mail address: {address!r}")
    return ContactConfig(name=s.text("name"), address=address, organisation=s.text("organisation"))


def _security(s: _Section, proto: str) -> tuple[str, str | None, int]:
    security = s.choice("security", SECURITY_MODES, "tls" if proto == "imap" else "starttls")
    host = s.text("host") if proto == "imap" else s.opt_str("host")
    if security == "none" and host and not _is_loopback(host):
        raise s.error("security", f'"none" sends passwords in clear text; only allowed for a '
                                  f"loopback host, not {host!r}")
    port = s.integer("port", DEFAULT_PORTS[proto][security])
    if port > 65535:
        raise s.error("port", "must be at most 65535")
    return security, host, port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _imap(s: _Section) -> ImapConfig:
    security, host, port = _security(s, "imap")
    password = s.password()
    if password is None:
        raise s.error("password_env", "missing (or password_file)")
    folder = s.text("folder", "INBOX")
    processed = s.text("processed_folder", "Processed")
    if processed == folder:
        raise s.error("processed_folder", "must differ from folder")
    return ImapConfig(host=host, port=port, security=security, username=s.text("username"),
                      password=password, folder=folder, processed_folder=processed,
                      ca_file=s.opt_str("ca_file"), timeout=s.number("timeout", 60.0),
                      authserv_id=s.opt_str("authserv_id"))


def _maildir(s: _Section) -> MaildirConfig:
    return MaildirConfig(path=Path(s.text("path")),
                         processed_folder=s.text("processed_folder", "Processed"))


def _smtp(s: _Section) -> SmtpConfig:
    dry_run = s.opt_str("dry_run_dir")
    if dry_run:
        return SmtpConfig(dry_run_dir=Path(dry_run))
    security, host, port = _security(s, "smtp")
    if host is None:
        raise s.error("host", "missing (or dry_run_dir to write replies as files)")
    username = s.opt_str("username")
    password = s.password()
    if username and password is None:
        raise s.error("password_env", "missing (username is set, so a password is needed)")
    return SmtpConfig(host=host, port=port, security=security, username=username,
                      password=password if username else None, ca_file=s.opt_str("ca_file"),
                      timeout=s.number("timeout", 60.0), connections=_connections(s))


def _connections(s: _Section) -> int:
    value = s.integer("connections", 2)
    if value > 10:
        raise s.error("connections", "at most 10 (mail servers refuse more from one client)")
    return value


def _daemon(s: _Section) -> DaemonConfig:
    idle = s.get("idle", bool, "true or false", True)
    return DaemonConfig(poll_interval=float(s.number("poll_interval", 60.0)),
                        batch_size=s.integer("batch_size", 100),
                        max_age=s.duration("max_age", dt.timedelta(days=7)), idle=idle)


def _limits(s: _Section) -> LimitsConfig:
    return LimitsConfig(
        max_message_bytes=int(s.number("max_message_mb", 25) * 1_000_000),
        replies_per_recipient_per_day=s.integer("replies_per_recipient_per_day", 5),
        replies_per_domain_per_day=s.integer("replies_per_domain_per_day", 200),
        max_participants=s.integer("max_participants_per_mail", 10),
        max_others_per_sender_per_day=s.integer("max_others_per_sender_per_day", 10,
                                                minimum=0),
        max_others_per_hour=s.integer("max_others_per_hour", 30, minimum=0),
        others_get_details=s.get("others_get_details", bool, "true or false", True),
        max_new_per_domain_per_hour=s.integer("max_new_per_domain_per_hour", 20),
    )


def _privacy(s: _Section) -> PrivacyConfig:
    return PrivacyConfig(note=s.opt_str("note"), note_en=s.opt_str("note_en"),
                         retain_days=s.integer("retain_days_after_event", 30, minimum=0),
                         mailbox=s.choice("mailbox", ("delete", "keep"), "delete"),
                         backup_days=s.integer("backup_days", 7, minimum=0))


def _digest(s: _Section) -> DigestConfig:
    to = s.opt_str("to")
    if to is not None:
        to = to.strip().lower()
        if not ADDR_RE.fullmatch(to):
            raise s.error("to", f"not an e-mail address: {to!r}")
    at = s.text("at", "08:00")
    try:
        time = dt.time.fromisoformat(at)
    except ValueError:
        raise s.error("at", f'not a time like "08:00": {at!r}') from None
    return DigestConfig(to=to, at=time)


def _reminders(s: _Section) -> tuple[dt.timedelta, ...]:
    values = s.get("before", list, 'a list like ["24h", "1h"]', ["24h", "1h"])
    out = []
    for value in values:
        parsed = parse_duration(value) if isinstance(value, str) else None
        if parsed is None or parsed <= dt.timedelta(0):
            raise s.error("before", f'not a duration like "24h" or "1h": {value!r}')
        out.append(parsed)
    return tuple(sorted(set(out), reverse=True))


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
