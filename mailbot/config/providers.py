"""Provider presets: ``[imap] provider = "ionos"`` fills the servers, ports, security and
sending limits an institute's mail host uses; every value can still be set by hand, and a
value set by hand wins.

Limits follow the providers' published figures where they publish them (Microsoft 365:
30 messages a minute, 10,000 recipients a day, 3 connections; Google Workspace: about 2,000
a day). Where a provider names no figure, the preset is a cautious guess that keeps an
event's mail flowing without tripping the provider's spam brakes; raise it to what your
contract says.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "microsoft365": {
        "imap": {"host": "outlook.office365.com", "port": 993, "security": "tls",
                 "save_sent": False},  # Exchange files SMTP-submitted mail in Sent Items
        "smtp": {"host": "smtp.office365.com", "port": 587, "security": "starttls",
                 "max_per_minute": 30, "max_per_day": 10_000, "connections": 3},
    },
    "google": {
        "imap": {"host": "imap.gmail.com", "port": 993, "security": "tls",
                 "save_sent": False,  # Gmail files SMTP-submitted mail in Sent itself
                 # Gmail's own verdict: "Authentication-Results: mx.google.com; dmarc=…"
                 # (Exchange Online writes its header without an authserv-id: no preset)
                 "authserv_id": "mx.google.com"},
        "smtp": {"host": "smtp.gmail.com", "port": 587, "security": "starttls",
                 "max_per_minute": 60, "max_per_day": 2_000, "connections": 2},
    },
    "ionos": {
        "imap": {"host": "imap.ionos.de", "port": 993, "security": "tls"},
        "smtp": {"host": "smtp.ionos.de", "port": 587, "security": "starttls",
                 "max_per_hour": 100, "connections": 1},  # "450 Mail send limit exceeded"
    },
    "strato": {
        "imap": {"host": "imap.strato.de", "port": 993, "security": "tls"},
        "smtp": {"host": "smtp.strato.de", "port": 465, "security": "tls",
                 "max_per_minute": 10, "max_per_hour": 250, "connections": 1},
    },
    "t-online": {
        "imap": {"host": "secureimap.t-online.de", "port": 993, "security": "tls"},
        "smtp": {"host": "securesmtp.t-online.de", "port": 465, "security": "tls",
                 "max_per_minute": 10, "max_per_hour": 100, "connections": 1},
    },
    "gmx": {
        "imap": {"host": "imap.gmx.net", "port": 993, "security": "tls"},
        "smtp": {"host": "mail.gmx.net", "port": 587, "security": "starttls",
                 "max_per_minute": 10, "max_per_hour": 100, "connections": 1},
    },
    "webde": {
        "imap": {"host": "imap.web.de", "port": 993, "security": "tls"},
        "smtp": {"host": "smtp.web.de", "port": 587, "security": "starttls",
                 "max_per_minute": 10, "max_per_hour": 100, "connections": 1},
    },
    "mailboxorg": {
        "imap": {"host": "imap.mailbox.org", "port": 993, "security": "tls"},
        "smtp": {"host": "smtp.mailbox.org", "port": 465, "security": "tls",
                 "max_per_minute": 20, "max_per_hour": 300, "connections": 2},
    },
    "hetzner": {
        "imap": {"host": "mail.your-server.de", "port": 993, "security": "tls"},
        "smtp": {"host": "mail.your-server.de", "port": 587, "security": "starttls",
                 "max_per_minute": 20, "max_per_hour": 500, "connections": 2},
    },
    "all-inkl": {  # the host is per customer (wXXXXXXX.kasserver.com): set [imap]/[smtp] host
        "imap": {"port": 993, "security": "tls"},
        "smtp": {"port": 465, "security": "tls", "max_per_minute": 20, "max_per_hour": 500,
                 "connections": 2},
    },
}

ALIASES = {"microsoft": "microsoft365", "office365": "microsoft365", "gmail": "google",
           "google-workspace": "google", "1und1": "ionos", "web.de": "webde",
           "telekom": "t-online", "mailbox.org": "mailboxorg", "allinkl": "all-inkl"}


def canonical(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def preset(name: str) -> dict[str, dict[str, Any]] | None:
    """The preset of a provider name (or one of its other spellings); None if unknown."""
    return PRESETS.get(canonical(name))


SELF_FILING = ("outlook.office365.com", "imap.gmail.com", "imap.googlemail.com")


def files_sent_itself(host: str | None, provider: str | None) -> bool:
    """Microsoft 365 and Google put SMTP-submitted mail into Sent by themselves."""
    if provider and provider in PRESETS:
        return PRESETS[provider]["imap"].get("save_sent") is False
    return (host or "").lower() in SELF_FILING


def names() -> str:
    return ", ".join(sorted(PRESETS))


def apply(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The TOML document with the preset's values filled in where the file has none
    (``[smtp]`` too, unless it writes replies to a folder)."""
    values = preset(name)
    assert values is not None
    out = dict(data)
    imap = {k: v for k, v in values["imap"].items() if k != "save_sent"}
    out["imap"] = {**imap, **data["imap"]}
    smtp = data.get("smtp")
    if isinstance(smtp, dict) and "dry_run_dir" not in smtp:
        out["smtp"] = {**values["smtp"], **smtp}
    elif smtp is None:
        out["smtp"] = dict(values["smtp"])
    return out
