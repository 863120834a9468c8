"""The service under stress: IDLE, lost connections, kills, a second copy, systemd."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

from click.testing import CliRunner
from conftest import registration_mail, rows, start_daemon, stop, wait_for
from servers import CuttableProxy

from mailbot.cli import main
from mailbot.host.lock import exclusive


def test_idle_answers_a_new_mail_without_waiting_for_the_poll(mailbox, smtp, make_config):
    config = make_config()
    config.write_text(config.read_text().replace("poll_interval = 0.5", "poll_interval = 600"))
    proc = start_daemon(config, mailbox.server.password)
    try:
        assert wait_for(lambda: "connected" in (proc.stderr.readline() or "")), "connected"
        time.sleep(0.5)  # the daemon is idling now
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 1, timeout=10), \
            "answered long before the 600 s poll: IDLE woke the daemon"
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err


def test_lost_imap_connection_is_remade_and_nothing_is_lost(mailbox, smtp, make_config):
    proxy = CuttableProxy(mailbox.server.port)
    config = make_config()
    config.write_text(config.read_text().replace(f"port = {mailbox.server.port}",
                                                 f"port = {proxy.port}"))
    proc = start_daemon(config, mailbox.server.password)
    try:
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 1)
        for i in range(3):
            proxy.cut()
            mailbox.append(registration_mail(f"Person {i}", f"p{i}@x.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 4), "all answered after reconnecting"
    finally:
        err = stop(proc)
        proxy.close()
    assert proc.returncode == 0, err
    assert proxy.accepted >= 2, "the daemon connected again"
    assert err.count("trying again with backoff") <= 3, "one line per lost connection"
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == [
        "anna@a.example", "p0@x.example", "p1@x.example", "p2@x.example"]


def test_killed_at_random_moments_every_participant_has_one_row_and_a_reply(
        mailbox, smtp, make_config):
    """300 registrations; the daemon is SIGKILLed at 5 moments (fixed seed) and restarted.
    SMTP leaves one window open (the server said 250, the kill came before the database
    heard it): such a reply is sent again, so each kill may add one duplicate, no more."""
    config = make_config()
    people = [(f"Person {i}", f"person{i}@crash{i % 30}.example") for i in range(300)]
    for name, address in people:
        mailbox.append(registration_mail(name, address))
    rng = random.Random(20210531)
    kills = 0
    for _ in range(5):
        proc = start_daemon(config, mailbox.server.password)
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=15)
    proc = start_daemon(config, mailbox.server.password)
    try:
        done = wait_for(lambda: len({e.rcpt_tos[0] for e in smtp.envelopes}) == 300, 120)
        assert done and wait_for(lambda: mailbox.folder("INBOX") == {}, 30), (
            rows(config, "SELECT status, count(*) FROM outbox GROUP BY status"),
            rows(config, "SELECT count(*) FROM messages"), len(mailbox.folder("INBOX")),
            len({e.rcpt_tos[0] for e in smtp.envelopes}), stop(proc)[-3000:])
    finally:
        stop(proc)
    registered = rows(config, "SELECT email, count(*) FROM registrations GROUP BY email")
    assert len(registered) == 300 and all(n == 1 for _, n in registered)
    replies = Counter(e.rcpt_tos[0] for e in smtp.envelopes)
    assert set(replies) == {a for _, a in people}
    assert sum(replies.values()) <= 300 + kills, replies.most_common(3)
    assert rows(config, "SELECT DISTINCT status FROM outbox") == [("sent",)]


def test_a_second_run_exits_at_once_quietly_and_says_so_with_v(mailbox, smtp, make_config):
    """cron's `run --once` beside the service: exit 0 and no output (cron would mail it
    every 5 minutes); with -v it says why it did nothing."""
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    with exclusive(config.parent / "mailbot.sqlite"):
        result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
        told = CliRunner().invoke(main, ["-v", "--config", str(config), "run", "--once"])
    assert result.exit_code == told.exit_code == 0
    assert result.output == ""
    assert "already working on" in told.output and "nothing to do" in told.output
    assert smtp.envelopes == []

    proc = start_daemon(config, mailbox.server.password)
    try:
        assert wait_for(lambda: len(smtp.envelopes) == 1)
        quiet, second = (subprocess.run(
            [sys.executable, "-m", "mailbot", *verbose, "--config", str(config), "run",
             "--once"], env={**os.environ, "MAILBOT_IMAP_PASSWORD": mailbox.server.password},
            capture_output=True, text=True, timeout=30) for verbose in ([], ["-v"]))
    finally:
        stop(proc)
    assert quiet.returncode == second.returncode == 0
    assert quiet.stdout == quiet.stderr == ""
    assert second.stderr.strip().splitlines() == [
        f"mailbot: another mailbot (pid {proc.pid}) is already working on "
        f"{config.parent / 'mailbot.sqlite'}; nothing to do."]


def test_two_mailbots_answering_each_other_settle(mailbox, smtp, make_config, dovecot,
                                                  tmp_path):
    """Bot A answers Anna; Anna's address is itself a mailbot (B). B must not answer A's
    auto-reply, so the exchange ends after one reply."""
    from conftest import Mailbox

    config_a = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    CliRunner().invoke(main, ["--config", str(config_a), "run", "--once"])
    [reply] = smtp.envelopes
    box_b = Mailbox(dovecot, mailbox.user + "-b")
    try:
        box_b.append(reply.content)
        config_b = tmp_path / "b" / "mailbot.toml"
        config_b.parent.mkdir()
        config_b.write_text(config_a.read_text()
                            .replace('address = "n.collinet@isi-innovation.de"',
                                     'address = "anna@a.example"')
                            .replace(f'username = "{mailbox.user}"',
                                     f'username = "{box_b.user}"')
                            .replace(str(config_a.parent / "mailbot.sqlite"),
                                     str(config_b.parent / "mailbot.sqlite")))
        result = CliRunner().invoke(main, ["--config", str(config_b), "run", "--once"])
        assert result.exit_code == 0, result.output
        assert "1 automatic (ignored)" in result.output
    finally:
        box_b.close()
    assert len(smtp.envelopes) == 1


def test_systemd_hears_ready_and_watchdog(mailbox, smtp, make_config):
    config = make_config()
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(10)
    proc = start_daemon(config, mailbox.server.password, env={"NOTIFY_SOCKET": path})
    try:
        heard = set()
        while not {"READY=1", "WATCHDOG=1"} <= heard:
            heard.update(server.recv(4096).decode().split("\n"))
    finally:
        err = stop(proc)
        server.close()
    assert proc.returncode == 0, err
