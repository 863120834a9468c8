"""Attacks found in review (after issues 12–16), against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import email
import email.policy

import pytest
from click.testing import CliRunner
from conftest import MAILS, registration_mail, rows

from mailbot.cli import main

CONTACT = "n.collinet@isi-innovation.de"


def cli(config, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--config", str(config), *args], input=input)


def once(config) -> str:
    result = cli(config, "run", "--once")
    assert result.exit_code == 0, result.output
    return result.output


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def forged_dsn(victim: str) -> bytes:
    """A 'bounce' anyone can send: a robot sender, the victim as failed recipient, no
    Message-ID of ours quoted (it cannot be guessed)."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@evil.example>\r\n"
        f"To: {CONTACT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: Mon, 24 May 2021 10:00:00 +0200\r\nMessage-ID: <dsn-1@evil.example>\r\n"
        f"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        f"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"<{victim}>: user unknown\r\n"
        f"--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.evil.example\r\n\r\n"
        f"Final-Recipient: rfc822; {victim}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"--b1--\r\n").encode()


def test_a_forged_bounce_without_our_message_id_marks_nobody_undeliverable(
        mailbox, smtp, make_config):
    """Eve sends a DSN-shaped mail naming Anna (who registered and got her confirmation)
    as failed: Anna must not lose her reminders on Eve's word."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    once(config)
    mailbox.append(forged_dsn("anna@a.example"))
    once(config)

    assert rows(config, "SELECT undeliverable FROM registrations") == [(None,)]
    assert rows(config, "SELECT status FROM outbox") == [("sent",)]
    [left] = mailbox.folder("INBOX").values()  # a human looks at it: flagged, not answered
    assert b"\\Flagged" in left["flags"] and b"dsn-1@evil.example" in left["raw"]
    assert "ohne eine Message-ID unserer Antworten" in cli(config, "review").output


def test_a_bounce_quoting_our_reply_to_someone_else_marks_nobody_undeliverable(
        mailbox, smtp, make_config):
    """Eve quotes the Message-ID of her own confirmation but names Anna as failed: a
    Message-ID of ours proves only the reply it belongs to, not Anna's address."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Eve Mallory", "eve@evil.example"))
    once(config)
    [eves] = [parsed(e)["Message-ID"] for e in smtp.envelopes
              if e.rcpt_tos == ["eve@evil.example"]]
    mailbox.append(forged_dsn("anna@a.example").replace(
        b"--b1--", f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                   f"Message-ID: {eves}\r\n--b1--".encode()))
    once(config)

    assert rows(config, "SELECT undeliverable FROM registrations") == [(None,), (None,)]
    assert rows(config, "SELECT status FROM outbox") == [("sent",), ("sent",)]
    [left] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in left["flags"]


def test_a_url_in_the_senders_name_is_no_link_in_the_mail_to_a_stranger(
        mailbox, smtp, make_config):
    """Eve names herself like a phishing line; the mail to Karin (from the institute's
    address) must not turn it into a clickable link."""
    config = make_config()
    raw = (MAILS / "61_im_auftrag_von_fremde_adresse.eml").read_bytes().replace(
        b"From: Eve Mallory <eve@evil.example>",
        b"From: \"Konto gesperrt: https://evil.example/login\" <eve@evil.example>")
    mailbox.append(raw)
    once(config)

    for envelope in smtp.envelopes:
        html = parsed(envelope).get_body(("html",)).get_content()
        assert 'href="https://evil.example' not in html, envelope.rcpt_tos
        assert "evil.example/login" not in parsed(envelope).get_body(("plain",)).get_content()
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == [
        "eve@evil.example", "k.schulz@victim.example"]


def our_text(envelope) -> str:
    return parsed(envelope).get_body(("plain",)).get_content()


