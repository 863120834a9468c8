"""Replies and calendar files: what a participant's mail client and calendar get."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import icalendar
import pytest
from click.testing import CliRunner
from conftest import registration_mail

from mailbot.cli import main
from mailbot.core.models import Participant, Registration, ReplyKind, Status
from mailbot.replies.compose import Composer, restamp

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2021, 5, 21, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def composer(example_config):
    config = example_config
    return Composer(config)


def registration(name="Anna Arndt", address="anna@a.example", status=Status.CONFIRMED,
                 sequence=0) -> Registration:
    return Registration(address, name, None, status, "uid-1@isi-innovation.de", sequence, NOW,
                        "<m@a.example>")


def render(composer, kind, reg, person=None):
    person = person or Participant(reg.email, reg.name)
    reply = composer.reply(kind, person, reg, "<m@a.example>", NOW)
    return reply, email.message_from_bytes(reply.body, policy=email.policy.default)


def calendar_of(msg):
    [part] = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    return part, icalendar.Calendar.from_ical(part.get_content())


def test_confirmation_has_text_html_and_a_calendar_request(composer):
    reply, msg = render(composer, ReplyKind.CONFIRMATION, registration())
    assert reply.subject.startswith("Anmeldebestätigung: Digitales Auftakttreffen")
    assert msg["Subject"] == reply.subject, "umlauts survive the header encoding"
    assert msg["To"].addresses[0].addr_spec == "anna@a.example"
    assert msg["Message-ID"].endswith("@isi-innovation.de>")
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["In-Reply-To"] == msg["References"] == "<m@a.example>"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.startswith("Guten Tag Anna Arndt,")
    assert "Montag, 31. Mai 2021, 10:00–15:00 Uhr" in text
    assert '<a href="https://zoom.us/j/84512345678?pwd=...">' in html
    assert "DSGVO" in text and "DSGVO" in html
    part, cal = calendar_of(msg)
    assert part.get_param("method") == "REQUEST"
    assert cal["METHOD"] == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == "uid-1@isi-innovation.de" and event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == dt.datetime(2021, 5, 31, 10, tzinfo=composer.config.event.tz)
    assert event.decoded("DTEND").hour == 15
    assert "845 1234 5678" in str(event["DESCRIPTION"])
    assert str(event["ORGANIZER"]) == "mailto:n.collinet@isi-innovation.de"
    assert cal.walk("VTIMEZONE")[0]["TZID"] == "Europe/Berlin"
    ics = part.get_content().encode()
    assert all(len(line) <= 75 for line in ics.split(b"\r\n")), "folded at 75 octets"


def test_each_calendar_carries_its_own_person_on_the_shared_event(composer):
    """The event's part is serialised once; each person's lines are put into it."""
    people = [registration(), registration("Bernd Böhm", "bernd@b.example")]
    events = []
    for reg in people:
        _, msg = render(composer, ReplyKind.CONFIRMATION,
                        Registration(reg.email, reg.name, None, reg.status,
                                     f"uid-{reg.email}", 0, NOW, "<m@a.example>"))
        [event] = calendar_of(msg)[1].walk("VEVENT")
        events.append(event)
    assert [str(e["UID"]) for e in events] == ["uid-anna@a.example", "uid-bernd@b.example"]
    assert [e["ATTENDEE"].params["CN"] for e in events] == ["Anna Arndt", "Bernd Böhm"]
    assert [str(e["ATTENDEE"]) for e in events] == ["mailto:anna@a.example",
                                                    "mailto:bernd@b.example"]
    for event in events:
        assert sorted(event) == sorted(["UID", "SEQUENCE", "DTSTAMP", "ATTENDEE", "DTSTART",
                                        "DTEND", "SUMMARY", "LOCATION", "URL", "DESCRIPTION",
                                        "STATUS", "TRANSP", "ORGANIZER"]), "once each"


def test_cancellation_removes_the_calendar_entry(composer):
    _, msg = render(composer, ReplyKind.CANCELLATION,
                    registration(status=Status.CANCELLED, sequence=1))
    assert msg["Subject"].startswith("Abmeldung bestätigt:")
    part, cal = calendar_of(msg)
    assert part.get_param("method") == "CANCEL"
    [event] = cal.walk("VEVENT")
    assert (str(event["UID"]), event["SEQUENCE"], event["STATUS"]) == (
        "uid-1@isi-innovation.de", 1, "CANCELLED")


@pytest.mark.parametrize("kind", [ReplyKind.WAITLISTED, ReplyKind.NOT_REGISTERED,
                                  ReplyKind.CLOSED])
def test_replies_without_a_place_carry_no_zoom_link_and_no_calendar(composer, kind):
    reg = registration(status=Status.WAITLISTED) if kind is ReplyKind.WAITLISTED else None
    person = Participant("anna@a.example", "Anna Arndt")
    reply = composer.reply(kind, person, reg, None, NOW)
    msg = email.message_from_bytes(reply.body, policy=email.policy.default)
    assert "zoom.us" not in reply.body.decode("ascii")
    assert not [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert msg["In-Reply-To"] is None


def test_hostile_name_stays_text_in_headers_html_and_calendar(composer):
    name = 'Eve <script>alert(1)</script>, "x"; END:VEVENT\r\nBcc: evil@example.com'
    reply, msg = render(composer, ReplyKind.CONFIRMATION, registration(name=name))
    assert msg.get_all("Bcc") is None and len(msg.get_all("To")) == 1
    head = reply.body.split(b"\r\n\r\n")[0].decode()
    assert "\nBcc" not in head and "evil@example.com" not in head.split("To:")[0]
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    _, cal = calendar_of(msg)
    assert len(cal.walk("VEVENT")) == 1
    assert cal.to_ical().split(b"\r\n").count(b"END:VEVENT") == 1


def test_injected_subject_and_display_name_create_no_header(mailbox, smtp, make_config):
    config = make_config()
    raw = registration_mail("Eve", "eve@x.example").replace(
        b"From: Eve <", b"From: =?utf-8?q?Eve=0D=0ABcc=3A_evil=40example.com?= <").replace(
        b"Subject: Anmeldung Auftakttreffen",
        b"Subject: =?utf-8?q?hello=0ABcc=3A_evil=40example.com?=")
    mailbox.append(raw)

    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])

    assert result.exit_code == 0, result.output
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["eve@x.example"]
    msg = email.message_from_bytes(envelope.content, policy=email.policy.compat32)
    assert msg.get_all("Bcc") is None
    assert msg["To"] == "Eve <eve@x.example>", "the injected name is dropped (Eve: signature)"
    assert set(k.lower() for k in msg.keys()) <= {
        "from", "to", "subject", "date", "message-id", "in-reply-to", "references",
        "auto-submitted", "x-auto-response-suppress", "mime-version", "content-type"}


def test_smuggled_address_gets_no_reply(mailbox, smtp, make_config):
    config = make_config()
    raw = registration_mail("x", "x@x.example").replace(
        b"From: x <x@x.example>", b"From: alice@example.org)<bob@example.org>")
    mailbox.append(raw)

    CliRunner().invoke(main, ["--config", str(config), "run", "--once"])

    assert smtp.envelopes == []
    [mail] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in mail["flags"]


def test_sample_replies_cover_every_kind_in_both_languages(tmp_path):
    result = CliRunner().invoke(main, ["--config", str(ROOT / "examples" / "demo.toml"),
                                       "sample-replies", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in tmp_path.glob("*.eml"))
    assert len(files) == 2 * len(ReplyKind), "every reply kind, in German and English"
    for path in tmp_path.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None
        lang = path.name.split(".")[-2]
        assert ("Datenschutz" if lang == "de" else "Privacy") in msg.get_body(
            ("plain",)).get_content()


def test_a_reply_that_waited_gets_the_date_of_sending(composer):
    reply = composer.reply(ReplyKind.CONFIRMATION, Participant("a@a.example", "Anna"),
                           registration(), None, NOW)
    later = NOW + dt.timedelta(hours=7)
    fresh = email.message_from_bytes(restamp(reply.body, later, composer.config.event.tz),
                                     policy=email.policy.default)
    assert fresh["Date"].datetime == later
    assert len(fresh.get_all("Date")) == 1
    original = email.message_from_bytes(reply.body, policy=email.policy.default)
    assert fresh.get_body(("plain",)).get_content() == original.get_body(
        ("plain",)).get_content()


def test_the_privacy_note_needs_no_article_and_names_zoom(composer):
    """"Institut für soziale Innovation verarbeitet …" lacked its article: the organisation
    stands as who is responsible, the sentence speaks as "wir"; Zoom is named as recipient."""
    _, msg = render(composer, ReplyKind.CONFIRMATION, registration())
    text = " ".join(msg.get_body(("plain",)).get_content().split())
    organisation = composer.config.contact.organisation
    assert f"Datenschutz (verantwortlich: {organisation}): Wir verarbeiten Ihren Namen" in text
    assert f"{organisation} verarbeitet" not in text
    assert "erhält die Zoom Video Communications, Inc. die Angaben" in text
