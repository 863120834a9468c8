"""Loop and robot rules (RFC 3834): mail that must never be answered (pure).

One small function per rule; each returns a human-readable reason or None. The first rule
that fires decides; such mail is recorded as ``ignore`` and moved, never answered.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mailbot.core.addresses import mailbox, org_domain
from mailbot.core.i18n import tr as _
from mailbot.core.models import ParsedMail

_ROBOT_LOCALPART = re.compile(
    r"^(?:mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"bounce[-+].*|.*-bounces(?:\+.*)?|noreply[-+].*|listserv|majordomo|daemon|"
    # a list's system addresses (RFC 2142; those Pigeonhole's vacation never answers)
    r"owner-.*|.*-owner(?:\+.*)?|.*-request(?:\+.*)?)$",
    re.IGNORECASE,
)


def values(mail: ParsedMail, name: str) -> tuple[str, ...]:
    """Every value of header ``name`` (lower-case) in ``mail``, in order."""
    found = mail.header_values.get(name)
    if found is None:
        return (mail.headers[name],) if name in mail.headers else ()
    return found


PRESSED = frozenset({"ACCEPTED", "DECLINED", "TENTATIVE"})  # a person's answer in a calendar


def auto_submitted(mail: ParsedMail, own: str) -> str | None:
    """Auto-Submitted (every occurrence), except on a calendar's answer: Google Calendar
    marks the REPLY a person's button press makes "auto-generated" (the other robot rules
    still apply)."""
    pressed = (mail.calendar_method or "").upper() == "REPLY" and \
        (mail.calendar_reply or ("",))[0] in PRESSED
    for value in values(mail, "auto-submitted"):
        value = value.strip().lower()
        if value and not value.startswith("no") and not pressed:
            return f"automatische Nachricht (Auto-Submitted: {value[:40]})"
    return None


def precedence(mail: ParsedMail, own: str) -> str | None:
    for value in values(mail, "precedence"):
        value = value.strip().lower()
        if value in ("bulk", "list", "junk", "auto_reply", "auto-reply"):
            return f"Massen- oder Listenmail (Precedence: {value})"
    return None


# headers only a mailing list (or a loop guard like procmail's) writes
_LIST_HEADERS = ("x-mailing-list", "mailing-list", "x-loop")


def list_headers(mail: ParsedMail, own: str) -> str | None:
    for name in mail.headers:
        if name.startswith("list-") or name in _LIST_HEADERS:
            return f"Mailingliste ({name.title()})"
    return None


def microsoft_auto_reply(mail: ParsedMail, own: str) -> str | None:
    if any(v.strip() for v in values(mail, "x-autoreply") + values(mail, "x-autorespond")):
        return "automatische Antwort (X-Autoreply)"
    if any("oof" in v.lower() for v in values(mail, "x-ms-exchange-generated-message-source")):
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
    if any(v.strip() in ("", "<>") for v in values(mail, "return-path")):
        return "Unzustellbarkeitsmeldung (leerer Return-Path)"
    return None


def robot_sender(mail: ParsedMail, own: str) -> str | None:
    if mail.sender and _ROBOT_LOCALPART.match(mail.sender.partition("@")[0]):
        return f"Absender ist kein Mensch ({mail.sender})"
    return None


# a mailing list's envelope sender (Mailman, Sympa, Majordomo); not a mail service's
# "bounce+…" one, which a web form's mail may carry too
_LIST_RETURN_PATH = re.compile(
    r"^(?:owner-.*|.*-owner(?:\+.*)?|.*-request(?:\+.*)?|.*-bounces(?:\+.*)?)$",
    re.IGNORECASE)


def robot_return_path(mail: ParsedMail, own: str) -> str | None:
    """The envelope sender (Return-Path) of a mailing list: a list's copy, whatever its
    From says."""
    for value in values(mail, "return-path"):
        local = value.strip().strip("<>").rpartition("@")[0]
        if local and _LIST_RETURN_PATH.match(local):
            return "Mail einer Liste oder eines Systems (Return-Path)"
    return None


def spam(mail: ParsedMail) -> str | None:
    """The spam filter's verdict (SpamAssassin's X-Spam-Flag/X-Spam-Status, rspamd's
    X-Spam): such mail may carry a forged sender, so no reply (the Zoom details would go
    to a victim as backscatter) — but a person's mail may be misjudged: a human looks."""
    for name in ("x-spam-flag", "x-spam-status", "x-spam"):
        if any(v.strip().lower().startswith("yes") for v in values(mail, name)):
            return f"vom Spamfilter als Spam eingestuft ({name.title()}) – keine Antwort"
    return None


def not_a_participant(address: str, own: str) -> str | None:
    """Why an address typed at the desk (`mailbot add`, `edit --email`) cannot be a
    participant: our own contact address, or a robot's (mailer-daemon, no-reply, …)."""
    if address == own.lower():
        return _("{address} is the contact address mailbot answers from, not a "
                 "participant").format(address=address)
    if _ROBOT_LOCALPART.match(address.partition("@")[0]):
        return _("{address} is a robot's address (no person reads it), not a "
                 "participant").format(address=address)
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
    robot_return_path,
)


_DMARC_FAIL = re.compile(r"\bdmarc\s*=\s*fail\b", re.IGNORECASE)


def spoofed(mail: ParsedMail, authserv_id: str | None) -> str | None:
    """A DMARC check found the From address may be forged: no automatic registration.

    With ``authserv_id`` only our own server's Authentication-Results header counts
    (anybody can write such a header further down). Without it, the topmost header is
    read — the one the receiving server adds — and only a *fail* is believed: a forged
    header can then only send its own writer's mail to a human, never let one through."""
    if not authserv_id:
        top = mail.auth_results[:1]
        return _SPOOFED if top and _DMARC_FAIL.search(top[0]) else None
    for value in mail.auth_results:
        server = value.split(";", 1)[0].strip().split()[0:1]
        if server and server[0].lower() == authserv_id.lower():
            return _SPOOFED if _DMARC_FAIL.search(value) else None
    return None


