"""Bounces of mailbot's own replies, against Dovecot and aiosmtpd."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import registration_mail, rows, shared_sample

from mailbot.cli import main
from mailbot.reading import bounce
from mailbot.store import Store

CONTACT = "n.collinet@isi-innovation.de"


def cli(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def dsn(recipient: str, message_id: str, status: str = "5.1.1") -> bytes:
    """A standard delivery status report (RFC 3464) as Postfix writes it."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.isi-innovation.de>\r\n"
        f"To: {CONTACT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: Mon, 24 May 2021 10:00:00 +0200\r\n"
        f"Message-ID: <dsn-{abs(hash(message_id))}@mx.isi-innovation.de>\r\n"
        f"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        f"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"Your message could not be delivered.\r\n\r\n<{recipient}>: user unknown\r\n"
        f"--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.isi-innovation.de\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} User unknown\r\n"
        f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Nathalie Collinet <{CONTACT}>\r\nTo: <{recipient}>\r\n"
        f"Subject: Anmeldung bestätigt\r\nMessage-ID: {message_id}\r\n"
        f"--b1--\r\n").encode()


def exim_bounce(recipient: str, message_id: str) -> bytes:
    """A bounce without a delivery-status part, as Exim writes it."""
    return (
        f"From: Mail Delivery System <Mailer-Daemon@mail.example.net>\r\n"
        f"To: {CONTACT}\r\nSubject: Mail delivery failed: returning message to sender\r\n"
        f"Date: Sun, 30 May 2021 10:00:00 +0200\r\nMessage-ID: <exim-1@mail.example.net>\r\n"
        f"X-Failed-Recipients: {recipient}\r\nAuto-Submitted: auto-replied\r\n\r\n"
        f"This message was created automatically by mail delivery software.\r\n\r\n"
        f"A message that you sent could not be delivered to one or more of its\r\n"
        f"recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n    SMTP error from remote mail server after RCPT TO:<{recipient}>:\r\n"
        f"    550 5.2.1 The email account that you tried to reach is disabled\r\n\r\n"
        f"------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        f"From: Nathalie Collinet <{CONTACT}>\r\nMessage-ID: {message_id}\r\n"
        f"Subject: Erinnerung\r\n\r\nGuten Tag\r\n").encode()


def reply_id(config, recipient: str, kind: str = "confirmation") -> str:
    return rows(config, "SELECT message_id FROM outbox WHERE recipient = ? AND kind = ?",
                recipient, kind)[0][0]


def test_a_bounced_confirmation_marks_the_address_and_waits_for_a_human(
        make_config, mailbox, smtp):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    assert cli(config, "run", "--once").exit_code == 0
    mailbox.append(dsn("anna@a.example", reply_id(config, "anna@a.example")))

    assert cli(config, "run", "--once").exit_code == 0

    assert rows(config, "SELECT recipient, status, last_error FROM outbox ORDER BY id") == [
        ("anna@a.example", "bounced", "bounced: 5.1.1"), ("bernd@b.example", "sent", None)]
    marked = rows(config, "SELECT email FROM registrations WHERE undeliverable LIKE '5.1.1 %'")
    assert marked == [("anna@a.example",)]
    assert len(smtp.envelopes) == 2, "the bounce is never answered"
    [left] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in left["flags"] and b"MAILER-DAEMON" in left["raw"]
    review = cli(config, "review").output
    assert "Unzustellbar: confirmation an anna@a.example kam zurück (5.1.1)" in review
    assert "Undeliverable addresses: 1" in cli(config, "status").output


def test_no_announcement_or_reminder_goes_to_an_address_that_bounced(make_config, mailbox,
                                                                     smtp):
    config = make_config()
    for name, address in (("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example")):
        mailbox.append(registration_mail(name, address))
    assert cli(config, "run", "--once").exit_code == 0
    mailbox.append(exim_bounce("anna@a.example", reply_id(config, "anna@a.example")))
    assert cli(config, "run", "--once").exit_code == 0
    config.write_text(config.read_text().replace('passcode = "Auftakt21"',
                                                 'passcode = "Neu2021"'))

    result = cli(config, "announce", "--yes")

    assert result.exit_code == 0, result.output
    updates = rows(config, "SELECT recipient FROM outbox WHERE kind = 'update'")
    assert updates == [("bernd@b.example",)], "no announcement to the bounced address"
    with Store(config.parent / "mailbot.sqlite") as store:  # the reminders' list, too
        assert [r.email for r in store.with_status("confirmed", reachable=True)] == [
            "bernd@b.example"]
    assert rows(config, "SELECT last_error FROM outbox WHERE recipient = 'anna@a.example'") \
        == [("bounced: 5.2.1",)]


