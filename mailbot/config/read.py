"""How the TOML document becomes a :class:`~mailbot.config.types.Config`: one reader per
section, each validating its keys (with the [imap] provider's preset filled in first)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbot.config import providers
from mailbot.config.section import Reader, Section, parse_duration, read_secret, secret_path
from mailbot.config.types import (
    AUTH_MODES,
    DEFAULT_PORTS,
    OAUTH2_PROVIDERS,
    OAUTH2_SCOPES,
    OAUTH2_SECRET_KEYS,
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
from mailbot.core.text import ADDR_RE


def read(data: dict[str, Any], source: Path | None, reader: Reader) -> Config:
    """The Config of a document (its preset already applied); the first problem raises."""
    event = _event(reader.section(data, "event"))
    oauth2 = _oauth2(reader.section(data, "oauth2")) if "oauth2" in data else None
    imap = _imap(reader.section(data, "imap"), oauth2) if "imap" in data else None
    maildir = _maildir(reader.section(data, "maildir")) if "maildir" in data else None
    if imap and maildir:
        raise ConfigError("[imap] and [maildir]: give one inbox, not both")
    if not imap and not maildir:
        raise ConfigError("[imap]: missing (or [maildir] for a local inbox)")
    templates = reader.section(data, "templates", optional=True).opt_str("path")
    return Config(
        event=event,
        zoom=_zoom(reader.section(data, "zoom")),
        contact=_contact(reader.section(data, "contact")),
        smtp=_smtp(reader.section(data, "smtp"), oauth2),
        database=Path(reader.section(data, "database").text("path")),
        imap=imap,
        maildir=maildir,
        daemon=_daemon(reader.section(data, "daemon", optional=True)),
        limits=_limits(reader.section(data, "limits", optional=True)),
        privacy=_privacy(reader.section(data, "privacy", optional=True)),
        reminders=_reminders(reader.section(data, "reminders", optional=True)),
        templates=Path(templates) if templates else None,
        source=source,
        digest=_digest(reader.section(data, "digest", optional=True)),
        serve=_serve(reader.section(data, "serve", optional=True)),
    )


def section_problems(data: dict[str, Any], reader: Reader) -> list[str]:
    """Every section's first problem, each section validated on its own (for `check`)."""
    found = []
    oauth2 = None
    if "oauth2" in data:
        try:
            oauth2 = _oauth2(reader.section(data, "oauth2"))
        except ConfigError as exc:
            found.append(str(exc))
            oauth2 = _BROKEN
    parts: list[tuple[str, Any]] = [
        ("event", _event), ("zoom", _zoom), ("contact", _contact),
        ("smtp", lambda s: _smtp(s, oauth2)),
        ("daemon", _daemon), ("limits", _limits), ("privacy", _privacy),
        ("reminders", _reminders), ("digest", _digest), ("serve", _serve)]
    parts.append(("imap", lambda s: _imap(s, oauth2)) if "imap" in data or "maildir" not in data
                 else ("maildir", _maildir))
    optional = {"daemon", "limits", "privacy", "reminders", "digest", "serve"}
    for name, check in parts:
        try:
            check(reader.section(data, name, optional=name in optional))
        except ConfigError as exc:
            found.append(str(exc))
    try:
        reader.section(data, "database").text("path")
    except ConfigError as exc:
        found.append(str(exc))
    return found


def with_preset(data: dict[str, Any]) -> dict[str, Any]:
    """``[imap] provider``: the preset's values where the file gives none."""
    imap = data.get("imap")
    if not isinstance(imap, dict) or "provider" not in imap:
        return data
    name = imap["provider"]
    if not isinstance(name, str) or providers.preset(name) is None:
        raise ConfigError(f"[imap] provider: unknown provider {name!r} (known: "
                          f"{providers.names()}; or leave it out and give host and port)")
    return providers.apply(data, name)


def _event(s: Section) -> EventConfig:
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
        organiser_language=s.choice("organiser_language", ("de", "en"), language),
        capacity=s.integer("capacity", None),
        registration_deadline=s.datetime("registration_deadline", tz, None),
        cancelled=s.get("cancelled", bool, "true or false", False),
    )


def _zoom(s: Section) -> ZoomConfig:
    url = s.text("url")
    if not url.startswith(("https://", "http://")):
        raise s.error("url", f"must start with https://, not {url!r}")
    return ZoomConfig(url=url, meeting_id=s.text("meeting_id"), passcode=s.opt_str("passcode"))


def _contact(s: Section) -> ContactConfig:
    address = s.text("address").strip().lower()
    if not ADDR_RE.fullmatch(address):  # it becomes the SMTP envelope sender as it is
        raise s.error("address", f"not an e-mail address: {address!r}")
    return ContactConfig(name=s.text("name"), address=address, organisation=s.text("organisation"))


