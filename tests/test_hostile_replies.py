"""Hostile mail end to end: what reaches the SMTP server (real Dovecot and aiosmtpd)."""

from __future__ import annotations

import email
import email.policy

import icalendar
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main


def run(config):
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def parts(envelope, ctype):
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    return [p for p in msg.walk() if p.get_content_type() == ctype]


def test_names_built_to_break_calendar_and_html_stay_text(mailbox, smtp, make_config):
    config = make_config()
    body = ("ich melde mich an.\r\n\r\nName: Eve <script>alert('x')</script>; x\\, "
            "END:VEVENT BEGIN:VALARM")
    mailbox.append(registration_mail("Eve", "eve@x.example", body))

    run(config)

    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["eve@x.example"]
    [html] = parts(envelope, "text/html")
    assert "<script>" not in html.get_content() and "&lt;script&gt;" in html.get_content()
    [cal] = parts(envelope, "text/calendar")
    ics = cal.get_content()
    assert [line for line in ics.splitlines() if line.startswith(("END:", "BEGIN:"))] == [
        "BEGIN:VCALENDAR", "BEGIN:VTIMEZONE", "BEGIN:DAYLIGHT", "END:DAYLIGHT",
        "BEGIN:STANDARD", "END:STANDARD", "BEGIN:DAYLIGHT", "END:DAYLIGHT", "END:VTIMEZONE",
        "BEGIN:VEVENT", "END:VEVENT", "END:VCALENDAR"]
    [event] = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    assert "END:VEVENT" in str(event["ATTENDEE"].params["CN"])


def test_more_than_ten_people_in_one_mail_go_to_a_human(mailbox, smtp, make_config):
    config = make_config()
    listing = "\r\n".join(f"{i}. Person {chr(65 + i)}, p{i}@x.example" for i in range(1, 12))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example",
                                     "wir melden folgende Personen an:\r\n" + listing))

    run(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT action, reason FROM messages") == [
        ("review", "mehr als 10 Personen in einer Mail")]
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]


def test_one_address_gets_at_most_five_replies_a_day(mailbox, smtp, make_config):
    config = make_config()
    for _ in range(7):
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))

    output = run(config)

    assert len(smtp.envelopes) == 5
    assert "7 registrations" not in output and "2 for review" in output
    assert rows(config, "SELECT count(*) FROM registrations") == [(1,)]
    flagged = [m for m in mailbox.folder("INBOX").values() if b"\\Flagged" in m["flags"]]
    assert len(flagged) == 2, "the unanswered ones wait for a human"


def test_forged_sender_caught_by_our_dmarc_check_is_not_registered(mailbox, smtp, make_config):
    config = make_config()
    config.write_text(config.read_text().replace(
        'processed_folder = "Processed"',
        'processed_folder = "Processed"\nauthserv_id = "mx.isi-innovation.de"'))
    forged = registration_mail("Anna Arndt", "anna@a.example", extra=(
        "Authentication-Results: mx.isi-innovation.de; spf=fail; dmarc=fail "
        "header.from=a.example\r\n"))
    mailbox.append(forged)

    run(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT action, reason FROM messages") == [
        ("review", "DMARC-Prüfung fehlgeschlagen – Absender womöglich gefälscht")]


def test_mail_from_years_ago_at_the_first_start_is_left_unrecorded(mailbox, smtp, make_config):
    config = make_config()
    config.write_text(config.read_text().replace('max_age = "10000d"', 'max_age = "7d"'))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))  # dated May 2021

    run(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT count(*) FROM messages") == [(0,)]
    assert len(mailbox.folder("INBOX")) == 1 and mailbox.folder("Processed") == {}
