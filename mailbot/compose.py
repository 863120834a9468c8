"""Replies as ``EmailMessage`` objects, from jinja2 templates (pure given the templates).

Each reply kind is one text template, ``templates/KIND.LANG.txt``; its first line is
``Subject: …``. The HTML alternative is the same text poured into ``layout.html``
(autoescaped, links made clickable), so the two never disagree.

Nothing from an incoming mail reaches a header unchecked: names pass through
``parse.clean_text`` (no control characters, so no CR/LF: CVE-2024-6923), addresses were
validated by ``parse``, and In-Reply-To only takes a validated Message-ID. As a last line
of defence the finished message is parsed back and must have exactly the headers we set.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import re
from dataclasses import replace
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from . import ics
from .config import Config
from .models import Participant, Registration, Reply, ReplyKind, Status
from .text import clean_text

MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
             "September", "Oktober", "November", "Dezember")
WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
CALENDAR_METHOD = {
    ReplyKind.CONFIRMATION: "REQUEST",
    ReplyKind.DUPLICATE: "REQUEST",
    ReplyKind.UPDATE: "REQUEST",
    ReplyKind.CANCELLATION: "CANCEL",
    ReplyKind.EVENT_CANCELLED: "CANCEL",
}
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EXPECTED_HEADERS = {"from", "to", "subject", "date", "message-id", "auto-submitted",
                    "x-auto-response-suppress", "mime-version", "content-type",
                    "in-reply-to", "references"}
_URL = re.compile(r"https?://[^\s<>\"']+")


class ComposeError(Exception):
    """Raised when a reply cannot be built safely (a template error, a header that
    would not survive the round trip); the mail then goes to review."""


def default_templates() -> Path:
    """The packaged templates, or the source tree's ``templates/`` in a checkout."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


def _linkify(line: str) -> Markup:
    escaped = str(escape(line))
    return Markup(_URL.sub(lambda m: f'<a href="{m[0]}">{m[0]}</a>', escaped))


