"""Staying up (issue 20, points 12–18): a quadratic address line, a broken template on
SIGHUP, faults of an OAuth2 token endpoint, a read-only database, cron beside the service,
digests that waited, a 550 at RCPT, RSVP on the attendee. Real Dovecot and aiosmtpd; fakes
only for a token endpoint, a stall or the clock."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import os
import shutil
import signal
import sqlite3
import subprocess

import pytest
from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows, start_daemon, stop, wait_for, with_port
from servers import free_port
from test_server_failures import Systemd, slow_smtp, with_smtp_port  # noqa: F401

from mailbot import config as config_mod
from mailbot.cli import main
from mailbot.core.models import Registration, Status
from mailbot.mail.inbox import open_inbox
from mailbot.mail.leftalone import LeftAlone
from mailbot.mail.smtp import open_transport
from mailbot.reading import people
from mailbot.reading.parse import parse_mail
from mailbot.replies.compose import default_templates
from mailbot.replies.ics import Calendars
from mailbot.service.loop import run_round
from mailbot.service.processor import Processor
from mailbot.store import Store

NOW = dt.datetime(2021, 5, 21, 8, 0, tzinfo=dt.UTC)


def invoke(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args])


class Counting:
    """A compiled pattern that counts its searches."""

    def __init__(self, pattern):
        self.pattern, self.searches = pattern, 0

    def search(self, *args):
        self.searches += 1
        return self.pattern.search(*args)

    def __getattr__(self, name):
        return getattr(self.pattern, name)


def _long_line(n: int) -> str:
    return "Wir melden an: " + " ".join(f"Anna Arndt a{i}@b.example" for i in range(n))


def test_a_100_kb_address_line_costs_bounded_work(monkeypatch):
    registering = Counting(people._REGISTERING)
    monkeypatch.setattr(people, "_REGISTERING", registering)
    named = []
    real_name = people.person_name
    monkeypatch.setattr(people, "person_name", lambda v: named.append(v) or real_name(v))
    line = _long_line(5000)
    assert len(line) > 100_000
    found = people.find(line, "eve@evil.example", "Eve")
    assert found.issue and "Adressen" in found.issue, "so many addresses: a human reads it"
    assert len(found.participants) == 1
    assert len(named) <= people.MAX_ADDRESSES and registering.searches <= 10


def test_a_long_line_below_the_cap_is_read_once_per_sentence(monkeypatch):
    registering = Counting(people._REGISTERING)
    monkeypatch.setattr(people, "_REGISTERING", registering)
    found = people.find(_long_line(150), "eve@evil.example", "Eve")
    assert len(found.participants) >= 150
    assert registering.searches <= 10, "one sentence, one search — not one per address"


def test_the_loop_pings_the_watchdog_before_each_mail(mailbox, smtp, make_config, monkeypatch):
    for i in range(3):
        mailbox.append(registration_mail("Eve Evil", f"eve{i}@evil.example",
                                         _long_line(5000)))
    mailbox.append(registration_mail("Heike Wagner", "heike@x.example"))
    config = config_mod.load(make_config())
    store = Store(config.database)
    inbox = open_inbox(config.imap, None, 50, 10_000_000)
    inbox.left = LeftAlone()
    events: list[str] = []
    try:
        processor = Processor(config, store, open_transport(config.smtp, CONTACT))
        real = processor.handle_safely
        monkeypatch.setattr(processor, "handle_safely",
                            lambda mail, summary: events.append("mail") or real(mail, summary))
        summary = run_round(processor, inbox, heartbeat=lambda: events.append("ping"))
    finally:
        inbox.close()
        store.close()
    assert events.count("mail") == 4
    assert all(not (a == b == "mail") for a, b in zip(events, events[1:], strict=False)), events
    assert summary.mails["register"] == 1 and summary.mails["review"] == 3
    flagged = [m for m in mailbox.folder("INBOX").values() if "\\Flagged" in
               {f.decode() for f in m["flags"]}]
    assert len(flagged) == 3, "the three long lists wait for a human, flagged"


# -- point 13: SIGHUP with a broken template; SIGHUP during a send --------------------------

def _own_templates(tmp_path, config_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    shutil.copy(default_templates() / "confirmation.de.txt", folder)
    config_path.write_text(config_path.read_text() + f'\n[templates]\npath = "{folder}"\n')
    return folder / "confirmation.de.txt"


BROKEN = "{% if name %}Hallo {{ name }\n"


def test_sighup_with_a_broken_template_keeps_the_old_configuration(mailbox, smtp,
                                                                   make_config, tmp_path):
    config = make_config()
    template = _own_templates(tmp_path, config)
    good = template.read_text()
    systemd = Systemd()
    proc = start_daemon(config, mailbox.server.password, env=systemd.env)
    try:
        assert wait_for(lambda: systemd.count("READY=1") == 1)
        template.write_text(BROKEN + good)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: systemd.count("READY=1") == 2), "old configuration kept"
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 1), "still answering"
        assert proc.poll() is None, "the service lives"
    finally:
        err = stop(proc)
        systemd.close()
    assert proc.returncode == 0, err
    assert "confirmation.de.txt" in err and "going on with the configuration as it was" in err
    assert "Traceback" not in err


def test_check_and_the_start_name_a_broken_template(mailbox, smtp, make_config, tmp_path):
    config = make_config()
    template = _own_templates(tmp_path, config)
    assert "all compile" in invoke(config, "check").output
    template.write_text(BROKEN + template.read_text())
    checked = invoke(config, "check")
    assert checked.exit_code == 2
    assert "✗ templates" in checked.output and "confirmation.de.txt, line 1" in checked.output
    proc = start_daemon(config, mailbox.server.password)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "confirmation.de.txt" in err and "Traceback" not in err


def test_sighup_during_a_slow_send_lets_the_reply_finish(mailbox, slow_smtp,  # noqa: F811
                                                        make_config):
    handler, port = slow_smtp(0)
    config = with_smtp_port(make_config(), port)
    handler.data_delay = 7  # longer than the 5 s a stop gives a reply on its way
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    proc = start_daemon(config, mailbox.server.password)
    try:
        assert handler.data_started.wait(30)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: rows(config, "SELECT status FROM outbox") == [("sent",)])
        handler.data_delay = 0
        mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
        assert wait_for(lambda: len(handler.envelopes) == 2), "going on after the reload"
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "abandoned" not in err
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == ["anna@a.example",
                                                                 "bernd@b.example"]


# -- point 17: a 550 at RCPT is a bounce -------------------------------------------------

def test_a_550_at_rcpt_marks_the_address_undeliverable_and_announce_skips_it(
        make_config, mailbox, smtp):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    smtp.fail_codes.append("550 5.1.1 <anna@a.example>: Recipient address rejected: "
                           "User unknown")
    assert invoke(config, "run", "--once").exit_code == 0
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    assert invoke(config, "run", "--once").exit_code == 0
    marked = rows(config, "SELECT email FROM registrations WHERE undeliverable LIKE '5.1.1 %'")
    assert marked == [("anna@a.example",)]
    config.write_text(config.read_text().replace('passcode = "Auftakt21"',
                                                 'passcode = "Neu2021"'))
    result = invoke(config, "announce", "--yes")
    assert result.exit_code == 0, result.output
    updates = rows(config, "SELECT recipient FROM outbox WHERE kind = 'update'")
    assert updates == [("bernd@b.example",)], "no announcement to the refused address"
    assert "Undeliverable addresses: 1" in invoke(config, "status").output


def test_a_refusal_about_us_marks_nobody():
    from mailbot.rules.rate import refused_address

    assert refused_address(550, "5.1.1 User unknown") == "5.1.1"
    assert refused_address(550, "User unknown") == "550"
    assert refused_address(554, "5.7.1 Relay access denied") is None
    assert refused_address(550, "Relaying denied") is None
    assert refused_address(450, "4.2.0 try later") is None


# -- point 18: no RSVP parameter on the attendee ----------------------------------------

def test_the_attendee_carries_no_rsvp_parameter(example_config):
    import icalendar

    reg = Registration("anna@a.example", "Anna Arndt", None, Status.CONFIRMED,
                       "uid-1@isi-innovation.de", 0, NOW, "<m@a.example>")
    raw = Calendars(example_config).calendar(reg, NOW)
    assert b"RSVP" not in raw.upper(), "FALSE is the default: the parameter is left out"
    [event] = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"


def test_a_calendar_reply_with_rsvp_is_read_as_before():
    raw = (b"From: Anna Arndt <anna@a.example>\r\nTo: " + CONTACT.encode() + b"\r\n"
           b"Subject: Angenommen: Auftakttreffen\r\nMessage-ID: <r1@a.example>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n"
           b"\r\nBEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:uid-1\r\n"
           b"ATTENDEE;RSVP=FALSE;PARTSTAT=ACCEPTED;CN=Anna Arndt:mailto:anna@a.example\r\n"
           b"END:VEVENT\r\nEND:VCALENDAR\r\n")
    parsed = parse_mail(raw, CONTACT)
    assert parsed.calendar_reply[:2] == ("ACCEPTED", "anna@a.example")


# -- point 15: a read-only database; cron beside the service; digests that waited ---------

@contextlib.contextmanager
def read_only(path):
    """``path`` read-only, also for root (who ignores the mode): immutable with chattr."""
    path.chmod(0o400)
    immutable = os.geteuid() == 0 and subprocess.run(
        ["chattr", "+i", str(path)], capture_output=True).returncode == 0
    if os.geteuid() == 0 and not immutable:
        path.chmod(0o600)
        pytest.skip("root without chattr: no read-only file to be had")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o600)


def test_a_read_only_database_stops_the_service_with_one_line(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    assert invoke(config, "run", "--once").exit_code == 0
    database = config.parent / "mailbot.sqlite"
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    with read_only(database):
        proc = start_daemon(config, mailbox.server.password)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            err = stop(proc)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("mailbot:")], err


def test_a_digest_that_waited_for_smtp_is_replaced_not_doubled(mailbox, smtp, make_config):
    config = make_config(extra='\n[digest]\nto = "orga@isi-innovation.de"\nat = "00:00"\n')
    working = config.read_text()
    config.write_text(with_port(working, "smtp", free_port()))  # no SMTP this morning
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    invoke(config, "run", "--once")
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:  # the next morning
        conn.execute("UPDATE state SET value = '2000-01-01' WHERE key = 'digest_day'")
        conn.execute("UPDATE notices SET key = 'digest:2000-01-01' WHERE key LIKE 'digest:%'")
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    invoke(config, "run", "--once")  # still no SMTP
    assert rows(config, "SELECT count(*) FROM outbox WHERE kind = 'digest'") == [(1,)]
    config.write_text(working)
    assert invoke(config, "run", "--once").exit_code == 0
    sent = [e for e in smtp.envelopes if e.rcpt_tos == ["orga@isi-innovation.de"]]
    assert len(sent) == 1, "one digest, not two"
    text = email.message_from_bytes(sent[0].content, policy=email.policy.default) \
        .get_body(("plain",)).get_content()
    assert "anna@a.example" in text and "bernd@b.example" in text, "it covers both days"
