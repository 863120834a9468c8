"""`forget` and `purge` leave nobody behind in the mailbox: what is left is read back
from Dovecot (inbox, Processed, Sent), decoded, attachments (the digest's CSV) included."""

from __future__ import annotations

import email
import email.policy
import logging
import sqlite3

from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows

from mailbot.cli import main

DIGEST = f'\n[digest]\nto = "{CONTACT}"\nat = "00:00"\n'


def cli(config, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def once(config) -> None:
    result = cli(config, "run", "--once")
    assert result.exit_code == 0, result.output


def text_of(raw: bytes) -> str:
    """The whole mail as a reader sees it: headers and every part decoded."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [str(v) for _, v in msg.items()]
    for part in msg.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True) or b""
            parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts)


def everywhere(mailbox) -> list[str]:
    return [text_of(m["raw"]) for name in ("INBOX", "Processed", "Sent")
            for m in mailbox.folder(name).values()]


def registered_by_a_colleague(mailbox, smtp, make_config):
    """Bernd registers himself and Anna; the digest (to the contact address) arrives in
    the inbox; every reply has its copy in Sent."""
    config = make_config(extra=DIGEST)
    mailbox.append(registration_mail(
        "Bernd Bauer", "bernd@b.example",
        "meine Kollegin Anna Arndt (anna@b.example) und ich melden uns an.").replace(
        b"Subject: Anmeldung Auftakttreffen", b"Subject: Anmeldung Bernd Bauer, Anna Arndt"))
    once(config)
    digests = [e for e in smtp.envelopes if e.rcpt_tos == [CONTACT]]
    assert digests, "the digest went out"
    for digest in digests:
        mailbox.append(digest.content)
    once(config)
    texts = everywhere(mailbox)
    assert sum("Anna" in t for t in texts) >= 4  # her mail, the note, the digest, its copy
    return config


def test_forget_leaves_her_nowhere_in_the_mailbox(mailbox, smtp, make_config):
    config = registered_by_a_colleague(mailbox, smtp, make_config)

    result = cli(config, "forget", "--yes", "anna@b.example")

    assert result.exit_code == 0, result.output
    left = everywhere(mailbox)
    assert not [t for t in left if "Anna" in t or "anna@b.example" in t]
    assert not rows(config, "SELECT subject FROM messages WHERE instr(subject, 'Anna') > 0")


def test_purge_now_leaves_no_digest_in_the_inbox(mailbox, smtp, make_config):
    config = registered_by_a_colleague(mailbox, smtp, make_config)

    result = cli(config, "purge", "--now", "--yes")

    assert result.exit_code == 0, result.output
    assert not [t for t in everywhere(mailbox) if "Anna" in t or "Bernd" in t]


def test_the_end_of_the_retention_period_deletes_the_mails_too(mailbox, smtp, make_config):
    config = registered_by_a_colleague(mailbox, smtp, make_config)
    config.write_text(config.read_text().replace("retain_days_after_event = 36500",
                                                 "retain_days_after_event = 30"))
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:  # as on the next day
        conn.execute("DELETE FROM state WHERE key = 'last_purge_check'")

    once(config)  # the 2021 event is long over: the service erases by itself

    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]
    assert not [t for t in everywhere(mailbox) if "Anna" in t or "Bernd" in t]


def test_keep_leaves_the_mails_at_the_end_of_the_retention_period(mailbox, smtp,
                                                                  make_config):
    config = registered_by_a_colleague(mailbox, smtp, make_config)
    config.write_text(config.read_text().replace(
        "retain_days_after_event = 36500", 'retain_days_after_event = 30\nmailbox = "keep"'))
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        conn.execute("DELETE FROM state WHERE key = 'last_purge_check'")

    once(config)

    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]
    assert len(mailbox.folder("Processed")) == 1


def test_the_service_log_names_no_address(mailbox, smtp, make_config, caplog):
    caplog.set_level(logging.INFO)
    config = make_config()
    mailbox.append(registration_mail(
        "Bernd Bauer", "bernd@b.example",
        "meine Kollegin Anna Arndt (anna@b.example) und ich melden uns an."))
    smtp.fail_codes.append("550 5.1.1 <bernd@b.example>: Recipient address rejected")

    once(config)

    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mailbot"))
    assert "reply 1 not sent" in ours  # the log is there: row ids and message keys
    assert "bernd@b.example" not in ours and "anna@b.example" not in ours