def test_the_sample_bounce_of_a_stranger_is_still_only_ignored():
    raw = shared_sample("09_bounce.eml")
    found = bounce.read(raw)
    assert found == bounce.Bounce(("unbekannt@example.org",), "5.1.1", ())


def test_bounces_are_read_standard_and_not():
    found = bounce.read(exim_bounce("anna@a.example", "<r1@isi-innovation.de>"))
    assert found is not None and found.failed == ("anna@a.example",)
    assert found.original_ids == ("<r1@isi-innovation.de>",) and found.status == "5.2.1"
    standard = bounce.read(dsn("bernd@b.example", "<r2@isi-innovation.de>", "5.7.1"))
    assert standard == bounce.Bounce(("bernd@b.example",), "5.7.1",
                                     ("<r2@isi-innovation.de>",))
    assert bounce.read(registration_mail("Anna Arndt", "anna@a.example")) is None


def test_an_absence_notice_is_no_bounce():
    assert bounce.read(shared_sample("08_abwesenheit.eml")) is None


def test_a_bounce_of_a_confirmed_person_others_wait_for_is_called_out(make_config, mailbox,
                                                                      smtp):
    config = make_config(capacity=1)
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    assert cli(config, "run", "--once").exit_code == 0
    assert rows(config, "SELECT email, status FROM registrations ORDER BY id") == [
        ("anna@a.example", "confirmed"), ("bernd@b.example", "waitlisted")]
    mailbox.append(dsn("anna@a.example", reply_id(config, "anna@a.example")))

    assert cli(config, "run", "--once").exit_code == 0

    review = cli(config, "review").output
    assert "anna@a.example kam zurück (5.1.1)" in review
    assert "bestätigt, und andere warten auf einen Platz" in review
    assert rows(config, "SELECT status FROM registrations WHERE email = 'anna@a.example'") == [
        ("confirmed",)], "a human decides whether Anna's place goes on"


def test_a_bounce_for_another_address_changes_nobody_and_waits_for_a_human(
        make_config, mailbox, smtp):
    """Anna's mail is forwarded and the forwarded address fails: the bounce quotes our
    reply to Anna but reports another address. Nobody is marked (no evidence that Anna's
    own address fails); a human reads it."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    assert cli(config, "run", "--once").exit_code == 0
    mailbox.append(dsn("anna.arndt@forward.example", reply_id(config, "anna@a.example")))

    assert cli(config, "run", "--once").exit_code == 0

    assert rows(config, "SELECT status FROM outbox") == [("sent",)]
    assert rows(config, "SELECT undeliverable FROM registrations") == [(None,)]
    [left] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in left["flags"]
    assert ("Unzustellbar-Meldung für anna.arndt@forward.example zu unserer Antwort an "
            "anna@a.example") in cli(config, "review").output


def test_a_bounced_reminder_stops_the_next_reminder_and_is_never_answered(make_config, mailbox,
                                                                          smtp):
    """Issue 14: a DSN of a reminder (not only of a confirmation) marks the address."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = (now + dt.timedelta(hours=2)).astimezone(berlin).replace(tzinfo=None)
    config = make_config(start=start.isoformat(), end=(start + dt.timedelta(hours=3)).isoformat(),
                         extra='\n[reminders]\nbefore = ["3h", "1h"]\n')
    for name, address in (("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example")):
        mailbox.append(registration_mail(name, address))
    assert cli(config, "run", "--once").exit_code == 0  # confirmations and the 3 h reminder
    mailbox.append(dsn("anna@a.example", reply_id(config, "anna@a.example", "reminder")))
    assert cli(config, "run", "--once").exit_code == 0
    sent_before = len(smtp.envelopes)

    soon = (now + dt.timedelta(minutes=30)).astimezone(berlin).replace(tzinfo=None)
    config.write_text(config.read_text().replace(start.isoformat(), soon.isoformat()))
    assert cli(config, "remind").exit_code == 0  # the 1 h reminder is due now

    assert rows(config, "SELECT kind, status FROM outbox WHERE recipient = 'anna@a.example' "
                        "ORDER BY id") == [("confirmation", "sent"), ("reminder", "bounced")]
    assert rows(config, "SELECT email FROM registrations WHERE undeliverable IS NOT NULL") == [
        ("anna@a.example",)]
    later = [e.rcpt_tos for e in smtp.envelopes[sent_before:]]
    assert later == [["bernd@b.example"]], "the next reminder goes to Bernd only"
    assert all(e.rcpt_tos != [CONTACT] for e in smtp.envelopes), "the DSN is never answered"
