"""Never lose a registration, never answer twice: interrupted runs and SMTP trouble,
against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from conftest import registration_mail
from servers import free_port

from mailbot import daemon, inbox
from mailbot.cli import main


def invoke(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


def db_rows(config, sql):
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        return conn.execute(sql).fetchall()


def fill(mailbox, n=3):
    for i in range(n):
        mailbox.append(registration_mail(f"Person {i}", f"p{i}@x.example"))


def test_crash_after_sending_before_moving_answers_nobody_twice(mailbox, smtp, make_config,
                                                                monkeypatch):
    config = make_config()
    fill(mailbox)

    def crash(self, refs):
        raise inbox.InboxError("connection lost")

    with monkeypatch.context() as m:
        m.setattr(inbox.ImapInbox, "done", crash)
        result = invoke(config)
    assert result.exit_code == 2
    assert len(smtp.envelopes) == 3
    assert len(mailbox.folder("INBOX")) == 3, "nothing moved yet"

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert "3 handled before" in result.output
    assert len(smtp.envelopes) == 3, "no second reply"
    assert mailbox.folder("INBOX") == {} and len(mailbox.folder("Processed")) == 3


def test_crash_after_recording_before_sending_sends_on_the_next_run(mailbox, smtp,
                                                                   make_config, monkeypatch):
    config = make_config()
    fill(mailbox)
    real_flush = daemon.Processor.flush
    calls = []

    def dying_flush(self, summary):
        calls.append(1)
        if len(calls) == 2:  # the first call sends leftovers; the second would send ours
            raise SystemExit("killed")
        return real_flush(self, summary)

    with monkeypatch.context() as m:
        m.setattr(daemon.Processor, "flush", dying_flush)
        invoke(config)
    assert smtp.envelopes == []
    assert db_rows(config, "SELECT count(*) FROM outbox WHERE status = 'queued'") == [(3,)]

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["p0@x.example", "p1@x.example",
                                                             "p2@x.example"]
    assert db_rows(config, "SELECT status, count(*) FROM outbox GROUP BY status") == [
        ("sent", 3)]
    assert mailbox.folder("INBOX") == {}


def test_smtp_down_keeps_replies_queued_and_sends_them_later(mailbox, smtp, make_config,
                                                            tmp_path):
    config = make_config()
    text = config.read_text()
    live_port = text.split("[smtp]")[1].split("port = ")[1].split("\n")[0]
    config.write_text(text.replace(f"port = {live_port}\nsecurity", f"port = {free_port()}\n"
                                   "security"))
    fill(mailbox, 2)

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert "could not be sent yet" in result.output
    assert db_rows(config, "SELECT count(*) FROM outbox WHERE status = 'queued'") == [(2,)]
    assert len(mailbox.folder("Processed")) == 2, "recorded mail is moved; the outbox has it"

    config.write_text(text)
    result = invoke(config)

    assert len(smtp.envelopes) == 2
    assert db_rows(config, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [(2,)]


@pytest.mark.parametrize("code, status", [("451 4.3.0 try again later", "queued"),
                                          ("550 5.1.1 mailbox unknown", "failed")])
def test_smtp_refusal_is_recorded(mailbox, smtp, make_config, code, status):
    config = make_config()
    fill(mailbox, 1)
    smtp.fail_codes.append(code)

    invoke(config)

    assert smtp.envelopes == []
    [(got, attempts, error)] = db_rows(config, "SELECT status, attempts, last_error FROM outbox")
    assert (got, attempts) == (status, 1)
    assert error.startswith(code[:3])

    invoke(config)  # a temporary refusal is retried, a permanent one is not
    assert len(smtp.envelopes) == (1 if status == "queued" else 0)
