"""Calendar answers by what a person did (METHOD:REPLY), against the real Dovecot and
aiosmtpd: an acceptance from someone not registered (a forwarded invitation) registers her
or goes to a human, never dropped; a refusal cancels that attendee even when Google
Calendar marks it "Auto-Submitted: auto-generated"; a tentative answer with a comment
goes to a human."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows

from mailbot.cli import main
from mailbot.reading.classify import classify
from mailbot.reading.subject import calendar_comment


def run(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


def calendar_answer(sender: str, attendee: str, partstat: str, comment: str = "",
                    google: bool = False, name: str = "Anna Arndt", n: int = 1) -> bytes:
    """A calendar program's REPLY; ``google``: with the header Google Calendar adds."""
    ics = ("BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
           "METHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:auftakt@isi-innovation.de\r\n"
           f"ATTENDEE;CUTYPE=INDIVIDUAL;PARTSTAT={partstat};CN={name}:mailto:{attendee}\r\n"
           + (f"COMMENT:{comment}\r\n" if comment else "") + "END:VEVENT\r\nEND:VCALENDAR\r\n")
    word = {"ACCEPTED": "Angenommen", "DECLINED": "Abgelehnt"}.get(partstat, "Vorbehalt")
    return (f"From: {name} <{sender}>\r\nTo: {CONTACT}\r\n"
            f"Subject: {word}: Digitales Auftakttreffen\r\n"
            f"Date: Fri, 21 May 2021 10:00:00 +0200\r\n"
            f"Message-ID: <rsvp-{n}@{sender.split('@')[1]}>\r\n"
            + ("Auto-Submitted: auto-generated\r\n" if google else "")
            + "MIME-Version: 1.0\r\n"
            "Content-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n" + ics).encode()


def test_an_acceptance_from_someone_not_registered_registers_her(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(calendar_answer("anna@kreis-a.example", "anna@kreis-a.example", "ACCEPTED",
                                   google=True))

    result = run(config)

    assert result.exit_code == 0, result.output
    assert rows(config, "SELECT email, name, status FROM registrations") == [
        ("anna@kreis-a.example", "Anna Arndt", "confirmed")]
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["anna@kreis-a.example"]
    assert rows(config, "SELECT kind FROM outbox") == [("confirmation",)]


def test_an_acceptance_for_someone_else_of_another_domain_goes_to_a_human(
        mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(calendar_answer("eve@evil.example", "anna@kreis-a.example", "ACCEPTED"))

    assert run(config).exit_code == 0

    assert smtp.envelopes == []
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]
    assert rows(config, "SELECT action FROM messages") == [("review",)]
    [mail] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in mail["flags"]


def test_a_google_refusal_cancels_that_attendee(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@kreis-a.example"))
    assert run(config).exit_code == 0
    mailbox.append(calendar_answer("anna@kreis-a.example", "anna@kreis-a.example", "DECLINED",
                                   google=True))

    assert run(config).exit_code == 0

    assert rows(config, "SELECT status FROM registrations") == [("cancelled",)]
    assert rows(config, "SELECT kind FROM outbox ORDER BY id") == [("confirmation",),
                                                                  ("cancellation",)]


def test_a_tentative_answer_with_a_comment_goes_to_a_human(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@kreis-a.example"))
    assert run(config).exit_code == 0
    mailbox.append(calendar_answer("anna@kreis-a.example", "anna@kreis-a.example", "TENTATIVE",
                                   "Ich weiß noch nicht, ob ich vormittags kann."))

    assert run(config).exit_code == 0

    assert rows(config, "SELECT status FROM registrations") == [("confirmed",)]
    assert rows(config, "SELECT action FROM messages WHERE message_id LIKE '<rsvp-%'") == [
        ("review",)]
    assert len(smtp.envelopes) == 1


def test_a_refusal_from_someone_never_registered_is_answered_by_nobody(
        mailbox, smtp, make_config):
    """A forwarded invitation declined: nothing to cancel, and a "you were not registered"
    notice would answer a button press nobody expects an answer to — but her registration
    may wait for a human: the organiser looks."""
    config = make_config()
    mailbox.append(calendar_answer("jonas@verband.example", "jonas@verband.example",
                                   "DECLINED", google=True, name="Jonas Lehr"))

    assert run(config).exit_code == 0

    assert smtp.envelopes == []
    assert rows(config, "SELECT action FROM messages") == [("review",)]
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]


def test_a_cancellation_with_a_question_from_someone_never_registered_goes_to_a_human(
        mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail(
        "Dirk Sauer", "dirk@gemeinde.example",
        text="Leider schaffe ich es am 31. Mai nicht. Könnten Sie mir die Folien der Vorträge "
             "im Nachgang schicken?"))

    assert run(config).exit_code == 0

    assert smtp.envelopes == []
    assert rows(config, "SELECT action FROM messages") == [("review",)]
    [mail] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in mail["flags"]


def _google_body(verb: str, note: str = "") -> str:
    said = f" with a note:\n\"{note}\"" if note else "."
    return (f"Anna Arndt has {verb} this invitation{said}\n\nDigitales Auftakttreffen\n"
            "Monday 31 May ⋅ 10am – 3pm\n\nJoin with Zoom\nhttps://zoom.example/j/1\n\n"
            "Invitation from Google Calendar: https://calendar.google.com/calendar/\n")


@pytest.mark.parametrize("text, calendar, comment", [
    (_google_body("accepted"), ("ACCEPTED", "a@x.example", "Anna", ""), ""),
    (_google_body("declined", "Leider krank, sorry!"), ("DECLINED", "a@x.example", "Anna", ""),
     "Leider krank, sorry!"),
    ("Wir kommen zu zweit, meine Kollegin schreibt noch.\n\n" + _google_body("accepted"),
     ("ACCEPTED", "a@x.example", "Anna", ""), "Wir kommen zu zweit, meine Kollegin schreibt noch."),
    ("egal", ("DECLINED", "a@x.example", "Anna", "Dienstreise"), "Dienstreise"),
])
def test_the_calendars_own_text_is_no_comment(text, calendar, comment):
    assert calendar_comment(text, calendar) == comment


def test_an_acceptances_comment_nobody_understood_is_read_by_a_human():
    reading = classify("Angenommen: Digitales Auftakttreffen", "", "REPLY",
                       calendar=("ACCEPTED", "a@x.example", "Anna",
                                 "Ich habe eine Hörbehinderung."))
    assert reading.note


@pytest.mark.parametrize("comment, flagged", [
    ("Ich bin ab dem 25. Mai in der Reha und kann nicht teilnehmen.", False),
    ("Sorry, something came up at work.", False),
    ("Kann ich die Folien trotzdem bekommen?", True),
    ("Statt mir kommt meine Kollegin Jana Roth, jana.roth@x.example.", True),
])
def test_a_refusals_comment_is_flagged_only_when_it_says_more(comment, flagged):
    reading = classify("Abgelehnt: Digitales Auftakttreffen", "", "REPLY",
                       calendar=("DECLINED", "a@x.example", "Anna", comment))
    assert bool(reading.note) is flagged
