"""Mail from before mailbot's first start stays where it is, unrecorded; any later mail is
read however old its date or however far the clock is off; erasing takes only the mail
mailbot handled, a limited number of UIDs per command (real Dovecot and aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import shutil

from conftest import CONTACT, registration_mail, rows
from test_desk_commands import cli

from mailbot.config import load
from mailbot.mail.imap import ImapInbox
from mailbot.service import processor as processor_mod

FUTURE = {"start": "2030-05-31T10:00:00", "end": "2030-05-31T15:00:00"}
NOW = dt.datetime.now(dt.UTC)


def _seven_days(config):
    config.write_text(config.read_text().replace('max_age = "10000d"', 'max_age = "7d"'))
    return config


def _subjects(mailbox, folder: str) -> list[bytes]:
    return sorted(m["raw"].split(b"From: ", 1)[1].split(b"\r\n", 1)[0]
                  for m in mailbox.folder(folder).values())


def test_old_mail_at_the_first_start_stays_unrecorded_and_purge_leaves_it(
        make_config, mailbox, smtp):
    config = _seven_days(make_config(**FUTURE))
    mailbox.append(registration_mail("Otto Alt", "otto@old.example"), when=NOW - dt.timedelta(30))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"), when=NOW - dt.timedelta(1))
    cli(config, "run", "--once")
    cli(config, "run", "--once")
    assert rows(config, "SELECT email FROM registrations") == [("anna@a.example",)]
    assert rows(config, "SELECT count(*) FROM messages WHERE sender = 'otto@old.example' "
                        "OR subject LIKE '%Auftakt%' AND sender IS NULL") == [(0,)]
    assert _subjects(mailbox, "INBOX") == [b"Otto Alt <otto@old.example>"]
    [old] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" not in old["flags"] and b"\\Seen" not in old["flags"]
    assert [e.rcpt_tos for e in smtp.envelopes] == [["anna@a.example"]]

    cli(config, "purge", "--now", "--yes")
    assert _subjects(mailbox, "INBOX") == [b"Otto Alt <otto@old.example>"], \
        "purge deletes only what mailbot handled"


def test_a_registration_moved_back_after_eight_days_is_read(make_config, mailbox, smtp):
    config = _seven_days(make_config(**FUTURE))
    cli(config, "run", "--once")  # the first start: an empty inbox
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"), when=NOW - dt.timedelta(8))
    out = cli(config, "run", "--once")
    assert "vor dem Start" not in out
    assert rows(config, "SELECT email, status FROM registrations") == [
        ("anna@a.example", "confirmed")]
    assert rows(config, "SELECT count(*) FROM messages WHERE reason LIKE '%vor dem Start%'"
                ) == [(0,)]


def test_with_the_clock_eight_days_ahead_no_registration_is_lost(make_config, mailbox, smtp,
                                                                 monkeypatch):
    config = _seven_days(make_config(**FUTURE))
    ahead = processor_mod.now_utc() + dt.timedelta(days=8)
    monkeypatch.setattr(processor_mod, "now_utc", lambda: ahead)
    cli(config, "run", "--once")  # the first start, with the clock far ahead
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"), when=NOW)
    cli(config, "run", "--once")
    assert rows(config, "SELECT email, status FROM registrations") == [
        ("anna@a.example", "confirmed")]
    assert [e.rcpt_tos for e in smtp.envelopes] == [["anna@a.example"]]


def test_forget_leaves_the_persons_mail_to_a_colleague(make_config, mailbox, smtp):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    colleague = registration_mail("Anna Arndt", "anna@a.example", "Hallo Petra, kurz zum "
                                  "Projekt.", to="p.meier@isi-innovation.de")
    mailbox.append(colleague)
    cli(config, "run", "--once")
    assert len(mailbox.folder("Processed")) == 1 and len(mailbox.folder("INBOX")) == 1
    out = cli(config, "forget", "anna@a.example", "--yes")
    assert "1 mail deleted from INBOX and Processed" in out
    [left] = mailbox.folder("INBOX").values()
    assert b"Hallo Petra" in left["raw"], "not mailbot's mail: it stays"


def test_erase_of_50000_handled_mails_in_chunks(mailbox, make_config, dovecot):
    """50,000 UIDs in one STORE are "Too long argument" for Dovecot: in chunks they go."""
    config = load(make_config())
    maildir = dovecot.root / "mail" / mailbox.user / "Maildir" / "cur"
    mailbox.append(registration_mail("Not Handled", "nh@a.example"))  # makes the Maildir
    keys = set()
    for i in range(50_000):
        msgid = f"<old{i}@a.example>"
        keys.add(msgid)
        path = maildir / f"{1_600_000_000 + i}.M{i}P1.test:2,S"
        path.write_bytes(f"From: a{i}@a.example\r\nTo: {CONTACT}\r\nMessage-ID: {msgid}\r\n"
                         f"Date: {email.utils.formatdate(0)}\r\nSubject: x\r\n\r\nx\r\n".encode())
    for path in (maildir.parent, *maildir.parent.rglob("*")):
        shutil.chown(path, user="dovecot", group="dovecot")
    os.chmod(maildir, 0o700)
    inbox = ImapInbox(config.imap)
    try:
        assert inbox.erase(keys) == 50_000
    finally:
        inbox.close()
    assert _subjects(mailbox, "INBOX") == [b"Not Handled <nh@a.example>"]
