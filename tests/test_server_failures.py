"""A bad day in production (issue 13): dropped IDLE sessions, slow and stalling SMTP
servers, signals, a database deleted or locked under the running service, our own SMTP
misconfiguration, mail deleted between two fetches, inboxes full of mail that is not ours.
Real Dovecot and aiosmtpd; small fakes only for what they will not do on cue (a stalling
server, a cut connection, systemd's watchdog, a database locked by another program)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows, start_daemon, stop, wait_for, with_port
from servers import CuttableProxy, RecordingHandler, free_port

from mailbot import config as config_mod
from mailbot.cli import main
from mailbot.core.models import Summary
from mailbot.mail.inbox import open_inbox
from mailbot.mail.leftalone import LeftAlone
from mailbot.mail.smtp import open_transport
from mailbot.replies.report import describe
from mailbot.service.loop import run_round
from mailbot.service.processor import Processor
from mailbot.store import Store


def invoke(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def fill(mailbox, n=2, prefix="p"):
    for i in range(n):
        mailbox.append(registration_mail(f"Person {i}", f"{prefix}{i}@x.example"))


def foreign_mail(i: int) -> bytes:
    return (f"From: Shop <news{i}@shop.example>\r\nTo: info@isi-innovation.de\r\n"
            f"Subject: Angebot {i}\r\nMessage-ID: <f{i}@shop.example>\r\n\r\n"
            f"Nur heute.\r\n").encode()


class Systemd:
    """systemd's side of sd_notify: a datagram socket that records what it hears; as a
    watchdog (``watchdog`` seconds) it kills the process when a ping is overdue."""

    def __init__(self, watchdog: float | None = None):
        self.folder = tempfile.mkdtemp()
        self.path = os.path.join(self.folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.heard: list[tuple[float, str]] = []
        self.watchdog = watchdog
        self.proc: subprocess.Popen | None = None
        self.kills = 0
        self.closed = False
        threading.Thread(target=self._listen, daemon=True).start()

    @property
    def env(self) -> dict:
        env = {"NOTIFY_SOCKET": self.path}
        if self.watchdog:
            env["WATCHDOG_USEC"] = str(int(self.watchdog * 1e6))
        return env

    def _listen(self) -> None:
        last = time.monotonic()
        while not self.closed:
            try:
                data = self.sock.recv(4096).decode()
                for item in data.split("\n"):
                    self.heard.append((time.monotonic(), item))
                if "WATCHDOG=1" in data or "READY=1" in data:
                    last = time.monotonic()
            except (TimeoutError, OSError):
                pass
            proc = self.proc
            if (self.watchdog and proc is not None and proc.poll() is None
                    and time.monotonic() - last > self.watchdog):
                proc.send_signal(signal.SIGABRT)  # as systemd's WatchdogSignal
                self.kills += 1
                last = time.monotonic()

    def count(self, field: str, since: float = 0.0) -> int:
        return sum(1 for at, item in list(self.heard) if item == field and at >= since)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SlowHandler(RecordingHandler):
    """An SMTP server that takes ``delay`` seconds for each answer (EHLO, MAIL, RCPT, the
    end of DATA) — a slow or overloaded server at the other end; ``data_delay`` instead
    for the end of DATA, when set."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self.data_delay: float | None = None
        self.data_started = threading.Event()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.data_started.set()
        await asyncio.sleep(self.delay if self.data_delay is None else self.data_delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp():
    """Start a SlowHandler server: ``start(delay)`` → (handler, port)."""
    from aiosmtpd.controller import Controller

    controllers = []

    def start(delay: float):
        handler = SlowHandler(delay)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append(controller)
        return handler, controller.port

    yield start
    for controller in controllers:
        controller.stop()


def with_smtp_port(config: Path, port: int) -> Path:
    config.write_text(with_port(config.read_text(), "smtp", port))
    return config


# -- finding 3: a dropped IDLE session ---------------------------------------------------

def test_a_dropped_idle_session_is_noticed_at_once_without_a_busy_loop(mailbox, smtp,
                                                                        make_config):
    proxy = CuttableProxy(mailbox.server.port)
    config = make_config()
    config.write_text(with_port(config.read_text(), "imap", proxy.port))
    config.write_text(config.read_text().replace("poll_interval = 0.5", "poll_interval = 300"))
    systemd = Systemd(watchdog=2.0)  # pings at most every 0.5 s
    proc = start_daemon(config, mailbox.server.password, env=systemd.env)
    try:
        assert wait_for(lambda: systemd.count("READY=1") and proxy.accepted == 1)
        assert wait_for(lambda: any(i.startswith("STATUS=last poll") for _, i in systemd.heard))
        time.sleep(1.5)  # in IDLE now
        proxy.cut()
        cut_at, cpu_before = time.monotonic(), cpu_seconds(proc.pid)
        assert wait_for(lambda: proxy.accepted == 2, timeout=20), "reconnected with backoff"
        time.sleep(4)
        cpu = cpu_seconds(proc.pid) - cpu_before
        window = time.monotonic() - cut_at
        pings = systemd.count("WATCHDOG=1", since=cut_at)

        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        answered = wait_for(lambda: len(smtp.envelopes) == 1, timeout=30)
    finally:
        err = stop(proc)
        proxy.close()
        systemd.close()
    assert answered, "new mail answered without waiting for the poll interval (300 s)"
    assert cpu < 0.1 * window, f"{cpu:.2f} s CPU in {window:.1f} s: a busy loop"
    assert pings <= window / 0.5 + 2, f"{pings} watchdog pings in {window:.1f} s"
    assert "trying again with backoff" in err and "connected again" in err
    assert proc.returncode == 0, err


def test_mail_that_came_just_before_idle_ends_the_wait_at_once(mailbox, make_config):
    config = config_mod.load(make_config())
    inbox = open_inbox(config.imap, None, 10, 1_000_000)
    try:
        assert [b for b in inbox.batches() if b] == []
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        inbox.client.noop()  # its answer carries the EXISTS: IDLE will not repeat it
        done = threading.Event()
        stop_flag = threading.Event()
        thread = threading.Thread(target=lambda: (inbox.wait(120, stop_flag, lambda: None),
                                                  done.set()), daemon=True)
        thread.start()
        woke = done.wait(20)
        stop_flag.set()
        thread.join(10)
    finally:
        inbox.close()
    assert woke, "the new mail ended the wait instead of the 120 s timeout"


# -- finding 4: slow SMTP under a watchdog, SIGTERM while sending --------------------------

def test_a_slow_smtp_server_under_the_watchdog_gets_one_copy(mailbox, slow_smtp, make_config):
    # 4 answers of 1.6 s each make one reply longer than WatchdogSec (6 s); each answer
    # stays well below the per-command timeout (0.4 × WatchdogSec = 2.4 s)
    handler, port = slow_smtp(1.6)
    config = with_smtp_port(make_config(), port)
    systemd = Systemd(watchdog=6.0)
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    proc = start_daemon(config, mailbox.server.password, env=systemd.env)
    systemd.proc = proc
    try:
        assert wait_for(lambda: len(handler.envelopes) == 1, timeout=60)
        assert wait_for(lambda: rows(config, "SELECT status FROM outbox") == [("sent",)])
        time.sleep(2)
    finally:
        err = stop(proc)
        systemd.close()
    assert systemd.kills == 0, err
    assert len(handler.envelopes) == 1
    assert rows(config, "SELECT attempts FROM outbox") == [(1,)]


def test_sigterm_while_sending_ends_within_10_seconds_and_starts_nothing(mailbox, slow_smtp,
                                                                          make_config):
    handler, port = slow_smtp(0)
    config = with_smtp_port(make_config(), port)
    fill(mailbox, 2)
    proc = start_daemon(config, mailbox.server.password)
    try:
        handler.data_delay = 50  # a server that stalls in the middle of the first reply
        assert handler.data_started.wait(30), proc.stderr.read() if proc.poll() else ""
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 10
    assert len(handler.peers) == 1 and len(handler.envelopes) == 0
    assert sorted(rows(config, "SELECT status, attempts FROM outbox")) == [
        ("queued", 0), ("queued", 1)], "abandoned one counted, the next never started"


def test_a_reply_that_ended_its_process_counts_as_an_attempt(mailbox, smtp, make_config):
    config = make_config()
    fill(mailbox, 1)
    assert invoke(config, "run", "--once").exit_code == 0
    conn = sqlite3.connect(config.parent / "mailbot.sqlite")
    with conn:  # as a process killed inside the SMTP transaction leaves it, 19 times
        conn.execute("UPDATE outbox SET status = 'sending', attempts = 19, sent_at = NULL")
    conn.close()
    smtp.envelopes.clear()

    result = invoke(config, "run", "--once")

    assert result.exit_code == 0, result.output
    assert smtp.envelopes == [], "the 20th attempt is not made: given up"
    [(status, error)] = rows(config, "SELECT status, last_error FROM outbox")
    assert status == "failed" and "interrupted" in error and "given up after 20" in error


# -- finding 9: SIGHUP ---------------------------------------------------------------------

def test_sighup_reads_the_configuration_again_and_goes_on(mailbox, smtp, make_config):
    config = make_config()
    good = config.read_text()
    systemd = Systemd()
    proc = start_daemon(config, mailbox.server.password, env=systemd.env)
    try:
        assert wait_for(lambda: systemd.count("READY=1") == 1)
        config.write_text(good + "\n[bogus]\nkey = 1\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: systemd.count("READY=1") == 2), "old configuration kept"
        config.write_text(good)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: systemd.count("READY=1") == 3), "reloaded, ready again"
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 1), "still answering"
        assert proc.poll() is None
    finally:
        err = stop(proc)
        systemd.close()
    assert proc.returncode == 0, err
    assert systemd.count("RELOADING=1") == 2
    assert "SIGHUP received" in err and "configuration read again" in err
    assert "bogus" in err and "going on with the configuration as it was" in err
    assert "Traceback" not in err


