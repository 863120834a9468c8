"""Replies as ready-to-send bytes, from jinja2 templates (pure given the templates).

Each reply kind is one text template, ``templates/KIND.LANG.txt``; its first line is
``Subject: …``. The HTML alternative is the same text poured into ``layout.html``
(autoescaped, links made clickable), so the two never disagree.

Nothing from an incoming mail reaches a header unchecked: names pass through
``parse.clean_text`` (no control characters, so no CR/LF: CVE-2024-6923), addresses were
validated by ``parse``, and In-Reply-To only takes a validated Message-ID. As a last line
of defence the finished header block is read back line by line and must hold exactly the
headers we set.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email
import email.header
import email.policy
import email.utils
import re
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from markupsafe import Markup, escape

from mailbot.config import Config
from mailbot.core.models import (
    OrganiserKind,
    Participant,
    Registration,
    Reply,
    ReplyKind,
    Status,
)
from mailbot.core.text import clean_text
from mailbot.replies import ics

MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
             "September", "Oktober", "November", "Dezember")
WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
CALENDAR_METHOD = {
    ReplyKind.CONFIRMATION: "REQUEST",
    ReplyKind.DUPLICATE: "REQUEST",
    ReplyKind.THIRD_PARTY: "REQUEST",
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
# a web address in what a sender calls herself (or someone else): never a link in our mail
_NAME_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]{1,15}:/+|www\.)\S*")


class ComposeError(Exception):
    """Raised when a reply cannot be built safely (a template error, a header that
    would not survive the round trip); the mail then goes to review."""


def default_templates() -> Path:
    """The packaged templates, or the source tree's ``templates/`` in a checkout."""
    packaged = Path(__file__).parents[1] / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parents[2] / "templates"


def _linkify(line: str) -> Markup:
    escaped = str(escape(line))
    return Markup(_URL.sub(lambda m: f'<a href="{m[0]}">{m[0]}</a>', escaped))


