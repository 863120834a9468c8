"""A registration's life, end to end against Dovecot and aiosmtpd: capacity and waitlist,
cancellation and promotion, duplicates, deadline, calendar answers, reminders, announcements,
and replies in the writer's language."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main

BERLIN = ZoneInfo("Europe/Berlin")


def run(config, *args):
    result = CliRunner().invoke(main, ["--config", str(config), *(args or ("run", "--once"))])
    assert result.exit_code == 0, result.output
    return result.output


def replies(smtp, to=None):
    out = []
    for envelope in smtp.envelopes:
        if to is None or envelope.rcpt_tos == [to]:
            out.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
    return out


def calendar(msg):
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    if not parts:
        return None, None
    [part] = parts
    return part, icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")[0]


def text(msg):
    return msg.get_body(("plain",)).get_content()


def mail_at(name, address, when, body="hiermit melde ich mich an."):
    """A mail whose Date (and so its arrival in the test mailbox) is ``when``."""
    return registration_mail(name, address, body).replace(
        b"Date: Fri, 21 May 2021 09:00:00 +0200",
        b"Date: " + email.utils.format_datetime(when).encode())


def test_capacity_waitlist_cancellation_and_promotion(mailbox, smtp, make_config):
    config = make_config(capacity=2)
    people = [("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example"),
              ("Clara Conrad", "clara@c.example")]
    for minute, (name, address) in enumerate(people):
        mailbox.append(mail_at(name, address, dt.datetime(2021, 5, 20, 9, minute,
                                                          tzinfo=BERLIN)))
    run(config)

    assert rows(config, "SELECT email, status FROM registrations ORDER BY id") == [
        ("anna@a.example", "confirmed"), ("bernd@b.example", "confirmed"),
        ("clara@c.example", "waitlisted")]
    [waiting] = replies(smtp, "clara@c.example")
    assert waiting["Subject"].startswith("Warteliste:")
    assert "zoom.us" not in waiting.as_string() and calendar(waiting) == (None, None)
    [(anna_uid,)] = rows(config, "SELECT ics_uid FROM registrations WHERE email = ?",
                         "anna@a.example")

    smtp.envelopes.clear()
    mailbox.append(mail_at("Anna Arndt", "anna@a.example",
                           dt.datetime(2021, 5, 22, 9, 0, tzinfo=BERLIN),
                           "leider muss ich meine Teilnahme absagen."))
    run(config)

    [cancel] = replies(smtp, "anna@a.example")
    part, event = calendar(cancel)
    assert cancel["Subject"].startswith("Abmeldung bestätigt:")
    assert part.get_param("method") == "CANCEL" and "CANCEL" in part["Content-Type"]
    assert (str(event["UID"]), event["SEQUENCE"], event["STATUS"]) == (anna_uid, 1, "CANCELLED")
    [promoted] = replies(smtp, "clara@c.example")
    assert promoted["Subject"].startswith("Anmeldebestätigung:")
    assert "https://zoom.us/j/84512345678" in text(promoted)
    assert calendar(promoted)[0].get_param("method") == "REQUEST"
    assert promoted["In-Reply-To"] is None, "not an answer to Anna's mail"
    assert rows(config, "SELECT email, status FROM registrations ORDER BY id") == [
        ("anna@a.example", "cancelled"), ("bernd@b.example", "confirmed"),
        ("clara@c.example", "confirmed")]


def test_duplicate_and_registering_again_after_cancelling(mailbox, smtp, make_config):
    config = make_config()
    days = [dt.datetime(2021, 5, d, 9, tzinfo=BERLIN) for d in (18, 19, 20, 21)]
    mailbox.append(mail_at("Anna Arndt", "anna@a.example", days[0]))
    mailbox.append(mail_at("Anna Arndt", "anna@a.example", days[1]))
    run(config)
    first, again = replies(smtp)
    assert again["Subject"].startswith("Sie sind bereits angemeldet:")
    assert [(str(calendar(m)[1]["UID"]), calendar(m)[1]["SEQUENCE"]) for m in (first, again)] \
        == [(str(calendar(first)[1]["UID"]), 0)] * 2, "same entry, same version"

    mailbox.append(mail_at("Anna Arndt", "anna@a.example", days[2], "ich muss leider absagen."))
    mailbox.append(mail_at("Anna Arndt", "anna@a.example", days[3], "ich bin doch dabei!"))
    run(config)

    *_, cancelled, back = replies(smtp)
    assert [calendar(m)[1]["SEQUENCE"] for m in (cancelled, back)] == [1, 2]
    assert str(calendar(back)[1]["UID"]) == str(calendar(first)[1]["UID"])
    assert rows(config, "SELECT status, ics_sequence FROM registrations") == [("confirmed", 2)]


def test_arrival_after_the_deadline_is_politely_closed(mailbox, smtp, make_config):
    config = make_config()
    late = dt.datetime(2021, 5, 31, 0, 5, tzinfo=BERLIN)  # deadline: the start, 31.5. 10:00
    mailbox.append(mail_at("Anna Arndt", "anna@a.example", late))
    mailbox.append(mail_at("Bernd Bauer", "bernd@b.example",
                           dt.datetime(2021, 5, 31, 10, 5, tzinfo=BERLIN)))
    run(config)
    assert [m["Subject"].split(":")[0] for m in replies(smtp)] == [
        "Anmeldebestätigung", "Anmeldung nicht mehr möglich"]
    assert rows(config, "SELECT email FROM registrations") == [("anna@a.example",)]


def test_calendar_answer_of_a_registered_person_is_recorded_and_not_answered(
        mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    run(config)
    smtp.envelopes.clear()
    rsvp = (b"From: Anna Arndt <anna@a.example>\r\nTo: n.collinet@isi-innovation.de\r\n"
            b"Subject: Angenommen: Digitales Auftakttreffen\r\nMessage-ID: <rsvp@a.example>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n"
            b"\r\nBEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:x@y\r\n"
            b"ATTENDEE;PARTSTAT=ACCEPTED:mailto:anna@a.example\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    mailbox.append(rsvp)
    run(config)
    assert smtp.envelopes == []
    assert rows(config, "SELECT action FROM messages WHERE message_id = '<rsvp@a.example>'"
                ) == [("noop",)]
    assert rows(config, "SELECT status FROM registrations") == [("confirmed",)]


def test_english_mail_gets_an_english_reply_and_later_mails_too(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail(
        "Emma Clarke", "emma@e.example",
        "Dear Ms Collinet, I would like to register for the meeting. Best regards"))
    run(config)
    [reply] = replies(smtp)
    assert reply["Subject"].startswith("Registration confirmed:")
    assert "Monday, 31 May 2021, 10:00–15:00 (Berlin time)" in text(reply)
    assert "Meeting ID: 845 1234 5678" in text(reply)
    assert rows(config, "SELECT language FROM registrations") == [("en",)]


@pytest.mark.parametrize("kind", ["confirmation", "cancellation", "update"])
def test_every_calendar_is_read_by_icalendar_and_vobject(mailbox, smtp, make_config, kind):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    run(config)
    if kind == "cancellation":
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example", "ich sage ab."))
        run(config)
    if kind == "update":
        config.write_text(config.read_text().replace("T10:00:00", "T11:00:00"))
        run(config, "announce", "--yes")
    msg = replies(smtp)[-1]
    part, event = calendar(msg)
    ics = part.get_content().encode()
    assert max(len(line) for line in ics.split(b"\r\n")) <= 75
    parsed = vobject.readOne(ics.decode())
    start = parsed.vevent.dtstart.value
    hour = 11 if kind == "update" else 10
    assert start == dt.datetime(2021, 5, 31, hour, tzinfo=BERLIN)
    assert event.decoded("DTSTART") == start
    assert parsed.vevent.dtend.value == dt.datetime(2021, 5, 31, 15, tzinfo=BERLIN)
    assert parsed.vevent.uid.value == str(event["UID"])


def test_reminders_each_once_across_runs(mailbox, smtp, make_config):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = (now + dt.timedelta(hours=2)).astimezone(BERLIN).replace(tzinfo=None)
    config = make_config(start=start.isoformat(),
                         end=(start + dt.timedelta(hours=3)).isoformat(),
                         extra='\n[reminders]\nbefore = ["3h", "1h"]\n')
    for name, address in [("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example")]:
        mailbox.append(mail_at(name, address, now - dt.timedelta(hours=5)))
    mailbox.append(mail_at("Clara Conrad", "clara@c.example", now - dt.timedelta(hours=4),
                           "ich muss leider absagen."))

    run(config)  # confirmations, and the 3-hour reminder is due
    run(config)  # nothing new
    reminders = [m for m in replies(smtp) if m["Subject"].startswith("Erinnerung:")]
    assert sorted(m["To"].addresses[0].addr_spec for m in reminders) == [
        "anna@a.example", "bernd@b.example"]
    assert "https://zoom.us/j/84512345678" in text(reminders[0])

    soon = (now + dt.timedelta(minutes=30)).astimezone(BERLIN).replace(tzinfo=None)
    config.write_text(config.read_text().replace(start.isoformat(), soon.isoformat()))
    run(config, "remind")  # by hand: the 1-hour reminder is due now
    run(config)
    reminders = [m for m in replies(smtp) if m["Subject"].startswith("Erinnerung:")]
    assert len(reminders) == 4
    assert rows(config, "SELECT count(*) FROM notices WHERE sent = 1") == [(4,)]


def test_announce_sends_new_details_once_and_a_cancelled_event_to_all(mailbox, smtp,
                                                                      make_config):
    config = make_config(capacity=1)
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    run(config)
    [(uid,)] = rows(config, "SELECT ics_uid FROM registrations WHERE status = 'confirmed'")
    smtp.envelopes.clear()

    assert "nothing to send" in run(config, "announce", "--yes")
    config.write_text(config.read_text().replace("84512345678?pwd=dGVzdA", "99988877766"))
    assert run(config, "announce", "--yes").startswith("1 announcement queued, 1 delivered")
    assert "nothing to send" in run(config, "announce", "--yes")

    [update] = replies(smtp)
    assert update["To"].addresses[0].addr_spec == "anna@a.example", "not the waitlisted"
    assert update["Subject"].startswith("Geänderte Angaben:")
    assert "https://zoom.us/j/99988877766" in text(update)
    part, event = calendar(update)
    assert part.get_param("method") == "REQUEST"
    assert (str(event["UID"]), event["SEQUENCE"]) == (uid, 1)

    smtp.envelopes.clear()
    config.write_text(config.read_text().replace('language = "de"',
                                                 'language = "de"\ncancelled = true'))
    run(config, "announce", "--yes")
    run(config, "announce", "--yes")
    anna, bernd = replies(smtp, "anna@a.example"), replies(smtp, "bernd@b.example")
    assert len(anna) == len(bernd) == 1
    part, event = calendar(anna[0])
    assert part.get_param("method") == "CANCEL" and event["SEQUENCE"] == 2
    assert event["STATUS"] == "CANCELLED"
    assert bernd[0]["Subject"].startswith("Abgesagt:") and calendar(bernd[0]) == (None, None)


def test_details_changed_back_and_forth_are_announced_each_time(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    run(config)
    original = config.read_text()
    changed = original.replace("84512345678?pwd=dGVzdA", "99988877766")
    for text in (changed, original, changed):
        config.write_text(text)
        assert run(config, "announce", "--yes").startswith("1 announcement queued")
    sequences = [calendar(m)[1]["SEQUENCE"] for m in replies(smtp)[1:]]
    assert sequences == [1, 2, 3]


def test_no_reminder_for_a_cancelled_event():
    from mailbot.core.models import Registration, Status
    from mailbot.rules.lifecycle import due_reminders

    start = dt.datetime(2021, 5, 31, 10, tzinfo=BERLIN)
    reg = Registration("a@a.example", "A", None, Status.CONFIRMED, "u", 0,
                       start - dt.timedelta(days=3), "<m@x>")
    hour = (dt.timedelta(hours=1),)
    now = start - dt.timedelta(minutes=30)
    assert len(due_reminders([reg], hour, start, now, set())) == 1
    assert due_reminders([reg], hour, start, now, set(), cancelled=True) == []