def test_sighup_while_sending_lets_the_reply_finish_and_sends_it_once(mailbox, slow_smtp,
                                                                     make_config):
    handler, port = slow_smtp(0)
    config = with_smtp_port(make_config(), port)
    handler.data_delay = 2  # the reply in hand is on its way when the signal comes
    fill(mailbox, 1)
    proc = start_daemon(config, mailbox.server.password)
    try:
        assert handler.data_started.wait(30)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: rows(config, "SELECT status FROM outbox") == [("sent",)])
        handler.data_delay = 0
        mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
        assert wait_for(lambda: len(handler.envelopes) == 2), "going on after the reload"
        time.sleep(1)
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == ["bernd@b.example",
                                                                 "p0@x.example"]


# -- finding 5: a mail deleted between the size fetch and the body fetch ---------------------

def test_a_mail_deleted_between_the_two_fetches_is_skipped(mailbox, smtp, make_config,
                                                            monkeypatch, caplog):
    from imapclient import IMAPClient

    config = make_config()
    fill(mailbox, 3)
    real_fetch = IMAPClient.fetch
    gone = []

    def fetch(self, messages, data, *args, **kwargs):
        result = real_fetch(self, messages, data, *args, **kwargs)
        if "RFC822.SIZE" in data and not gone:  # another client deletes one now
            mailbox.client.select_folder("INBOX")
            uid = sorted(mailbox.client.search())[1]
            mailbox.client.delete_messages([uid])
            mailbox.client.expunge()
            mailbox.client.unselect_folder()
            gone.append(uid)
        return result

    monkeypatch.setattr(IMAPClient, "fetch", fetch)
    caplog.set_level("INFO")
    result = invoke(config, "run", "--once")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 mails read: 2 registrations")
    assert len(smtp.envelopes) == 2
    assert f"mail UID {gone[0]} is gone" in caplog.text