class Composer:
    """Renders replies for one configuration; build once, use for every mail."""

    def __init__(self, config: Config):
        import jinja2  # here, not at the top: commands that only read never load it

        self.config = config
        folders = [config.templates, default_templates()] if config.templates else [
            default_templates()]  # an own folder without a newer kind uses ours for it
        loader = jinja2.FileSystemLoader(folders)
        # auto_reload off: templates are read once (a changed template needs a restart,
        # like any other configuration change), not checked on disk for every reply
        self.text_env = jinja2.Environment(
            loader=loader, autoescape=False, auto_reload=False,
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        )
        self.html_env = jinja2.Environment(
            loader=loader, autoescape=True, auto_reload=False,
            undefined=jinja2.StrictUndefined,
        )
        self.html_env.filters["linkify"] = _linkify
        self.layout = self.html_env.get_template("layout.html")
        self.from_header = _address(clean_text(config.contact.name), config.contact.address)
        self._subjects: dict[str, str] = {}
        self.events = {"de": _event_de(config), "en": _event_en(config)}
        self.calendars = ics.Calendars(config)

    def reply(self, kind: ReplyKind, person: Participant, reg: Registration | None,
              in_reply_to: str | None, now: dt.datetime, lang: str | None = None,
              others: list[str] | None = None, by: str | None = None,
              moved_up: bool = False,
              changes: list[tuple[str, str, str]] | None = None) -> Reply:
        """One reply of ``kind`` to ``person``; ``reg`` is their registration, if any;
        ``others`` names everyone the mail registered (for the note to a sender who
        registered somebody else); ``by`` who registered ``person`` (a third party);
        ``moved_up``: the confirmation of someone who waited; ``changes``: (field, old, new)
        for an update."""
        lang = lang or self.config.event.language
        name = _name(reg.name if reg else person.name, 120)
        status = reg.status.value if reg else ""
        try:
            subject, text = self._render(kind, person.email, name, status, lang,
                                         [_name(o, 120) for o in others or []],
                                         _name(by or "", 200), moved_up, changes or [])
            method = CALENDAR_METHOD.get(kind)
            calendar = None
            if reg and method and status in ("confirmed", "cancelled"):
                calendar = (self.calendars.calendar(reg, now, method), method)
            message_id = email.utils.make_msgid("mailbot", domain=self.config.contact.domain)
            paragraphs = [p.split("\n") for p in text.strip().split("\n\n")]
            html = self.layout.render(lang=lang, subject=subject, paragraphs=paragraphs)
            body = self._mime(person.email, name, subject, text, html, calendar, message_id,
                              in_reply_to, now)
        except (_template_error(), ValueError, TypeError, UnicodeError) as exc:
            raise ComposeError(f"{type(exc).__name__}: {exc}") from exc
        _check_headers(body)
        return Reply(recipient=person.email, subject=subject, kind=kind,
                     message_id=message_id, in_reply_to=in_reply_to, body=body)

    def _render(self, kind: ReplyKind, address: str, name: str, status: str,
                lang: str, others: list[str], by: str = "", moved_up: bool = False,
                changes: Sequence[tuple[str, str, str]] = ()) -> tuple[str, str]:
        names = [f"{kind.value}.{lang}.txt", f"{kind.value}.de.txt"]
        template = self.text_env.select_template(names)
        rendered = template.render(
            person={"name": name, "email": address},
            registration={"status": status, "moved_up": moved_up},
            changes=[{"field": f, "old": old, "new": new} for f, old, new in changes],
            event=self.events.get(lang, self.events["de"]), zoom=self.config.zoom,
            contact=self.config.contact, others=others, privacy=self.config.privacy,
            registered_by=by,
        )
        head, _, body = rendered.partition("\n\n")
        if not head.startswith("Subject:"):
            raise ComposeError(f"template {template.name} must start with 'Subject: …'")
        subject = clean_text(head.removeprefix("Subject:"), 250)
        return subject, re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"

    def _mime(self, address: str, name: str, subject: str, text: str, html: str,
              calendar: tuple[bytes, str] | None, message_id: str, in_reply_to: str | None,
              now: dt.datetime) -> bytes:
        """The reply as bytes, written directly (the email package's object model made
        composing four times slower than everything else per mail). Every header value is
        either ours or passed through clean_text / a validated address or Message-ID, and
        _check_headers parses the result back."""
        headers = [
            ("From", self.from_header),
            ("To", _address(name, address)),
            ("Subject", self._subject(subject)),
            ("Date", email.utils.format_datetime(now.astimezone(self.config.event.tz))),
            ("Message-ID", message_id),
        ]
        if in_reply_to:
            headers += [("In-Reply-To", in_reply_to), ("References", in_reply_to)]
        headers += [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"),
                    ("MIME-Version", "1.0")]
        parts = [_text_part("plain", text), _text_part("html", html)]
        if calendar is None:
            body = _multipart("alternative", parts)
        else:
            data, method = calendar
            parts.append(_text_part("calendar", data.decode("utf-8"), f"; method={method}"))
            body = _multipart("alternative", parts)
            filename = "einladung.ics" if method == "REQUEST" else "absage.ics"
            attachment = (f'Content-Type: application/ics; name="{filename}"\r\n'
                          f"Content-Transfer-Encoding: base64\r\n"
                          f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
                          ).encode() + base64.encodebytes(data).replace(b"\n", b"\r\n")
            body = _multipart("mixed", [body, attachment])
        head = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii")
        return head + body

    def _subject(self, subject: str) -> str:
        cached = self._subjects.get(subject)
        if cached is None:
            cached = email.header.Header(subject, "utf-8", header_name="Subject").encode(
                linesep="\r\n") if not subject.isascii() else subject
            if len(self._subjects) < 100:  # one per kind and language; a template that
                self._subjects[subject] = cached  # puts names in subjects must not grow it
        return cached


