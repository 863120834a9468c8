"""Servers that keep every folder under ``INBOX.`` (Courier; Cyrus as Debian configures
it): the folders mailbot creates follow the server's NAMESPACE (RFC 2342), against a
Dovecot configured that way (``prefix = INBOX.``, ``separator = .``)."""

from __future__ import annotations

import email

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows
from imapclient import IMAPClient
from servers import start_dovecot

from mailbot.cli import main
from mailbot.mail.folder import ensure_folder, folder_name

PEOPLE = [("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example")]


@pytest.fixture(scope="module")
def dovecot():
    """Overrides the session's Dovecot for this module: folders under ``INBOX.``."""
    server = start_dovecot(prefix="INBOX.", separator=".")
    yield server
    server.stop()


def run(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def subjects(folder: dict) -> list[str]:
    return sorted(str(email.message_from_bytes(m["raw"])["Subject"]) for m in folder.values())


def test_register_move_to_processed_and_copy_to_sent_under_inbox(make_config, mailbox, smtp):
    for name, address in PEOPLE:
        mailbox.append(registration_mail(name, address))
    config = make_config()

    result = run(config, "run", "--once")

    assert result.exit_code == 0, result.output
    assert len(smtp.envelopes) == 2
    assert len(mailbox.folder("INBOX.Processed")) == 2
    assert mailbox.folder("INBOX") == {}
    sent = mailbox.folder("INBOX.Sent")
    assert len(sent) == 2 and all(b"\\Seen" in m["flags"] for m in sent.values())
    assert rows(config, "SELECT DISTINCT sent_copy FROM outbox") == [("saved",)]
    assert "State: working" in run(config, "status").output


def test_a_name_with_the_prefix_is_kept_and_nested_names_take_the_separator(
        make_config, mailbox, smtp):
    mailbox.append(registration_mail(*PEOPLE[0]))
    config = make_config()
    config.write_text(config.read_text().replace('processed_folder = "Processed"',
                                                 'processed_folder = "INBOX.Erledigt"'))

    assert run(config, "run", "--once").exit_code == 0

    assert len(mailbox.folder("INBOX.Erledigt")) == 1
    assert not mailbox.client.folder_exists("INBOX.INBOX.Erledigt")
    assert folder_name("Archiv/Mailbot", "INBOX.", ".") == "INBOX.Archiv.Mailbot"
    assert folder_name("INBOX", "INBOX.", ".") == "INBOX"
    assert folder_name("Processed", "", "/") == "Processed"


def test_check_names_the_folders_it_made(make_config, mailbox, smtp):
    config = make_config()

    result = run(config, "check")

    assert result.exit_code in (0, 1), result.output
    assert "'INBOX.Processed'" in result.output
    assert "copies in Sent: 'INBOX.Sent' takes them" in result.output
    assert mailbox.client.folder_exists("INBOX.Processed")
    assert mailbox.folder("INBOX.Sent") == {}  # the trial copy is gone


class LateClient(IMAPClient):
    """The mail program creates the folder between mailbot's look and its CREATE (a race
    no server shows on cue)."""

    def folder_exists(self, folder):
        if not getattr(self, "looked", False):
            self.looked = True
            self.create_folder(folder)  # as the other program would
            return False
        return super().folder_exists(folder)


def test_a_folder_that_already_exists_is_fine(dovecot, mailbox):
    client = LateClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(mailbox.user, dovecot.password)
    try:
        assert ensure_folder(client, "INBOX.Processed") is False
        assert client.folder_exists("INBOX.Processed")
    finally:
        client.logout()


def test_a_failing_sent_copy_shows_in_status_and_check(make_config, mailbox, smtp, dovecot):
    mailbox.append(registration_mail(*PEOPLE[0]))
    config = make_config()
    assert run(config, "run", "--once").exit_code == 0
    sent_dir = dovecot.root / "mail" / mailbox.user / "Maildir" / ".Sent"
    assert len(mailbox.folder("INBOX.Sent")) == 1 and sent_dir.is_dir()
    parts = [sent_dir / p for p in ("tmp", "new", "cur")]
    for part in parts:  # the folder takes no mail (a full quota, a broken disk)
        part.chmod(0o500)
    try:
        mailbox.append(registration_mail(*PEOPLE[1]))
        assert run(config, "run", "--once").exit_code == 0
        assert len(smtp.envelopes) == 2, "the reply itself goes out"

        status = run(config, "status").output
        assert "State: working, but the copies of replies in Sent FAIL" in status
        assert "no copy in the Sent folder since" in status
        check = run(config, "check")
        assert check.exit_code == 2
        assert "copy to Sent failed" in check.output
    finally:
        for part in parts:
            part.chmod(0o700)

    assert run(config, "run", "--once").exit_code == 0
    assert len(mailbox.folder("INBOX.Sent")) == 2
    assert "State: working\n" in run(config, "status").output