# -- finding 7: the database deleted while the service runs --------------------------------

def test_a_database_deleted_under_the_service_stops_it_and_nothing_is_moved(mailbox, smtp,
                                                                             make_config):
    config = make_config()
    db = config.parent / "mailbot.sqlite"
    proc = start_daemon(config, mailbox.server.password)
    try:
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 1)
        assert wait_for(lambda: len(mailbox.folder("Processed")) == 1), "answered and moved"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        fill(mailbox, 3)
        proc.wait(timeout=30)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mailbot: database ") and "was deleted" in last
    assert "Traceback" not in err
    assert len(smtp.envelopes) == 1, "nothing answered into a deleted database"
    assert len(mailbox.folder("INBOX")) == 3, "nothing moved"


@pytest.mark.parametrize("content, words", [
    (b"", "is an empty file (0 bytes)"),
    (b"this is my shopping list\n" * 100, "damaged or not a database"),
    (None, "a SQLite file of another program"),
])
def test_an_empty_or_foreign_database_file_is_refused(mailbox, smtp, make_config, content,
                                                      words):
    config = make_config()
    db = config.parent / "mailbot.sqlite"
    if content is None:
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE contacts (name TEXT)")
        conn.commit()
        conn.close()
    else:
        db.write_bytes(content)
    fill(mailbox, 1)
    for command in (["run", "--once"], ["status"], ["list"]):
        result = invoke(config, *command)
        assert result.exit_code == 2, (command, result.output)
        assert result.output.count("\n") == 1 and words in result.output, result.output
    check = invoke(config, "check")
    assert f"✗ database {db}" in check.output and words in check.output
    assert smtp.envelopes == [] and len(mailbox.folder("INBOX")) == 1
    if content is not None:
        assert db.read_bytes() == content, "left as it was"