@pytest.mark.parametrize("style", ["outlook", "plain", "gt", "ticket"])
def test_a_quoted_confirmation_with_doubled_blank_lines_is_not_a_new_registration(
        mailbox, smtp, make_config, style):
    """Our confirmation quoted back (an HTML-to-text conversion doubles its blank lines; a
    ticket system puts it under "Ihre Nachricht:" with no robot header): its sentences
    ("Gerne bestätige ich Ihre Teilnahme", "Ich melde mich ab") are ours, not the sender's.
    Before the fix the ticket reply got a duplicate reply — a loop with the ticket system
    of up to five mails a day."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    once(config)
    [conf] = smtp.envelopes
    mid = parsed(conf)["Message-ID"]
    quoted = our_text(conf).replace("\r\n", "\n").replace("\n", "\r\n\r\n")
    if style == "outlook":
        body = (f"Danke!\r\n\r\n________________________________\r\nVon: Nathalie Collinet "
                f"<{CONTACT}>\r\nGesendet: Freitag, 21. Mai 2021 09:01\r\nAn: Anna Arndt\r\n"
                f"Betreff: Anmeldebestätigung\r\n\r\n{quoted}")
    elif style == "plain":
        body = f"Danke!\r\n\r\n{quoted}"
    elif style == "gt":
        body = "Danke!\r\n\r\n" + "".join(f"> {line}\r\n" for line in quoted.split("\r\n"))
    else:
        body = ("Vielen Dank für Ihre Nachricht. Ihr Anliegen wurde unter der Nummer 4711 "
                f"erfasst.\r\n\r\nIhre Nachricht:\r\n{quoted}")
    smtp.envelopes.clear()
    raw = (f"From: Anna Arndt <anna@a.example>\r\nTo: {CONTACT}\r\n"
           f"Subject: AW: Anmeldebestätigung\r\nDate: Fri, 21 May 2021 10:00:00 +0200\r\n"
           f"Message-ID: <re1@a.example>\r\nIn-Reply-To: {mid}\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()
    mailbox.append(raw)
    once(config)
    assert smtp.envelopes == []
    assert rows(config, "SELECT status FROM registrations") == [("confirmed",)]
    assert rows(config, "SELECT action FROM messages ORDER BY rowid")[1][0] in ("noop", "review")



def test_a_disk_full_during_the_backup_of_forget_leaves_no_broken_backup(
        mailbox, smtp, make_config):
    """The disk fills while `forget` writes its backup (a file size limit in the child):
    nothing is erased, one clear line (exit 2) — and no truncated file in backups/ that an
    organiser would restore from later ("restore it from the backup")."""
    import os
    import resource
    import signal
    import subprocess
    import sys

    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    once(config)
    limit = (config.parent / "mailbot.sqlite").stat().st_size // 3

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), "forget",
                           "--yes", "anna@a.example"], capture_output=True, text=True,
                          env=dict(os.environ), preexec_fn=small_disk, timeout=60)

    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert rows(config, "SELECT count(*) FROM registrations") == [(2,)]
    assert len(mailbox.folder("Processed")) == 2, "no mail deleted before the backup"
    backups = config.parent / "backups"
    assert not backups.exists() or list(backups.iterdir()) == []



def test_forget_and_purge_also_erase_our_copies_in_sent(mailbox, smtp, make_config):
    """Every reply promises deletion; with a copy of each reply in Sent (save_sent, or the
    provider's own copy at Microsoft 365 and Google) `forget` left the person's name and
    address in Sent, and `purge` left every reply there."""
    config = make_config()
    mailbox.client.create_folder("Sent")
    own = (f"From: Nathalie Collinet <{CONTACT}>\r\nTo: Anna Arndt <anna@a.example>\r\n"
           f"Subject: privat\r\nMessage-ID: <own-1@isi-innovation.de>\r\n\r\nHallo Anna\r\n"
           ).encode()
    mailbox.append(own, folder="Sent")  # the organiser's own mail stays
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    once(config)

    def sent_to() -> list[str]:
        return sorted(email.message_from_bytes(m["raw"])["To"]
                      for m in mailbox.folder("Sent").values())

    assert sent_to() == ["Anna Arndt <anna@a.example>", "Anna Arndt <anna@a.example>",
                         "Bernd Bauer <bernd@b.example>"]

    result = cli(config, "forget", "--yes", "anna@a.example")
    assert result.exit_code == 0, result.output
    assert sent_to() == ["Anna Arndt <anna@a.example>", "Bernd Bauer <bernd@b.example>"]
    [left] = [m for m in mailbox.folder("Sent").values() if b"own-1" in m["raw"]]

    result = cli(config, "purge", "--now", "--yes")
    assert result.exit_code == 0, result.output
    assert sent_to() == ["Anna Arndt <anna@a.example>"], "only the organiser's own mail"


def test_the_digest_to_our_own_address_stays_in_the_inbox(mailbox, smtp, make_config):
    """The README's set-up puts the contact address itself into [digest] to: the digest
    arrives in the inbox mailbot reads — and must stay there for the organiser, not be
    swept into Processed as 'eigene Adresse als Absender'."""
    config = make_config(extra=f'\n[digest]\nto = "{CONTACT}"\nat = "00:00"\n')
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    once(config)
    [digest] = [e for e in smtp.envelopes if e.rcpt_tos == [CONTACT]]
    mailbox.append(digest.content)  # delivered to the inbox
    sent = len(smtp.envelopes)
    once(config)
    once(config)  # left alone, also on the next round
    inbox = mailbox.folder("INBOX")
    assert [b"mailbot" in m["raw"][:2000] for m in inbox.values()] == [True]
    assert [b"\\Seen" in m["flags"] for m in inbox.values()] == [False]  # still new to her
    assert len(smtp.envelopes) == sent, "never answered"
    assert len(rows(config, "SELECT * FROM messages")) == 1, "only Anna's mail"



def test_sigterm_while_the_sent_mark_waits_for_a_locked_database(mailbox, smtp, make_config):
    """Another program holds the database (a backup tool, an sqlite3 shell) just as the
    server takes a reply; then systemd stops the service. It must end within 10 s (systemd
    kills it at 30) and the reply must not go out a second time afterwards."""
    import sqlite3
    import subprocess
    import threading

    from conftest import start_daemon, wait_for

    config = make_config()
    db = config.parent / "mailbot.sqlite"
    once(config)  # the database exists before anybody else opens it
    proc = start_daemon(config, mailbox.server.password)
    other = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
    locked = threading.Event()

    def lock(_envelope):
        if not locked.is_set():
            other.execute("BEGIN IMMEDIATE")
            locked.set()

    try:
        smtp.on_message = lock
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert locked.wait(30) and wait_for(lambda: len(smtp.envelopes) == 1)
        proc.send_signal(15)
        try:
            proc.communicate(timeout=10)
            stopped = True
        except subprocess.TimeoutExpired:
            stopped = False
            proc.kill()  # what systemd does at TimeoutStopSec
            proc.communicate()
    finally:
        smtp.on_message = None
        if locked.is_set():
            other.execute("ROLLBACK")
        other.close()
        if proc.poll() is None:
            proc.kill()
    side = db.with_name(db.name + ".sent")  # where the mark waits meanwhile
    mode = side.stat().st_mode & 0o777 if side.exists() else None
    once(config)
    assert (stopped, len(smtp.envelopes)) == (True, 1), "ended within 10 s; sent once"
    assert rows(config, "SELECT status FROM outbox") == [("sent",)] and not side.exists()
    assert mode == 0o600



@pytest.mark.parametrize("text", [
    "Anna Arndt (anna@a.example) kann leider nicht teilnehmen.",
    "bitte melden Sie Frau Anna Arndt (anna@a.example) vom Auftakttreffen ab, sie ist krank.",
    "im Auftrag von Frau Anna Arndt melde ich sie ab: anna@a.example",
])
def test_a_stranger_cannot_cancel_someone_else(mailbox, smtp, make_config, text):
    """Eve writes that Anna cannot come: Anna's place stays hers (and would otherwise go to
    the first on the waitlist) until a human has asked her. Before: the first wording
    cancelled Anna at once; the other two were read as *registering* her (subject
    "Anmeldung …"), with a duplicate to Anna and a 'you registered her' note to Eve."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    once(config)
    smtp.envelopes.clear()
    mailbox.append(registration_mail("Eve Mallory", "eve@evil.example", text))
    once(config)

    assert rows(config, "SELECT email, status FROM registrations") == [
        ("anna@a.example", "confirmed")]
    [(action, reason)] = rows(config, "SELECT action, reason FROM messages ORDER BY rowid")[1:]
    assert action == "review" and "eve@evil.example" in reason
    assert smtp.envelopes == []



