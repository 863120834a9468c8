"""Loop and robot rules (RFC 3834): mail that must never be answered (pure).

One small function per rule; each returns a human-readable reason or None. The first rule
that fires decides; such mail is recorded as ``ignore`` and moved, never answered.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .models import ParsedMail

_ROBOT_LOCALPART = re.compile(
    r"^(?:mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"bounce[-+].*|.*-bounces(?:\+.*)?|noreply[-+].*|listserv|majordomo|daemon)$",
    re.IGNORECASE,
)


def auto_submitted(mail: ParsedMail, own: str) -> str | None:
    value = mail.headers.get("auto-submitted", "").strip().lower()
    if value and not value.startswith("no"):
        return f"automatische Nachricht (Auto-Submitted: {value[:40]})"
    return None


def precedence(mail: ParsedMail, own: str) -> str | None:
    value = mail.headers.get("precedence", "").strip().lower()
    if value in ("bulk", "list", "junk", "auto_reply", "auto-reply"):
        return f"Massen- oder Listenmail (Precedence: {value})"
    return None


def list_headers(mail: ParsedMail, own: str) -> str | None:
    for name in mail.headers:
        if name.startswith("list-"):
            return f"Mailingliste ({name.title()})"
    return None


def microsoft_auto_reply(mail: ParsedMail, own: str) -> str | None:
    if mail.headers.get("x-autoreply") or mail.headers.get("x-autorespond"):
        return "automatische Antwort (X-Autoreply)"
    if "oof" in mail.headers.get("x-ms-exchange-generated-message-source", "").lower():
        return "Abwesenheitsnotiz (Exchange)"
    return None


_ROBOT_SUBJECT = re.compile(
    r"^\s*(?:abwesenheitsnotiz|automatische antwort|automatic reply|auto(?:matic)?[- ]?reply"
    r"|autoreply|out of (?:the )?office|abwesend|nicht im büro|gelesen|read|nicht gelesen"
    r"|not read|zugestellt|delivered|unzustellbar|undeliverable|undelivered"
    r"|delivery status notification|mail delivery failed|returned mail|rückmeldung"
    r"|übermittlungsstatus|delivery (?:has )?failed)\s*:", re.IGNORECASE)


def robot_subject(mail: ParsedMail, own: str) -> str | None:
    """Outlook, Exchange and webmail auto-replies and read receipts often carry no header
    that says so, but their subject does ("Automatische Antwort:", "Gelesen:")."""
    m = _ROBOT_SUBJECT.match(mail.subject)
    return f"automatische Nachricht (Betreff „{m[0].strip()}“)" if m else None


def report(mail: ParsedMail, own: str) -> str | None:
    """Delivery reports and read receipts (RFC 3462/6522 multipart/report)."""
    if mail.headers.get("content-type", "").strip().lower().startswith("multipart/report"):
        return "Zustell- oder Lesebestätigung (multipart/report)"
    if mail.headers.get("disposition-notification-to") is not None and "gelesen" in (
            mail.subject.lower()):
        return "Lesebestätigung"
    return None


def empty_return_path(mail: ParsedMail, own: str) -> str | None:
    value = mail.headers.get("return-path")
    if value is not None and value.strip() in ("", "<>"):
        return "Unzustellbarkeitsmeldung (leerer Return-Path)"
    return None


def robot_sender(mail: ParsedMail, own: str) -> str | None:
    if mail.sender and _ROBOT_LOCALPART.match(mail.sender.partition("@")[0]):
        return f"Absender ist kein Mensch ({mail.sender})"
    return None


def own_address(mail: ParsedMail, own: str) -> str | None:
    if mail.sender == own.lower():
        return "eigene Adresse als Absender"
    return None


RULES: tuple[Callable[[ParsedMail, str], str | None], ...] = (
    own_address,
    auto_submitted,
    precedence,
    list_headers,
    microsoft_auto_reply,
    report,
    robot_subject,
    empty_return_path,
    robot_sender,
)


def spoofed(mail: ParsedMail, authserv_id: str | None) -> str | None:
    """Our own mail server (``authserv_id``) found the sender's DMARC check failed: the From
    address may be forged, so no automatic registration. Headers from other servers are
    ignored: anybody can write an Authentication-Results header."""
    if not authserv_id:
        return None
    for value in mail.auth_results:
        server = value.split(";", 1)[0].strip().split()[0:1]
        if server and server[0].lower() == authserv_id.lower():
            if re.search(r"\bdmarc\s*=\s*fail\b", value, re.IGNORECASE):
                return "DMARC-Prüfung fehlgeschlagen – Absender womöglich gefälscht"
            return None
    return None


def check(mail: ParsedMail, own: str) -> str | None:
    """The reason this mail must not be answered, or None when a reply is allowed."""
    for rule in RULES:
        reason = rule(mail, own)
        if reason:
            return reason
    return None