# -- finding 8: the database locked while replies go out -----------------------------------

def test_a_locked_database_while_sending_delays_the_sent_mark_but_sends_once(
        mailbox, smtp, make_config, monkeypatch, caplog):
    config = make_config()
    fill(mailbox, 2)
    real_open = Store._open

    def quick(self, memory):  # busy_timeout of 0.1 s instead of 10 s: a short test
        real_open(self, memory)
        self.db.execute("PRAGMA busy_timeout = 100")

    monkeypatch.setattr(Store, "_open", quick)
    Store(config.parent / "mailbot.sqlite").close()
    other = sqlite3.connect(config.parent / "mailbot.sqlite", check_same_thread=False,
                            isolation_level=None)
    held = []

    def lock(_envelope):  # another program takes the database as the first reply arrives
        if not held:
            other.execute("BEGIN IMMEDIATE")
            held.append(threading.Timer(2.5, lambda: other.execute("COMMIT")))
            held[0].start()

    smtp.on_message = lock
    caplog.set_level("INFO")
    first = invoke(config, "run", "--once")
    smtp.on_message = None
    second = invoke(config, "run", "--once")
    other.close()

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert len(smtp.envelopes) == 2, "each reply once"
    assert rows(config, "SELECT status, count(*) FROM outbox GROUP BY status") == [("sent", 2)]
    assert "was sent but database" in caplog.text and "is locked" in caplog.text


def test_a_kept_sent_mark_marks_only_the_reply_it_names(mailbox, smtp, make_config):
    """The side file `<database>.sent` (replies the server took while the database was
    locked, then a stop or a kill) is applied before anything is sent: its reply is not
    sent again; a line whose recipient is not the row's (an id used again) marks nothing."""
    from mailbot.mail.sentfile import recipient_hash

    config = make_config()
    fill(mailbox, 2)
    smtp.mail_code = "451 4.3.0 try later"  # both replies stay queued
    assert invoke(config, "run", "--once").exit_code == 0
    smtp.mail_code = None
    assert smtp.envelopes == []
    (first, p0), (second, _) = rows(config, "SELECT id, recipient FROM outbox ORDER BY id")
    side = config.parent / "mailbot.sqlite.sent"
    side.write_text(f"{first} confirmation {recipient_hash(p0)} 2026-12-01T10:00:00+00:00\n"
                    f"{second} confirmation {recipient_hash(p0)} 2026-12-01T10:00:00+00:00\n"
                    f"{second} confirmation {recipient_hash('p1@x.example')} 2026-12")
    assert invoke(config, "run", "--once").exit_code == 0
    assert [e.rcpt_tos for e in smtp.envelopes] == [["p1@x.example"]]
    assert rows(config, "SELECT status FROM outbox") == [("sent",), ("sent",)]
    assert not side.exists()


# -- finding 10: our own SMTP misconfiguration ---------------------------------------------