def digest_mail(config: Config, subject: str, text: str, attachment: tuple[str, str],
                now: dt.datetime) -> Reply:
    """The organiser's daily overview: plain text and a CSV file (name, content)."""
    assert config.digest.to is not None
    subject = clean_text(subject, 250)
    message_id = email.utils.make_msgid("mailbot-digest", domain=config.contact.domain)
    filename, data = attachment
    csv_part = (f'Content-Type: text/csv; charset="utf-8"; name="{filename}"\r\n'
                f"Content-Transfer-Encoding: base64\r\n"
                f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
                ).encode() + base64.encodebytes(data.encode("utf-8")).replace(b"\n", b"\r\n")
    headers = [
        ("From", _address("mailbot", config.contact.address)),
        ("To", config.digest.to),
        ("Subject", email.header.Header(subject, "utf-8", header_name="Subject").encode(
            linesep="\r\n") if not subject.isascii() else subject),
        ("Date", email.utils.format_datetime(now.astimezone(config.event.tz))),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"),
        ("MIME-Version", "1.0"),
    ]
    body = _multipart("mixed", [_text_part("plain", text), csv_part])
    raw = "".join(f"{k}: {v}\r\n" for k, v in headers).encode("ascii") + body
    _check_headers(raw)
    return Reply(recipient=config.digest.to, subject=subject, kind=OrganiserKind.DIGEST,
                 message_id=message_id, in_reply_to=None, body=raw)


def _template_error() -> type[Exception]:
    import jinja2

    return jinja2.TemplateError


def _name(value: str, limit: int) -> str:
    """A name from a mail, for our reply: one printable line without web addresses, so a
    sender cannot put a link (a phishing line) into a mail sent from the institute."""
    return clean_text(_NAME_URL.sub("…", clean_text(value, limit)), limit)


def _address(name: str, address: str) -> str:
    return email.utils.formataddr((name, address), charset="utf-8") if name else address


def _text_part(subtype: str, text: str, params: str = "") -> bytes:
    data = text.replace("\r\n", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
    if not encoded.endswith(b"\r\n"):
        encoded += b"\r\n"
    return (f'Content-Type: text/{subtype}; charset="utf-8"{params}\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + encoded


def body_forms(name: str | None) -> list[str]:
    """How a name may stand in a reply body besides itself: quoted-printable (as
    ``_text_part`` writes it) when it is not plain ASCII (for erasing a person)."""
    if not name or name.isascii():
        return []
    return [binascii.b2a_qp(name.encode()).decode("ascii")]


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    boundary = f"=_mailbot_{secrets.token_hex(12)}"
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()]
    for part in parts:
        out += [f"--{boundary}\r\n".encode(), part, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _check_headers(body: bytes) -> None:
    """The last line of defence against header injection: read the header block back the
    way a mail server does (a line that does not start with a blank starts a header) and
    allow exactly our headers, with one To and nothing but ASCII."""
    head = body.split(b"\r\n\r\n", 1)[0]
    if not head.isascii() or b"\r" in head.replace(b"\r\n", b"") or b"\n" in head.replace(
            b"\r\n", b""):
        raise ComposeError("reply headers contain a bare CR, LF or 8-bit byte")
    names = [line.split(b":", 1)[0].strip().lower().decode()
             for line in head.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]
    if not set(names) <= EXPECTED_HEADERS or names.count("to") != 1 or len(names) != len(
            set(names)):
        raise ComposeError(f"unexpected headers in reply: {sorted(set(names) - EXPECTED_HEADERS)}")


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
    # ten days before the configured event, as if written then (not a fixed, long-past date)
    now = (config.event.start - dt.timedelta(days=10)).replace(hour=10, minute=30, second=0)
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
        ReplyKind.THIRD_PARTY: base,
        ReplyKind.ADDRESS_CHANGED: base,
    }
    out = []
    for number, (kind, reg) in enumerate(registrations.items(), 1):
        for lang in ("de", "en"):
            answer = kind not in (ReplyKind.REMINDER, ReplyKind.UPDATE,
                                  ReplyKind.EVENT_CANCELLED, ReplyKind.THIRD_PARTY)
            reply = composer.reply(kind, person, reg, "<example@example.org>" if answer else None,
                                   now, lang=lang, others=(
                                       ["maria@beispiel.example"]
                                       if kind is ReplyKind.ADDRESS_CHANGED else
                                       ["Karin Schulz"]),
                                   by="Karin Schulz (k.schulz@example.org)")
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