_SPOOFED = "DMARC-Prüfung fehlgeschlagen – Absender womöglich gefälscht"


def suspicious(mail: ParsedMail, authserv_id: str | None) -> str | None:
    """Why a human must look before anybody is answered: a forged sender or spam."""
    return spoofed(mail, authserv_id) or spam(mail)


# -- abuse budgets: how many strangers one mail, one sender, one domain may make us mail --

# Domains where one domain holds millions of unrelated people: a burst is counted per
# address there, not per domain.
FREEMAIL = frozenset({
    "gmail.com", "googlemail.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.com",
    "web.de", "t-online.de", "freenet.de", "arcor.de", "posteo.de", "posteo.net",
    "mailbox.org", "outlook.com", "outlook.de", "hotmail.com", "hotmail.de", "live.com",
    "live.de", "msn.com", "yahoo.com", "yahoo.de", "icloud.com", "me.com", "mac.com",
    "aol.com", "aol.de", "protonmail.com", "proton.me", "online.de", "email.de", "vodafone.de",
    "kabelmail.de", "mail.de", "magenta.de", "yandex.com", "mail.ru", "zoho.com",
})
BURST = "Anmeldewelle"  # how the reason of a burst begins (counted in `status`)


def burst_key(address: str) -> str:
    """Whose budget an address draws on — one owner's, however spelled: the registrable
    domain (``a.evil.example`` and ``b.evil.example`` are ``evil.example``), or at a
    freemail domain the mailbox without ``+tag`` (and without dots at Gmail)."""
    domain = org_domain(address)
    return mailbox(address) if domain in FREEMAIL else domain


@dataclass(frozen=True)
class Usage:
    """What the budgets have used so far (read from the store for one mail)."""

    replies_per_address: Counter[str] = field(default_factory=Counter)  # mailbox, 24 h
    replies_per_domain: Counter[str] = field(default_factory=Counter)  # org domain, 24 h
    others_by_sender: int = 0  # people registered by this sender and mailed, last 24 h
    others_overall: int = 0  # people registered by anybody else and mailed, last hour
    new_per_key: Mapping[str, int] = field(default_factory=dict)  # burst_key → last hour
    others_today: int = 0  # people registered by anybody else and mailed, last 24 h


def reply_cap(recipients: list[str], usage: Usage, per_address: int,
              per_domain: int) -> str | None:
    """A reply beyond the daily caps per mailbox or per registrable domain (this mail's
    own replies counted as they come): ``p+1@`` and ``p+2@`` share one budget."""
    address_count, domain_count = Counter(usage.replies_per_address), Counter(
        usage.replies_per_domain)
    for address in recipients:
        box, domain = mailbox(address), org_domain(address)
        if address_count[box] >= per_address or domain_count[domain] >= per_domain:
            return f"Antwortlimit pro Tag erreicht ({address}) – keine Anmeldung ohne Antwort"
        address_count[box] += 1
        domain_count[domain] += 1
    return None


def unlisted_sender(others: list[str], sender_listed: bool) -> str | None:
    """A list of other people from somebody who does not come herself: who are they to her?"""
    if len(others) >= 2 and not sender_listed:
        return (f"{len(others)} andere Personen angemeldet, der Absender selbst nicht – "
                f"bitte prüfen, ob sie das wissen")
    return None


def others_per_sender(others: list[str], usage: Usage, most: int) -> str | None:
    if others and usage.others_by_sender + len(others) > most:
        return (f"Absender hat in 24 Stunden mehr als {most} andere Personen angemeldet "
                f"(max_others_per_sender_per_day) – keine Mail an sie")
    return None


def others_per_hour(others: list[str], usage: Usage, most: int) -> str | None:
    if others and usage.others_overall + len(others) > most:
        return (f"mehr als {most} von anderen angemeldete Personen in einer Stunde "
                f"(max_others_per_hour) – keine Mail an sie")
    return None


def others_per_day(others: list[str], usage: Usage, most: int) -> str | None:
    """People who never wrote to us, mailed because someone else named them: at most
    ``most`` a day overall, however many senders (or spellings of one) there are."""
    if others and usage.others_today + len(others) > most:
        return (f"mehr als {most} von anderen angemeldete Personen an einem Tag "
                f"(max_others_per_day) – keine Mail an sie")
    return None


def domain_burst(new: list[str], usage: Usage, most: int) -> str | None:
    """Many new registrations from one domain (or one freemail address) within an hour:
    a flood of forged senders must not take the places of real people."""
    for key, count in Counter(burst_key(a) for a in new).items():
        if usage.new_per_key.get(key, 0) + count > most:
            return (f"{BURST}: mehr als {most} neue Anmeldungen von {key} in einer Stunde "
                    f"(max_new_per_domain_per_hour)")
    return None


def may_cancel_for(sender: str, email: str) -> bool:
    """Whether ``sender``'s word cancels ``email``: her own address, or a colleague's at
    the same organisation (one domain, not a freemail one). Anybody else's word that a
    person cannot come goes to a human: a stranger must not free a place that is not hers."""
    if sender == email:
        return True
    domain = email.rpartition("@")[2]
    return sender.rpartition("@")[2] == domain and domain not in FREEMAIL


def check(mail: ParsedMail, own: str) -> str | None:
    """The reason this mail must not be answered, or None when a reply is allowed."""
    for rule in RULES:
        reason = rule(mail, own)
        if reason:
            return reason
    return None
