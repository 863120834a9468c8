"""A stranger in someone's thread (issue 20, third round): a mail that waits for the address
of a person its writer named is completed only by its writer or a colleague of her own
organisation — not by whoever quotes its Message-ID (real Dovecot and aiosmtpd)."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import CONTACT, rows

from mailbot.cli import main

ANNA_ID = "<a1@stadt-a.example>"


def run(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


def mail(sender: str, name: str, body: str, msgid: str, extra: str = "") -> bytes:
    return (f"From: {name} <{sender}>\r\nTo: <{CONTACT}>\r\nSubject: Anmeldung Auftakttreffen\r\n"
            f"Date: Fri, 21 May 2021 09:00:00 +0200\r\nMessage-ID: {msgid}\r\n{extra}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Guten Tag,\r\n\r\n{body}\r\n\r\nViele Grüße\r\n{name}\r\n").encode()


def in_thread(sender: str, name: str, address: str, msgid: str) -> bytes:
    return mail(sender, name, f"bitte melden Sie ihn mit der Adresse {address} an.", msgid,
                f"In-Reply-To: {ANNA_ID}\r\nReferences: {ANNA_ID}\r\n")


def waiting(mailbox, config) -> None:
    mailbox.append(mail("anna@stadt-a.example", "Anna Arndt", "ich möchte meinen Kollegen "
                        "Bernd Bauer zum Auftakttreffen anmelden.", ANNA_ID))
    assert run(config).exit_code == 0
    assert rows(config, "SELECT waits_for FROM messages") == [("Bernd Bauer",)]


def test_a_stranger_in_her_thread_does_not_complete_her_waiting_registration(
        mailbox, smtp, make_config):
    config = make_config()
    waiting(mailbox, config)
    mailbox.append(in_thread("eve@evil.example", "Eve Evil", "bernd@evil.example",
                             "<e1@evil.example>"))

    result = run(config)

    assert result.exit_code == 0, result.output
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]
    assert smtp.envelopes == [], "nobody mailed on a stranger's word"
    assert rows(config, "SELECT resolved_at FROM messages WHERE message_id = ?",
                ANNA_ID) == [(None,)], "her mail still waits for a human"


def test_a_colleague_of_her_organisation_in_the_thread_completes_it(mailbox, smtp,
                                                                     make_config):
    config = make_config()
    waiting(mailbox, config)
    mailbox.append(in_thread("chris@stadt-a.example", "Chris Clasen",
                             "bernd.bauer@stadt-a.example", "<c1@stadt-a.example>"))

    result = run(config)

    assert result.exit_code == 0, result.output
    assert rows(config, "SELECT email, name FROM registrations") == [
        ("bernd.bauer@stadt-a.example", "Bernd Bauer")]
    assert rows(config, "SELECT resolved_at IS NOT NULL FROM messages WHERE message_id = ?",
                ANNA_ID) == [(1,)]