def test_no_sentence_of_a_mail_reaches_the_log(mailbox, smtp, make_config, caplog):
    """The service logs one line per mail to the journal, which `forget` cannot clean:
    what people wrote (here: that a colleague is ill, with her address) must not be in it.
    The reason with its quote is in the database, where `forget` reaches it."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example",
                                     "ich melde mich an, trotz meiner Chemotherapie."))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example",
                                     "wird es Gebärdendolmetschung geben?"))
    caplog.set_level("INFO")
    once(config)
    assert "Chemotherapie" not in caplog.text and "Gebärdendolmetschung" not in caplog.text
    assert ": register (Anmeldung: ‚…‘)" in caplog.text  # what it did, and why
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("mailbot"))
    assert "anna@a.example" not in ours  # the mail's key, not the sender (issue 20.11)
    reasons = " ".join(r for (r,) in rows(config, "SELECT reason FROM messages"))
    assert "Chemotherapie" in reasons and "Gebärdendolmetschung" in reasons



@pytest.mark.parametrize("where", ["Database.enable_wal", "Table.add_column"])
def test_a_kill_during_the_very_first_start_does_not_block_every_later_start(
        mailbox, smtp, make_config, monkeypatch, where):
    """mailbot dies (SIGKILL, power) while it creates its database: the next start must
    work, not say 'an empty file … restore it from the backup' — there is no backup of a
    database that never held anything. (tests/test_service_under_stress.py's random kills hit this
    now and then under load: 'no such table: outbox'.) Killed after the schema is written
    (enable_wal) or while it is written (a migration step)."""
    import sqlite_utils.db

    class Killed(BaseException):
        pass

    def die(self, *args, **kwargs):
        raise Killed()

    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    with monkeypatch.context() as patch:
        kind, method = where.split(".")
        patch.setattr(getattr(sqlite_utils.db, kind), method, die)
        with pytest.raises(Killed):
            CliRunner().invoke(main, ["--config", str(config), "run", "--once"],
                               catch_exceptions=False)
    assert not list(config.parent.glob(".mailbot.sqlite.*")), "no half-made file left"
    result = cli(config, "run", "--once")
    assert result.exit_code == 0, result.output
    assert [e.rcpt_tos for e in smtp.envelopes] == [["anna@a.example"]]
