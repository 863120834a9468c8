"""The walking skeleton's promises, against a real Dovecot and a real aiosmtpd."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main

PEOPLE = [("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example"),
          ("Clara Çelik", "clara@c.example")]


def run_once(config) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def calendar_part(msg) -> icalendar.Calendar:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "one text/calendar part"
    assert parts[0].get_param("method") == "REQUEST"
    return icalendar.Calendar.from_ical(parts[0].get_content())


def test_three_registrations_are_answered_recorded_and_moved(mailbox, smtp, make_config):
    config = make_config()
    for name, address in PEOPLE:
        mailbox.append(registration_mail(name, address))

    output = run_once(config)

    assert "3 mails read" in output
    messages = smtp.messages()
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == sorted(a for _, a in PEOPLE)
    assert all(len(e.rcpt_tos) == 1 for e in smtp.envelopes)
    berlin = ZoneInfo("Europe/Berlin")
    for msg in messages:
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["In-Reply-To"] and msg["References"] == msg["In-Reply-To"]
        assert msg["From"].addresses[0].addr_spec == "n.collinet@isi-innovation.de"
        text = msg.get_body(("plain",)).get_content()
        assert "https://zoom.us/j/84512345678" in text and "845 1234 5678" in text
        assert "Montag, 31. Mai 2021, 10:00–15:00 Uhr" in text
        event = calendar_part(msg).walk("VEVENT")[0]
        start = event.decoded("DTSTART")
        assert start == dt.datetime(2021, 5, 31, 10, 0, tzinfo=berlin)
        assert str(start.tzinfo) == "Europe/Berlin"
        assert str(event["ATTENDEE"]).lower() == f"mailto:{msg['To'].addresses[0].addr_spec}"
    names = {msg["To"].addresses[0].display_name for msg in messages}
    assert names == {name for name, _ in PEOPLE}
    assert sorted(rows(config, "SELECT email, status FROM registrations")) == sorted(
        (a, "confirmed") for _, a in PEOPLE)
    assert mailbox.folder("INBOX") == {}
    processed = mailbox.folder("Processed")
    assert len(processed) == 3
    assert all(b"\\Seen" in m["flags"] for m in processed.values())


def test_second_run_sends_nothing_and_adds_nothing(mailbox, smtp, make_config):
    config = make_config()
    for name, address in PEOPLE:
        mailbox.append(registration_mail(name, address))
    run_once(config)
    sent = len(smtp.envelopes)
    count = rows(config, "SELECT count(*) FROM registrations")

    # the same mails once more in the inbox, as after a crash before the move
    for msg in mailbox.folder("Processed").values():
        mailbox.append(msg["raw"])
    run_once(config)
    run_once(config)

    assert len(smtp.envelopes) == sent == 3
    assert rows(config, "SELECT count(*) FROM registrations") == count
    assert rows(config, "SELECT count(*) FROM messages") == [(3,)]
    assert mailbox.folder("INBOX") == {}


def test_robots_get_no_reply_and_foreign_mail_is_untouched(mailbox, smtp, make_config):
    config = make_config()
    ooo = registration_mail("Klaus Becker", "k.becker@stadt-hamm.example",
                            "Ich bin bis zum 4.6. nicht im Büro.",
                            extra="Auto-Submitted: auto-replied\r\n")
    bounce = (b"From: Mail Delivery System <MAILER-DAEMON@mx.isi-innovation.de>\r\n"
              b"To: n.collinet@isi-innovation.de\r\nSubject: Undelivered Mail\r\n"
              b"Message-ID: <bounce-1@mx.isi-innovation.de>\r\n\r\nuser unknown\r\n")
    foreign = registration_mail("Newsletter", "info@stiftung.example",
                                "Ich melde mich an zum Fachtag.", to="info@isi-innovation.de")
    for raw in (ooo, bounce, foreign):
        mailbox.append(raw)

    run_once(config)

    assert smtp.envelopes == []
    inbox = mailbox.folder("INBOX")
    assert [m["raw"] for m in inbox.values()] == [foreign]
    assert all(m["flags"] == set() for m in inbox.values()), "foreign mail: not seen, no flag"
    assert len(mailbox.folder("Processed")) == 2
    assert sorted(rows(config, "SELECT action FROM messages")) == [("ignore",), ("ignore",)]
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]


def test_servers_without_move_get_copy_delete_expunge(mailbox, smtp, make_config, monkeypatch):
    from mailbot.mail.imap import ImapInbox

    real_init = ImapInbox.__init__

    def without_move(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.can_move = False

    monkeypatch.setattr(ImapInbox, "__init__", without_move)
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Newsletter", "n@x.example", to="info@isi-innovation.de"))

    run_once(config)

    assert len(smtp.envelopes) == 1
    assert len(mailbox.folder("Processed")) == 1
    [left] = mailbox.folder("INBOX").values()
    assert b"Newsletter" in left["raw"] and left["flags"] == set(), "only ours was expunged"


def test_unreadable_mail_is_flagged_for_review_and_the_batch_goes_on(mailbox, smtp,
                                                                     make_config):
    config = make_config()
    no_sender = (b"To: n.collinet@isi-innovation.de\r\nSubject: Anmeldung\r\n"
                 b"Message-ID: <nosender@x.example>\r\n\r\nIch melde mich an.\r\n")
    mailbox.append(no_sender)
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))

    output = run_once(config)

    assert "1 for review" in output
    assert [e.rcpt_tos for e in smtp.envelopes] == [["anna@a.example"]]
    inbox = list(mailbox.folder("INBOX").values())
    assert len(inbox) == 1 and inbox[0]["flags"] == {b"\\Flagged"}
    assert rows(config, "SELECT action, reason FROM messages WHERE sender IS NULL") == [
        ("review", "Absender nicht lesbar oder mehrdeutig")]

    run_once(config)  # still waiting for a human: not recorded twice, still flagged
    assert rows(config, "SELECT count(*) FROM messages") == [(2,)]
    assert list(mailbox.folder("INBOX").values())[0]["flags"] == {b"\\Flagged"}