def test_530_at_mail_from_keeps_every_reply_until_it_is_fixed(mailbox, smtp, make_config):
    config = make_config()
    fill(mailbox, 2)
    smtp.mail_code = "530 5.7.0 Authentication required"
    for _ in range(30):
        result = invoke(config, "run", "--once")
        assert result.exit_code == 0, result.output
    assert rows(config, "SELECT status, attempts FROM outbox") == [("queued", 0)] * 2
    status = invoke(config, "status").output
    assert "wants a login or a secure connection" in status

    smtp.mail_code = None
    result = invoke(config, "run", "--once")

    assert result.exit_code == 0, result.output
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["p0@x.example", "p1@x.example"]
    assert rows(config, "SELECT status, attempts FROM outbox") == [("sent", 1)] * 2


# -- finding 11: work that grows with the inbox --------------------------------------------

def test_mail_left_in_the_inbox_is_downloaded_once(mailbox, smtp, make_config, monkeypatch):
    from imapclient import IMAPClient

    for i in range(40):
        mailbox.append(foreign_mail(i))
    mailbox.append(registration_mail("Heike Wagner", "heike@x.example",
                                     "ich melde mich an. Wird das Treffen aufgezeichnet?"))
    config = config_mod.load(make_config())
    store = Store(config.database)
    inbox = open_inbox(config.imap, None, 10, 1_000_000)
    inbox.left = LeftAlone()
    fetched: list = []
    real_fetch = IMAPClient.fetch

    def fetch(self, messages, data, *args, **kwargs):
        fetched.append((list(messages), data))
        return real_fetch(self, messages, data, *args, **kwargs)

    monkeypatch.setattr(IMAPClient, "fetch", fetch)
    try:
        processor = Processor(config, store, open_transport(config.smtp, CONTACT))
        first = run_round(processor, inbox)
        fetched.clear()
        second = run_round(processor, inbox)
    finally:
        inbox.close()
        store.close()
    assert first.read == 41 and first.mails["foreign"] == 40
    assert second.read == 0 and fetched == [], "the second poll downloads nothing"
    assert len(mailbox.folder("INBOX")) == 41, "all still there, as they were"


def test_imapclient_never_logs_mail_bodies(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example",
                                     "hiermit melde ich mich an. Geheimwort Quittenbrot."))
    env = {**os.environ, "MAILBOT_IMAP_PASSWORD": mailbox.server.password}
    done = subprocess.run([sys.executable, "-m", "mailbot", "-vv", "--config", str(config),
                           "run", "--once"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr, "debug logging is on"
    assert "Quittenbrot" not in done.stderr
    assert mailbox.server.password not in done.stderr


# -- finding 12: status messages -----------------------------------------------------------

def test_a_421_is_reported_as_a_busy_server_not_as_a_wrong_password(mailbox, smtp,
                                                                     make_config):
    config = make_config()
    fill(mailbox, 1)
    smtp.mail_code = "421 4.7.0 Too many messages, try again later"
    assert invoke(config, "run", "--once").exit_code == 0
    status = invoke(config, "status").output
    assert "busy or limits us" in status and "password" not in status
    assert rows(config, "SELECT status, attempts FROM outbox") == [("queued", 0)]


def test_a_550_is_summarised_as_refused_not_as_queued():
    summary = Summary(sent=1, refused=1)
    text = describe(summary)
    assert "1 refused for good" in text and "stay queued" not in text


def test_check_fails_for_a_server_that_refuses_our_sender(mailbox, smtp, make_config):
    config = make_config()
    smtp.mail_code = "530 5.7.0 Must issue a STARTTLS command first"
    result = invoke(config, "check")
    assert result.exit_code == 2
    assert "✗ SMTP 127.0.0.1" in result.output and "STARTTLS" in result.output


def test_run_once_from_cron_also_downloads_mail_left_in_the_inbox_once(mailbox, smtp,
                                                                       make_config, monkeypatch):
    from imapclient import IMAPClient

    for i in range(25):
        mailbox.append(foreign_mail(i))
    config = make_config()
    assert invoke(config, "run", "--once").exit_code == 0  # not ours: no news for cron
    fetched: list = []
    real_fetch = IMAPClient.fetch
    monkeypatch.setattr(IMAPClient, "fetch", lambda self, *a, **k: (fetched.append(a),
                                                                     real_fetch(self, *a, **k))[1])
    mailbox.append(foreign_mail(99))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))

    result = invoke(config, "run", "--once")

    assert result.output.startswith("2 mails read: 1 registration"), result.output
    assert {uid for messages, _ in fetched for uid in messages} == {26, 27}, "only new mail"
    assert len(smtp.envelopes) == 1


