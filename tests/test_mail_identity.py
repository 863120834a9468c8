"""Which mail is which: one Message-ID with other content is another mail (a form mailer
that gives every mail the same ID); the same mail delivered again, with other transport
headers, is still the one handled — against the real Dovecot and aiosmtpd."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main
from mailbot.mail import inbox


def run(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


FORM_ID = "<formular-1@verband.example>"


def test_two_registrations_with_one_message_id_are_two_mails(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example", msgid=FORM_ID))
    assert run(config).exit_code == 0
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example", msgid=FORM_ID))

    result = run(config)

    assert result.exit_code == 0, result.output
    assert "handled before" not in result.output
    assert sorted(rows(config, "SELECT email, status FROM registrations")) == [
        ("anna@a.example", "confirmed"), ("bernd@b.example", "confirmed")]
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["anna@a.example",
                                                             "bernd@b.example"]
    assert rows(config, "SELECT count(*) FROM messages") == [(2,)]
    assert mailbox.folder("INBOX") == {} and len(mailbox.folder("Processed")) == 2


def delivered_again(raw: bytes) -> bytes:
    """The same mail as another server hands it on: new transport headers on top."""
    return (b"Received: from mx2.example by imap.example; Fri, 21 May 2021 09:05:00 +0200\r\n"
            b"Delivered-To: n.collinet@isi-innovation.de\r\nX-Spam-Score: 0.1\r\n"
            b"Return-Path: <anna@a.example>\r\n" + raw)


def test_the_same_mail_delivered_again_is_not_answered_again(mailbox, smtp, make_config):
    config = make_config()
    raw = registration_mail("Anna Arndt", "anna@a.example", msgid=FORM_ID)
    mailbox.append(raw)
    assert run(config).exit_code == 0
    mailbox.append(delivered_again(raw))

    result = run(config)

    assert result.exit_code == 0, result.output
    assert "1 handled before" in result.output
    assert len(smtp.envelopes) == 1, "no second reply"
    assert rows(config, "SELECT count(*) FROM messages") == [(1,)]
    assert mailbox.folder("INBOX") == {}


def test_a_crash_before_moving_two_mails_of_one_id_answers_each_once(mailbox, smtp,
                                                                    make_config, monkeypatch):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example", msgid=FORM_ID))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example", msgid=FORM_ID))

    def crash(self, refs):
        raise inbox.InboxError("connection lost")

    with monkeypatch.context() as m:
        m.setattr(inbox.ImapInbox, "done", crash)
        assert run(config).exit_code == 2
    assert len(smtp.envelopes) == 2

    result = run(config)

    assert result.exit_code == 0, result.output
    assert "2 handled before" in result.output
    assert len(smtp.envelopes) == 2, "no second reply"
    assert mailbox.folder("INBOX") == {} and len(mailbox.folder("Processed")) == 2


def test_a_row_from_before_fingerprints_still_matches_its_mail(mailbox, smtp, make_config):
    """Rows recorded before the fingerprint was kept have none: the mail is the one."""
    config = make_config()
    raw = registration_mail("Anna Arndt", "anna@a.example", msgid=FORM_ID)
    mailbox.append(raw)
    assert run(config).exit_code == 0
    import sqlite3
    conn = sqlite3.connect(config.parent / "mailbot.sqlite")
    conn.execute("UPDATE messages SET fingerprint = NULL")
    conn.commit()
    conn.close()
    mailbox.append(raw)

    result = run(config)

    assert "1 handled before" in result.output and len(smtp.envelopes) == 1


def test_the_fingerprint_ignores_transport_headers_and_line_ends():
    from mailbot.reading.parse import mail_fingerprint, parse_mail

    raw = registration_mail("Anna Arndt", "anna@a.example", msgid=FORM_ID)
    other = registration_mail("Anna Arndt", "anna@a.example", "ich komme mit zwei Kollegen.",
                              msgid=FORM_ID)
    assert parse_mail(delivered_again(raw)).fingerprint == parse_mail(raw).fingerprint
    assert mail_fingerprint(raw.replace(b"\r\n", b"\n")) == mail_fingerprint(raw)
    assert mail_fingerprint(raw) == parse_mail(raw).fingerprint
    assert mail_fingerprint(other) != mail_fingerprint(raw)


def test_a_mail_under_a_reused_message_id_is_decided_as_itself_from_the_desk(
        mailbox, smtp, make_config):
    """The second mail under a form mailer's one Message-ID, moved into mailbot/Anmelden,
    is the one approved — not taken for the first mail (handled already) and moved on."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example", msgid=FORM_ID))
    assert run(config).exit_code == 0
    mailbox.append(registration_mail(
        "Karin Otto", "k.otto@verein.example", "hiermit melde ich mich zum Auftakttreffen "
        "an. Mein Kollege Herr Brandt möchte auch teilnehmen.", msgid=FORM_ID))
    assert run(config).exit_code == 0
    assert rows(config, "SELECT status FROM registrations WHERE email = ?",
                "k.otto@verein.example") == [("held",)]
    client = mailbox.client
    client.select_folder("INBOX")
    [uid] = [u for u, d in client.fetch(client.search(), ["BODY.PEEK[]"]).items()
             if b"Brandt" in d[b"BODY[]"]]
    client.move([uid], "mailbot.Anmelden")
    client.unselect_folder()

    assert run(config).exit_code == 0

    assert rows(config, "SELECT status FROM registrations WHERE email = ?",
                "k.otto@verein.example") == [("confirmed",)]
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["anna@a.example",
                                                             "k.otto@verein.example"]
    assert rows(config, "SELECT count(*) FROM messages WHERE action = 'review' AND "
                        "resolved_at IS NULL") == [(0,)]