def _security(s: Section, proto: str) -> tuple[str, str | None, int]:
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


_BROKEN = OAuth2Config(provider="generic")  # [oauth2] has an error of its own (check)


def _auth(s: Section, oauth2: OAuth2Config | None) -> str:
    auth = s.choice("auth", AUTH_MODES, "password")
    if auth == "oauth2" and oauth2 is None:
        raise s.error("auth", '"oauth2" needs an [oauth2] section (provider, client id, '
                              "secret file)")
    return auth


def _imap(s: Section, oauth2: OAuth2Config | None = None) -> ImapConfig:
    security, host, port = _security(s, "imap")
    assert host is not None  # s.text: [imap] host is required
    auth = _auth(s, oauth2)
    password = s.password()
    if password is None and auth == "password":
        raise s.error("password_env", "missing (or password_file, or auth = \"oauth2\")")
    folder = s.text("folder", "INBOX")
    processed = s.text("processed_folder", "Processed")
    if processed == folder or processed.upper() == folder.upper() == "INBOX":
        raise s.error("processed_folder", "must differ from folder")  # INBOX: any case
    approve = s.text("approve_folder", "mailbot/Anmelden")
    settle = s.text("settle_folder", "mailbot/Erledigt")
    for key, value in (("approve_folder", approve), ("settle_folder", settle)):
        if value in (folder, processed) or (key == "settle_folder" and value == approve):
            raise s.error(key, "must differ from folder, processed_folder and each other")
    name = s.opt_str("provider")
    provider = providers.canonical(name) if name else None
    return ImapConfig(host=host, port=port, security=security, username=s.text("username"),
                      password=password or "", folder=folder, processed_folder=processed,
                      ca_file=s.opt_str("ca_file"), timeout=s.number("timeout", 60.0),
                      authserv_id=s.opt_str("authserv_id"), auth=auth,
                      oauth2=oauth2 if auth == "oauth2" else None, provider=provider,
                      save_sent=_save_sent(s, host, provider), approve_folder=approve,
                      settle_folder=settle)


def _save_sent(s: Section, host: str, provider: str | None) -> bool:
    """``auto``: off where the provider files SMTP-submitted mail in Sent itself."""
    value = s.get("save_sent", (bool, str), 'true, false or "auto"', "auto")
    if isinstance(value, bool):
        return value
    if value != "auto":
        raise s.error("save_sent", f'must be true, false or "auto", not {value!r}')
    return not providers.files_sent_itself(host, provider)


def _maildir(s: Section) -> MaildirConfig:
    return MaildirConfig(path=Path(s.text("path")),
                         processed_folder=s.text("processed_folder", "Processed"))


def _smtp(s: Section, oauth2: OAuth2Config | None = None) -> SmtpConfig:
    dry_run = s.opt_str("dry_run_dir")
    if dry_run:
        return SmtpConfig(dry_run_dir=Path(dry_run))
    security, host, port = _security(s, "smtp")
    if host is None:
        raise s.error("host", "missing (or dry_run_dir to write replies as files)")
    auth = _auth(s, oauth2)
    username = s.opt_str("username")
    password = s.password()
    if auth == "oauth2" and not username:
        raise s.error("username", "missing (OAuth2 logs in as this mailbox)")
    if auth == "password" and username and password is None:
        raise s.error("password_env", "missing (username is set, so a password is needed)")
    return SmtpConfig(host=host, port=port, security=security, username=username,
                      password=password if username else None, ca_file=s.opt_str("ca_file"),
                      timeout=s.number("timeout", 60.0), connections=_connections(s),
                      auth=auth, oauth2=oauth2 if auth == "oauth2" else None,
                      max_per_minute=s.integer("max_per_minute", None),
                      max_per_hour=s.integer("max_per_hour", None),
                      max_per_day=s.integer("max_per_day", None))