def test_left_alone_is_remembered_in_a_few_characters():
    left = LeftAlone()
    left.add(7, [*range(1, 20001), 20005, 20007, 20008])
    left.add(7, [20006, 20010], flagged=True)
    text = left.to_text()
    assert text == "7:1-20000,20005,20007-20008;20006,20010"
    again = LeftAlone.from_text(text)
    assert (again.validity, again.foreign, again.flagged) == (7, left.foreign, left.flagged)
    assert LeftAlone.from_text(None).foreign == set()
    present = [*range(1, 20011)]
    skip = again.current(7, present, lambda: {20010})
    assert 20006 not in skip and 20010 in skip, "read again once its flag is gone"
    assert again.current(8, present, set) == set(), "a new UIDVALIDITY forgets everything"


@pytest.mark.parametrize("error, words", [
    ("database is locked", "is locked by another program: close that program"),
    ("database or disk is full", "the disk is full; free some space"),
    ("database disk image is malformed", "damaged or not a database"),
    ("disk I/O error", "check the disk and the file's permissions"),
])
def test_each_database_error_is_one_line_with_the_fix(tmp_path, error, words):
    from mailbot.store import explain

    text = explain(sqlite3.OperationalError(error), tmp_path / "mailbot.sqlite")
    assert words in text and "\n" not in text and str(tmp_path) in text


def test_an_imap_command_waits_less_than_half_the_watchdog(mailbox, make_config, monkeypatch):
    """A stalled IMAP server must be given up before systemd's watchdog kills mailbot (as
    SMTP already was): the socket timeout is capped at 0.4 × WatchdogSec."""
    config = config_mod.load(make_config())
    assert config.imap.timeout > 4
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")  # WatchdogSec=10
    inbox = open_inbox(config.imap, None, 10, 1_000_000)
    try:
        assert inbox.client.socket().gettimeout() == pytest.approx(4.0)
    finally:
        inbox.close()
    monkeypatch.delenv("WATCHDOG_USEC")
    inbox = open_inbox(config.imap, None, 10, 1_000_000)
    try:
        assert inbox.client.socket().gettimeout() == pytest.approx(config.imap.timeout)
    finally:
        inbox.close()


def test_sigterm_while_a_mute_imap_server_holds_a_command_stops_within_the_grace(
        make_config, tmp_path):
    """A server that greets and then never answers (the LOGIN hangs for the whole command
    timeout, 60 s here): after SIGTERM the mail in hand gets a grace of a few seconds, then
    the connection is cut — the service exits long before systemd's TimeoutStopSec (30 s)
    would kill it (issue 20.14: 57.8 s with a mute IMAP server)."""
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    talking = threading.Event()
    held: list[socket.socket] = []

    def greet_then_say_nothing() -> None:
        conn, _ = mute.accept()
        held.append(conn)
        conn.sendall(b"* OK ready\r\n")
        tag = conn.recv(4096).split(b" ")[0]  # CAPABILITY: answered
        conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
        conn.recv(4096)  # the LOGIN: never answered
        talking.set()

    threading.Thread(target=greet_then_say_nothing, daemon=True).start()
    config = make_config()
    config.write_text(with_port(config.read_text(), "imap", mute.getsockname()[1]))
    proc = start_daemon(config, "secret")
    try:
        assert talking.wait(20), "mailbot logs in"
        proc.send_signal(signal.SIGTERM)
        try:  # a hang check far below the 60 s command timeout, not a timing
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"still waiting for the mute server: {err}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        mute.close()
        for conn in held:
            conn.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "exiting without it" not in err, "cut, not given up"
