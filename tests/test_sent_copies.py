"""A copy of each sent reply in the IMAP Sent folder ([imap] save_sent), against Dovecot."""

from __future__ import annotations

import email

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main
from mailbot.mail.folder import InboxError
from mailbot.mail.imap import ImapInbox
from mailbot.service.sending import Sending
from mailbot.store import Store

PEOPLE = [("Anna Arndt", "anna@a.example"), ("Bernd Bauer", "bernd@b.example")]


def run(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


def ids(folder: dict) -> list[str]:
    return sorted(email.message_from_bytes(m["raw"])["Message-ID"] for m in folder.values())


def sent_ids(config) -> list[str]:
    return sorted(r[0] for r in rows(config, "SELECT message_id FROM outbox WHERE "
                                             "status = 'sent'"))


@pytest.fixture
def two_mails(mailbox):
    for name, address in PEOPLE:
        mailbox.append(registration_mail(name, address))


def test_each_reply_is_copied_to_sent_once_and_seen(make_config, mailbox, smtp, two_mails):
    config = make_config()

    assert run(config).exit_code == 0
    mailbox.append(registration_mail("Clara Çelik", "clara@c.example"))
    assert run(config).exit_code == 0

    sent = mailbox.folder("Sent")
    assert ids(sent) == sent_ids(config) and len(sent) == 3
    assert all(b"\\Seen" in m["flags"] for m in sent.values())
    assert rows(config, "SELECT DISTINCT sent_copy FROM outbox") == [("saved",)]


def test_the_folder_marked_sent_is_used(make_config, mailbox, smtp, two_mails):
    mailbox.client.create_folder("Gesendete Objekte")  # RFC 6154 \Sent (tests/servers.py)
    config = make_config()

    assert run(config).exit_code == 0

    assert ids(mailbox.folder("Gesendete Objekte")) == sent_ids(config)
    assert not mailbox.client.folder_exists("Sent")


def test_a_german_sent_folder_is_found_by_name(make_config, mailbox, smtp, two_mails):
    mailbox.client.create_folder("Gesendet")
    config = make_config()

    assert run(config).exit_code == 0

    assert len(mailbox.folder("Gesendet")) == 2
    assert not mailbox.client.folder_exists("Sent")


def test_no_copies_with_save_sent_false(make_config, mailbox, smtp, two_mails):
    config = make_config()
    config.write_text(config.read_text().replace('processed_folder = "Processed"\n',
                                                 'processed_folder = "Processed"\n'
                                                 'save_sent = false\n', 1))

    assert run(config).exit_code == 0

    assert len(smtp.envelopes) == 2
    assert not mailbox.client.folder_exists("Sent")


def test_a_crash_between_send_and_append_leaves_one_copy(make_config, mailbox, smtp,
                                                        two_mails, monkeypatch):
    config = make_config()
    with monkeypatch.context() as m:  # killed right after the replies went out
        m.setattr(Sending, "save_copies", lambda self, inbox: None)
        assert run(config).exit_code == 0
    assert not mailbox.client.folder_exists("Sent")

    assert run(config).exit_code == 0
    assert run(config).exit_code == 0

    assert ids(mailbox.folder("Sent")) == sent_ids(config)
    assert len(smtp.envelopes) == 2, "nothing sent twice"


def test_a_crash_after_the_append_leaves_one_copy(make_config, mailbox, smtp, two_mails,
                                                  monkeypatch):
    config = make_config()
    real = Store.mark_copy

    def crash_after_append(self, reply_id, state):
        if state == "saved":
            raise KeyboardInterrupt  # as if killed between APPEND and the database
        real(self, reply_id, state)

    with monkeypatch.context() as m:
        m.setattr(Store, "mark_copy", crash_after_append)
        run(config)
    assert len(mailbox.folder("Sent")) == 1
    assert rows(config, "SELECT sent_copy FROM outbox ORDER BY id") == [("saving",), (None,)]

    assert run(config).exit_code == 0

    assert ids(mailbox.folder("Sent")) == sent_ids(config), "one copy each"
    assert len(smtp.envelopes) == 2


def test_a_failing_append_neither_blocks_nor_repeats_a_reply(make_config, mailbox, smtp,
                                                             two_mails, monkeypatch):
    config = make_config()

    def refuse(self, raw, message_id, check):
        raise InboxError("IMAP: copy to Sent failed: [OVERQUOTA] Quota exceeded")

    with monkeypatch.context() as m:
        m.setattr(ImapInbox, "save_sent", refuse)
        result = run(config)
        assert result.exit_code == 0, result.output
        mailbox.append(registration_mail("Clara Çelik", "clara@c.example"))
        assert run(config).exit_code == 0
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == sorted(
        [a for _, a in PEOPLE] + ["clara@c.example"])

    assert run(config).exit_code == 0  # the quota is fixed

    assert len(smtp.envelopes) == 3
    assert ids(mailbox.folder("Sent")) == sent_ids(config)