class Composer:
    """Renders replies for one configuration; build once, use for every mail."""

    def __init__(self, config: Config):
        self.config = config
        folder = config.templates or default_templates()
        self.text_env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder), autoescape=False,
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        )
        self.html_env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder), autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.html_env.filters["linkify"] = _linkify
        self.layout = self.html_env.get_template("layout.html")
        self.sender = Address(display_name=clean_text(config.contact.name),
                              addr_spec=config.contact.address)
        self.events = {"de": _event_de(config), "en": _event_en(config)}

    def reply(self, kind: ReplyKind, person: Participant, reg: Registration | None,
              in_reply_to: str | None, now: dt.datetime, lang: str | None = None,
              others: list[str] | None = None) -> Reply:
        """One reply of ``kind`` to ``person``; ``reg`` is their registration, if any;
        ``others`` names everyone the mail registered (for the note to a sender who
        registered somebody else)."""
        lang = lang or self.config.event.language
        name = clean_text(reg.name if reg else person.name, 120)
        status = reg.status.value if reg else ""
        try:
            subject, text = self._render(kind, person.email, name, status, lang,
                                         [clean_text(o, 120) for o in others or []])
            msg = self._message(person.email, name, subject, text, in_reply_to, now, lang)
            method = CALENDAR_METHOD.get(kind)
            if reg and method and status in ("confirmed", "cancelled"):
                _attach_calendar(msg, ics.calendar(self.config, reg, now, method), method)
            body = msg.as_bytes(policy=email.policy.SMTP)
        except (jinja2.TemplateError, ValueError, TypeError) as exc:
            raise ComposeError(f"{type(exc).__name__}: {exc}") from exc
        _check_headers(body)
        return Reply(recipient=person.email, subject=subject, kind=kind,
                     message_id=msg["Message-ID"], in_reply_to=in_reply_to, body=body)

    def _render(self, kind: ReplyKind, address: str, name: str, status: str,
                lang: str, others: list[str]) -> tuple[str, str]:
        names = [f"{kind.value}.{lang}.txt", f"{kind.value}.de.txt"]
        template = self.text_env.select_template(names)
        rendered = template.render(
            person={"name": name, "email": address}, registration={"status": status},
            event=self.events.get(lang, self.events["de"]), zoom=self.config.zoom,
            contact=self.config.contact, others=others, privacy=self.config.privacy,
        )
        head, _, body = rendered.partition("\n\n")
        if not head.startswith("Subject:"):
            raise ComposeError(f"template {template.name} must start with 'Subject: …'")
        subject = clean_text(head.removeprefix("Subject:"), 250)
        return subject, re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"

    def _message(self, address: str, name: str, subject: str, text: str,
                 in_reply_to: str | None, now: dt.datetime, lang: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = Address(display_name=name, addr_spec=address)
        msg["Subject"] = subject
        msg["Date"] = email.utils.format_datetime(now.astimezone(self.config.event.tz))
        msg["Message-ID"] = email.utils.make_msgid("mailbot", domain=self.config.contact.domain)
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = in_reply_to
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(text, cte="quoted-printable")
        paragraphs = [p.split("\n") for p in text.strip().split("\n\n")]
        html = self.layout.render(lang=lang, subject=subject, paragraphs=paragraphs)
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
        return msg


def _attach_calendar(msg: EmailMessage, data: bytes, method: str) -> None:
    """The calendar as a third alternative (how Outlook and Gmail find invitations) and
    as an ``.ics`` attachment for every other client."""
    text = data.decode("utf-8")
    msg.add_alternative(text, subtype="calendar", cte="quoted-printable",
                        params={"method": method})
    msg.make_mixed()
    msg.add_attachment(data, maintype="application", subtype="ics",
                       filename="einladung.ics" if method == "REQUEST" else "absage.ics")


def _check_headers(body: bytes) -> None:
    head = body.split(b"\r\n\r\n", 1)[0]
    parsed = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    names = {name.lower() for name in parsed.keys()}
    if not names <= EXPECTED_HEADERS or len(parsed.get_all("To", [])) != 1:
        raise ComposeError(f"unexpected headers in reply: {sorted(names - EXPECTED_HEADERS)}")


def _event_de(config: Config) -> dict[str, str]:
    start, end = config.event.start, config.event.end
    date = f"{WEEKDAYS_DE[start.weekday()]}, {start.day}. {MONTHS_DE[start.month - 1]} {start.year}"
    time = f"{start:%H:%M}–{end:%H:%M} Uhr"
    if end.date() != start.date():
        time = f"{start:%H:%M} Uhr bis {end.day}. {MONTHS_DE[end.month - 1]}, {end:%H:%M} Uhr"
    return {"title": config.event.title, "date": date, "time": time}


def _event_en(config: Config) -> dict[str, str]:
    start, end = config.event.start, config.event.end
    zone = config.event.timezone.rpartition("/")[2].replace("_", " ")
    date = f"{WEEKDAYS_EN[start.weekday()]}, {start.day} {MONTHS_EN[start.month - 1]} {start.year}"
    time = f"{start:%H:%M}–{end:%H:%M} ({zone} time)"
    if end.date() != start.date():
        time = f"{start:%H:%M} to {end.day} {MONTHS_EN[end.month - 1]}, {end:%H:%M} ({zone} time)"
    return {"title": config.event.title, "date": date, "time": time}


def example_replies(config: Config) -> list[tuple[str, bytes]]:
    """(file name, message) for every reply kind in German and English, for a fictional
    participant — what ``mailbot sample-replies`` writes."""
    composer = Composer(config)
    now = dt.datetime(2021, 5, 21, 8, 30, tzinfo=dt.UTC)
    person = Participant("maria.beispiel@example.org", "Maria Beispiel",
                         "Freiwilligenagentur Musterstadt e.V.")
    base = Registration(person.email, person.name, person.organisation, Status.CONFIRMED,
                        f"beispiel-0001@{config.contact.domain}", 0, now, "<example@example.org>")
    registrations = {
        ReplyKind.CONFIRMATION: base, ReplyKind.DUPLICATE: base,
        ReplyKind.WAITLISTED: replace(base, status=Status.WAITLISTED),
        ReplyKind.CANCELLATION: replace(base, status=Status.CANCELLED, ics_sequence=1),
        ReplyKind.NOT_REGISTERED: None, ReplyKind.CLOSED: None, ReplyKind.ON_BEHALF: None,
        ReplyKind.REMINDER: base, ReplyKind.UPDATE: replace(base, ics_sequence=1),
        ReplyKind.EVENT_CANCELLED: replace(base, ics_sequence=2),
    }
    out = []
    for number, (kind, reg) in enumerate(registrations.items(), 1):
        for lang in ("de", "en"):
            answer = kind not in (ReplyKind.REMINDER, ReplyKind.UPDATE,
                                  ReplyKind.EVENT_CANCELLED)
            reply = composer.reply(kind, person, reg, "<example@example.org>" if answer else None,
                                   now, lang=lang, others=["Karin Schulz"])
            out.append((f"{number:02d}-{kind.value}.{lang}.eml", reply.body))
    return out


_DATE_LINE = re.compile(rb"^Date: [^\r\n]*\r\n", re.MULTILINE)


def restamp(body: bytes, now: dt.datetime, tz: dt.tzinfo) -> bytes:
    """The reply with its Date set to ``now``: a reply that waited in the outbox (an SMTP
    outage) must not arrive with an old date, which spam filters count against it."""
    head_end = body.find(b"\r\n\r\n")
    date = email.utils.format_datetime(now.astimezone(tz)).encode("ascii")
    head = _DATE_LINE.sub(lambda _: b"Date: " + date + b"\r\n", body[: head_end + 2], count=1)
    return head + body[head_end + 2:]
