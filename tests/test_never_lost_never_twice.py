"""Never lose a registration, never answer twice: interrupted runs and SMTP trouble,
against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows
from servers import CuttableProxy, free_port

from mailbot.cli import main
from mailbot.mail import inbox
from mailbot.service import loop as daemon
from mailbot.service import processor as service
from mailbot.service.sending import Sending


def invoke(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


# many people of one organisation at once: not the burst of forged senders the abuse limit
# holds for a human (tests/test_abuse_budgets.py), here they are just many replies
ONE_BIG_ORGANISATION = "\n[limits]\nmax_new_per_domain_per_hour = 100\n"


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
    real_flush = Sending.flush
    calls = []

    def dying_flush(self, summary, stop=None):
        calls.append(1)
        if len(calls) == 2:  # the first call sends leftovers; the second would send ours
            raise SystemExit("killed")
        return real_flush(self, summary, stop)

    with monkeypatch.context() as m:
        m.setattr(Sending, "flush", dying_flush)
        invoke(config)
    assert smtp.envelopes == []
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'queued'") == [(3,)]

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["p0@x.example", "p1@x.example",
                                                             "p2@x.example"]
    assert rows(config, "SELECT status, count(*) FROM outbox GROUP BY status") == [
        ("sent", 3)]
    assert mailbox.folder("INBOX") == {}


def test_smtp_down_keeps_replies_queued_and_sends_them_later(mailbox, smtp, make_config):
    config = make_config()
    text = config.read_text()
    live_port = text.split("[smtp]")[1].split("port = ")[1].split("\n")[0]
    config.write_text(text.replace(f"port = {live_port}\nsecurity", f"port = {free_port()}\n"
                                   "security"))
    fill(mailbox, 2)

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert "could not be sent yet" in result.output
    status = CliRunner().invoke(main, ["--config", str(config), "status"]).output
    assert "Outbox: 2 queued, 0 sent, 0 failed" in status
    assert "Last error: " in status and "connection refused" in status
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'queued'") == [(2,)]
    assert len(mailbox.folder("Processed")) == 2, "recorded mail is moved; the outbox has it"

    config.write_text(text)
    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert len(smtp.envelopes) == 2
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [(2,)]


def time_passes(config):
    """The retry time of every queued reply has come (instead of waiting minutes)."""
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        conn.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00+00:00' "
                     "WHERE status = 'queued'")


def test_temporary_refusals_are_retried_with_backoff_and_sent_once(mailbox, smtp, make_config):
    config = make_config()
    fill(mailbox, 1)
    smtp.fail_codes += ["451 4.3.0 try again later", "451 4.3.0 still busy"]

    invoke(config)
    [(status, attempts, error, due)] = rows(
        config, "SELECT status, attempts, last_error, next_attempt_at FROM outbox")
    assert (status, attempts) == ("queued", 1) and error.startswith("451")
    assert due > rows(config, "SELECT created_at FROM outbox")[0][0], "retry later"

    invoke(config)  # not yet due: nothing happens
    assert rows(config, "SELECT attempts FROM outbox") == [(1,)]

    time_passes(config)
    invoke(config)
    assert rows(config, "SELECT status, attempts FROM outbox") == [("queued", 2)]
    time_passes(config)
    invoke(config)

    assert len(smtp.envelopes) == 1
    assert rows(config, "SELECT status, attempts, last_error FROM outbox") == [
        ("sent", 3, None)]


def test_permanent_refusal_fails_with_the_servers_answer(mailbox, smtp, make_config):
    config = make_config()
    fill(mailbox, 1)
    smtp.fail_codes.append("550 5.1.1 mailbox unknown")

    invoke(config)
    time_passes(config)
    invoke(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT status, attempts, last_error FROM outbox") == [
        ("failed", 1, "550 5.1.1 mailbox unknown")]
    status = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert status.exit_code == 0
    assert "Outbox: 0 queued, 0 sent, 1 failed" in status.output
    assert ("  failed: confirmation to p0@x.example: 550 5.1.1 mailbox unknown"
            in status.output.splitlines())


def test_crash_between_smtp_ok_and_commit_resends_rather_than_loses(mailbox, smtp,
                                                                    make_config, monkeypatch):
    """The one window SMTP leaves open: the server said 250, the database did not hear it.
    The row stays 'sending' and is sent again on the next start (a duplicate, not a loss)."""
    from mailbot.store import Store

    config = make_config()
    fill(mailbox, 1)
    with monkeypatch.context() as m:
        m.setattr(Store, "mark_sent", lambda *a: (_ for _ in ()).throw(SystemExit("killed")))
        invoke(config)
    assert len(smtp.envelopes) == 1
    assert rows(config, "SELECT status FROM outbox") == [("sending",)]

    invoke(config)

    assert len(smtp.envelopes) == 2
    assert rows(config, "SELECT status FROM outbox") == [("sent",)]


def test_a_refused_sender_keeps_every_reply_queued(mailbox, smtp, make_config):
    """530 at MAIL FROM (the relay wants a login) is about us, not the recipients: no reply
    may be marked failed for it."""
    config = make_config()
    fill(mailbox, 3)
    smtp.mail_code = "530 5.7.0 Authentication required"

    invoke(config)

    assert rows(config, "SELECT DISTINCT status FROM outbox") == [("queued",)]
    assert "530 5.7.0" in CliRunner().invoke(main, ["--config", str(config), "status"]).output
    smtp.mail_code = None
    time_passes(config)
    invoke(config)
    assert len(smtp.envelopes) == 3
    assert rows(config, "SELECT DISTINCT status FROM outbox") == [("sent",)]


def test_raising_the_capacity_confirms_the_waitlist_first(mailbox, smtp, make_config):
    config = make_config(capacity=1)
    fill(mailbox, 3)
    invoke(config)
    assert rows(config, "SELECT status, count(*) FROM registrations GROUP BY status") == [
        ("confirmed", 1), ("waitlisted", 2)]
    config.write_text(config.read_text().replace("capacity = 1", "capacity = 2"))
    mailbox.append(registration_mail("Late Comer", "late@x.example"))

    invoke(config)

    assert rows(config, "SELECT email, status FROM registrations ORDER BY id") == [
        ("p0@x.example", "confirmed"), ("p1@x.example", "confirmed"),
        ("p2@x.example", "waitlisted"), ("late@x.example", "waitlisted")]


def smtp_options(config, options, port=None):
    """Add lines to [smtp] (and point it at another port)."""
    text = config.read_text().replace("[smtp]\n", f"[smtp]\n{options}\n")
    if port is not None:
        live = text.split("[smtp]")[1].split("port = ")[1].split("\n")[0]
        text = text.replace(f"port = {live}\nsecurity", f"port = {port}\nsecurity")
    config.write_text(text)


def test_many_replies_go_over_several_connections_each_once(mailbox, smtp, make_config):
    config = make_config(extra=ONE_BIG_ORGANISATION)
    smtp_options(config, "connections = 3")
    fill(mailbox, 45)

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == sorted(
        f"p{i}@x.example" for i in range(45)), "each reply exactly once"
    assert len(smtp.peers) == len(smtp.connected) == 3, "45 replies: three connections"
    assert rows(config, "SELECT DISTINCT status FROM outbox") == [("sent",)]


def test_a_single_reply_takes_one_connection(mailbox, smtp, make_config):
    config = make_config()
    smtp_options(config, "connections = 3")
    fill(mailbox, 1)
    invoke(config)
    assert len(smtp.envelopes) == 1 and len(smtp.connected) == 1, "no idle connection"


def test_connections_cut_during_parallel_sending_lose_nothing(mailbox, smtp, smtp_server,
                                                             make_config):
    """Both connections die mid-batch (a NAT timeout, a server restart): what was not
    confirmed stays queued and goes out on the next run. Only a reply whose 250 was lost
    on the way may arrive twice (the SMTP window, one per connection at most)."""
    proxy = CuttableProxy(smtp_server[0].port)
    config = make_config(extra=ONE_BIG_ORGANISATION)
    smtp_options(config, "connections = 2", port=proxy.port)
    fill(mailbox, 30)
    mails = []

    def cut_at_the_tenth():
        mails.append(1)
        if len(mails) == 10:
            proxy.cut()

    smtp.on_mail = cut_at_the_tenth
    try:
        result = invoke(config)
        assert result.exit_code == 0, result.output
        assert "could not be sent yet" in result.output
        assert len(mailbox.folder("Processed")) == 30, "recorded, so moved"
        smtp.on_mail = None
        time_passes(config)
        result = invoke(config)
    finally:
        smtp.on_mail = None
        proxy.close()

    assert result.exit_code == 0, result.output
    recipients = [e.rcpt_tos[0] for e in smtp.envelopes]
    assert set(recipients) == {f"p{i}@x.example" for i in range(30)}, "nobody lost"
    assert len(recipients) - 30 <= 2
    assert rows(config, "SELECT DISTINCT status FROM outbox") == [("sent",)]



def test_an_outbox_row_with_a_smuggled_recipient_is_refused_not_sent(mailbox, smtp,
                                                                      make_config):
    """Defence in depth: the transport writes SMTP commands itself, so an address that
    would add a command (edited into the database by hand) is refused before sending."""
    config = make_config()
    fill(mailbox, 1)
    invoke(config)  # creates the database
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        conn.execute("INSERT INTO outbox (recipient, kind, status, attempts, created_at, body) "
                     "VALUES (?, 'confirmation', 'queued', 0, '2021-05-21T08:00:00+00:00', ?)",
                     ["a@b.example>\r\nRCPT TO:<evil@x.example", b"Subject: x\r\n\r\nx\r\n"])
    smtp.envelopes.clear()

    invoke(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT status, last_error FROM outbox WHERE recipient LIKE 'a@%'"
                   ) == [("failed", "553 not a plain e-mail address")]


def test_a_crash_inside_a_batch_loses_nothing_and_repeats_nothing(mailbox, smtp, make_config,
                                                                  monkeypatch):
    """The batch is committed at once: killed after the first mail was recorded but before
    the commit, nothing of it is stored, sent or moved — the next run reads it again."""
    config = make_config()
    fill(mailbox, 3)
    real_handle = service.Processor.handle
    handled = []

    def dying_handle(self, mail, summary):
        handled.append(mail.ref)
        if len(handled) == 2:
            raise SystemExit("killed")
        return real_handle(self, mail, summary)

    with monkeypatch.context() as m:
        m.setattr(service.Processor, "handle", dying_handle)
        invoke(config)
    assert rows(config, "SELECT count(*) FROM messages") == [(0,)], "rolled back"
    assert smtp.envelopes == [] and len(mailbox.folder("INBOX")) == 3

    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == [f"p{i}@x.example"
                                                             for i in range(3)]
    assert rows(config, "SELECT count(*) FROM registrations") == [(3,)]


def test_one_persons_replies_keep_their_order_over_several_connections(mailbox, smtp,
                                                                       make_config):
    """A confirmation and a cancellation one after the other in the outbox would go out
    side by side on two connections; they must arrive in their order."""
    config = make_config(extra=ONE_BIG_ORGANISATION)
    fill(mailbox, 23)
    mailbox.append(registration_mail("Late Person", "late@x.example"))
    mailbox.append(registration_mail("Late Person", "late@x.example",
                                     "ich muss leider wieder absagen."))
    smtp.slow["late@x.example"] = 0.5  # the first of the two would arrive last

    invoke(config)

    to_late = [m["Subject"].split(":")[0] for m in smtp.messages()
               if m["To"].addresses[0].addr_spec == "late@x.example"]
    assert to_late == ["Anmeldebestätigung", "Abmeldung bestätigt"]
    assert len(smtp.peers) == 2, "25 replies went over two connections"


def test_a_reply_too_big_for_the_server_fails_alone(mailbox, smtp, make_config):
    """552 to MAIL FROM with a SIZE: this reply is too big — not a problem with our sender
    that would hold back every other reply."""
    config = make_config()
    fill(mailbox, 3)
    mails = []

    def second_is_too_big():
        mails.append(1)
        smtp.mail_code = "552 5.3.4 Message size exceeds fixed limit" if len(mails) == 2 else None

    smtp.on_mail = second_is_too_big
    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert rows(config, "SELECT recipient, status, last_error FROM outbox ORDER BY id") == [
        ("p0@x.example", "sent", None),
        ("p1@x.example", "failed", "552 5.3.4 Message size exceeds fixed limit"),
        ("p2@x.example", "sent", None)]


def test_a_slow_batch_commits_in_between(mailbox, smtp, make_config, monkeypatch):
    """Organisers' commands wait for the batch's transaction; one that takes long (big
    mails) commits every HOLD seconds, and each part is still recorded whole."""
    from contextlib import contextmanager

    from mailbot.store import Store

    config = make_config()
    fill(mailbox, 3)
    real_immediate = Store.immediate
    opened = []

    @contextmanager
    def counting(self):
        opened.append(not self._immediate)
        with real_immediate(self):
            yield

    monkeypatch.setattr(Store, "immediate", counting)
    monkeypatch.setattr(daemon, "HOLD", 0.0)  # every mail takes "too long"
    result = invoke(config)

    assert result.exit_code == 0, result.output
    assert opened.count(True) == 3, "one transaction per mail instead of one per batch"
    assert len(smtp.envelopes) == 3 and len(mailbox.folder("Processed")) == 3
    assert rows(config, "SELECT count(*) FROM registrations") == [(3,)]


def test_a_failed_commit_leaves_no_transaction_open(tmp_path):
    """If COMMIT itself fails (a full disk, an I/O error), everything rolls back: the next
    transaction must not silently become part of a dead one."""
    from mailbot.store import Store

    store = Store(tmp_path / "x.sqlite")
    store.db.execute("PRAGMA foreign_keys = ON")
    store.db.execute("CREATE TEMP TABLE p (id INTEGER PRIMARY KEY)")
    store.db.execute("CREATE TEMP TABLE c (pid INTEGER REFERENCES p(id) "
                     "DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError):
        with store.immediate():
            store.db.execute("INSERT INTO c VALUES (1)")  # fails only at COMMIT
    assert not store.db.conn.in_transaction
    with store.immediate():
        store.set_state("after", "committed", service.now_utc())
    assert Store(tmp_path / "x.sqlite").get_state("after")[0] == "committed"
    store.close()