def _oauth2(s: Section) -> OAuth2Config:
    """``[oauth2]``: the provider and where its secret lives (a file, never this one)."""
    for key in OAUTH2_SECRET_KEYS:
        if key in s.data:
            raise s.error(key, "secrets never go into this file: put it into a file "
                               "readable only by mailbot and give client_secret_file")
    provider = s.choice("provider", OAUTH2_PROVIDERS)
    scope = s.text("scope", OAUTH2_SCOPES.get(provider, ...))
    ca_file = s.opt_str("ca_file")
    if provider == "google":
        name = s.text("service_account_file")
        return OAuth2Config(
            provider=provider, service_account=read_secret(s, name, "service_account_file"),
            secret_file=str(secret_path(name)), delegated_user=s.text("delegated_user"),
            scope=scope, ca_file=ca_file)
    client_id = s.text("client_id")
    secret_name = s.opt_str("client_secret_file")
    cert_name = s.opt_str("certificate_file") if provider == "microsoft" else None
    if bool(secret_name) == bool(cert_name):
        raise s.error("client_secret_file", "missing (or certificate_file with "
                                            "certificate_thumbprint)" if not secret_name
                      else "give client_secret_file or certificate_file, not both")
    name = secret_name or cert_name
    assert name is not None  # exactly one of the two is given (checked above)
    secret = read_secret(s, name, "client_secret_file" if secret_name else "certificate_file")
    common = dict(provider=provider, client_id=client_id, secret_file=str(secret_path(name)),
                  scope=scope, ca_file=ca_file)
    if provider == "generic":
        url = s.text("token_url")
        if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise s.error("token_url", f"must start with https://, not {url!r}")
        return OAuth2Config(client_secret=secret, token_url=url, **common)
    authority = s.text("authority", "https://login.microsoftonline.com").rstrip("/")
    return OAuth2Config(
        tenant=s.text("tenant"), authority=authority,
        client_secret=secret if secret_name else None,
        certificate=secret if cert_name else None,
        thumbprint=s.text("certificate_thumbprint") if cert_name else None, **common)


def _connections(s: Section) -> int:
    value = s.integer("connections", 2)
    if value > 10:
        raise s.error("connections", "at most 10 (mail servers refuse more from one client)")
    return value


def _daemon(s: Section) -> DaemonConfig:
    idle = s.get("idle", bool, "true or false", True)
    return DaemonConfig(poll_interval=float(s.number("poll_interval", 60.0)),
                        batch_size=s.integer("batch_size", 100),
                        max_age=s.duration("max_age", dt.timedelta(days=7)), idle=idle)


def _limits(s: Section) -> LimitsConfig:
    return LimitsConfig(
        max_message_bytes=int(s.number("max_message_mb", 25) * 1_000_000),
        replies_per_recipient_per_day=s.integer("replies_per_recipient_per_day", 5),
        replies_per_domain_per_day=s.integer("replies_per_domain_per_day", 200),
        max_participants=s.integer("max_participants_per_mail", 10),
        max_others_per_sender_per_day=s.integer("max_others_per_sender_per_day", 10,
                                                minimum=0),
        max_others_per_hour=s.integer("max_others_per_hour", 30, minimum=0),
        max_others_per_day=s.integer("max_others_per_day", 50, minimum=0),
        others_get_details=s.get("others_get_details", bool, "true or false", True),
        max_new_per_domain_per_hour=s.integer("max_new_per_domain_per_hour", 20),
    )


def _privacy(s: Section) -> PrivacyConfig:
    return PrivacyConfig(note=s.opt_str("note"), note_en=s.opt_str("note_en"),
                         retain_days=s.integer("retain_days_after_event", 30, minimum=0),
                         mailbox=s.choice("mailbox", ("delete", "keep"), "delete"),
                         backup_days=s.integer("backup_days", 7, minimum=0))


def _digest(s: Section) -> DigestConfig:
    to = s.opt_str("to")
    if to is not None:
        to = to.strip().lower()
        if not ADDR_RE.fullmatch(to):
            raise s.error("to", f"not an e-mail address: {to!r}")
    at = s.text("at", "08:00")
    if re.fullmatch(r"\d:\d\d", at.strip()):
        at = "0" + at.strip()  # "8:00" is meant as 08:00
    try:
        time = dt.time.fromisoformat(at)
    except ValueError:
        raise s.error("at", f'not a time like "08:00": {at!r}') from None
    return DigestConfig(to=to, at=time,
                        attach_list=s.get("attach_list", bool, "true or false", False))


def _serve(s: Section) -> ServeConfig:
    env_name, file_name = s.opt_str("password_env"), s.opt_str("password_file")
    if env_name and file_name:
        raise s.error("password_env", "give password_env or password_file, not both")
    return ServeConfig(password_env=env_name, password_file=file_name)


def serve_password(config: Config) -> str | None:
    """The password of ``mailbot serve``'s login, read now (None: none configured)."""
    keys = {"password_env": config.serve.password_env,
            "password_file": config.serve.password_file}
    return Section({"serve": {k: v for k, v in keys.items() if v}}, "serve").password()


def _reminders(s: Section) -> tuple[dt.timedelta, ...]:
    values = s.get("before", list, 'a list like ["24h", "1h"]', ["24h", "1h"])
    out = []
    for value in values:
        parsed = parse_duration(value) if isinstance(value, str) else None
        if parsed is None or parsed <= dt.timedelta(0):
            raise s.error("before", f'not a duration like "24h" or "1h": {value!r}')
        out.append(parsed)
    return tuple(sorted(set(out), reverse=True))
