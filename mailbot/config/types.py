"""The configuration's values: frozen dataclasses, one per section of the TOML file, and
:class:`ConfigError`. How a file becomes them is in config/read.py; ``mailbot.config``
is the entry point (load, parse, problems) and names all of these too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

DEFAULT_PATH = Path("config/mailbot.toml")
SECURITY_MODES = ("tls", "starttls", "none")
AUTH_MODES = ("password", "oauth2")
OAUTH2_PROVIDERS = ("microsoft", "google", "generic")
OAUTH2_SCOPES = {"microsoft": "https://outlook.office365.com/.default",
                 "google": "https://mail.google.com/"}
DEFAULT_PORTS = {
    "imap": {"tls": 993, "starttls": 143, "none": 143},
    "smtp": {"tls": 465, "starttls": 587, "none": 25},
}
OAUTH2_SECRET_KEYS = ("client_secret", "password", "private_key")  # never in the file


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
class OAuth2Config:
    """How mailbot gets its OAuth2 access tokens (``[oauth2]``); secrets come from files."""

    provider: str  # microsoft | google | generic
    client_id: str | None = None
    tenant: str | None = None  # microsoft: directory (tenant) id or domain
    client_secret: str | None = field(default=None, repr=False)
    secret_file: str | None = None  # where the secret or key came from (for messages)
    certificate: str | None = field(default=None, repr=False)  # microsoft: PEM key + cert
    thumbprint: str | None = None
    service_account: str | None = field(default=None, repr=False)  # google: key JSON
    delegated_user: str | None = None  # google: the mailbox the service account acts as
    token_url: str | None = None  # generic
    scope: str = ""
    authority: str = "https://login.microsoftonline.com"  # microsoft: other clouds
    ca_file: str | None = None  # a CA bundle for the token endpoint


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
    auth: str = "password"  # or "oauth2"
    oauth2: OAuth2Config | None = None
    provider: str | None = None  # the preset it was filled from
    save_sent: bool = False  # append each sent reply to the \\Sent folder (inbox.py)


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
    auth: str = "password"  # or "oauth2"
    oauth2: OAuth2Config | None = None
    max_per_minute: int | None = None  # replies sent in any 60 s, hour, 24 h at most
    max_per_hour: int | None = None
    max_per_day: int | None = None


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
    max_others_per_day: int = 50  # … and overall per day (however many senders)
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
class ServeConfig:
    """``[serve]``: the login of ``mailbot serve``; the password is read only by serve
    (``config.serve_password``), so commands that only read the database need it not."""

    password_env: str | None = None
    password_file: str | None = None  # relative: in $CREDENTIALS_DIRECTORY when set


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
    serve: ServeConfig = ServeConfig()
