"""Fixtures: a real Dovecot and a real aiosmtpd for the session, a fresh mailbox, SMTP
record and config file for each test."""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).parent))

from servers import Dovecot, RecordingHandler, start_dovecot, start_smtp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "samples" / "mail"
MAILS = Path(__file__).parent / "mails"


def shared_sample(name: str) -> bytes:
    """A mail of ../shared/samples/mail; the test is skipped in a clone with nothing beside it."""
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the repository alone)")
    return path.read_bytes()
CONTACT = "n.collinet@isi-innovation.de"
_users = itertools.count(1)

CONFIG = """\
[event]
title = "Digitales Auftakttreffen: Aufbau des Landesnetzwerks für bürgerschaftliches Engagement"
start = {start}
end = {end}
timezone = "Europe/Berlin"
language = "de"
{capacity}
[zoom]
url = "https://zoom.us/j/84512345678?pwd=dGVzdA"
meeting_id = "845 1234 5678"
passcode = "Auftakt21"

[contact]
name = "Nathalie Collinet"
address = "n.collinet@isi-innovation.de"
organisation = "Institut für soziale Innovation"

[imap]
host = "127.0.0.1"
port = {imap_port}
security = "none"
username = "{user}"
password_env = "MAILBOT_IMAP_PASSWORD"
folder = "INBOX"
processed_folder = "Processed"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[database]
path = "{db}"

[daemon]
poll_interval = 0.5
# the test mails are dated May 2021, like the event; the age rule has a test of its own
max_age = "10000d"

[privacy]
# the 2021 event is long over: without this, retention would erase every test's data
retain_days_after_event = 36500
"""


@pytest.fixture(scope="session")
def example_config():
    """config/example.toml, loaded with made-up passwords (no server is contacted)."""
    from mailbot import config as cfg

    mp = pytest.MonkeyPatch()
    mp.setenv("MAILBOT_IMAP_PASSWORD", "x")
    mp.setenv("MAILBOT_SMTP_PASSWORD", "x")
    try:
        return cfg.load(ROOT / "config" / "example.toml")
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def dovecot():
    if not (shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists()):
        pytest.fail("Dovecot is not installed: run the README test command (scripts/test)")
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server():
    controller, handler = start_smtp()
    yield controller, handler
    controller.stop()


@pytest.fixture
def smtp(smtp_server) -> RecordingHandler:
    """The SMTP server's record, emptied for this test."""
    _, handler = smtp_server
    handler.envelopes.clear()
    handler.fail_codes.clear()
    handler.mail_code = None
    handler.on_mail = None
    handler.peers.clear()
    handler.connected.clear()
    handler.slow.clear()
    return handler


class Mailbox:
    """A fresh IMAP account of the test Dovecot, with helpers to fill and inspect it."""

    def __init__(self, server: Dovecot, user: str):
        self.server = server
        self.user = user
        self.client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
        self.client.login(user, server.password)

    def append(self, raw: bytes, when: dt.datetime | None = None, folder: str = "INBOX") -> None:
        if when is None:
            msg = email.message_from_bytes(raw)
            parsed = email.utils.parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
            when = parsed or dt.datetime.now(dt.UTC)
        self.client.append(folder, raw, msg_time=when)

    def folder(self, name: str) -> dict[int, dict]:
        """UID → {flags, raw} of every mail in a folder."""
        if not self.client.folder_exists(name):
            return {}
        self.client.select_folder(name, readonly=True)
        data = self.client.fetch(self.client.search(), ["FLAGS", "BODY.PEEK[]"])
        self.client.unselect_folder()
        return {uid: {"flags": set(d[b"FLAGS"]), "raw": d[b"BODY[]"]} for uid, d in data.items()}

    def close(self) -> None:
        self.client.logout()


@pytest.fixture
def mailbox(dovecot, monkeypatch) -> Mailbox:
    box = Mailbox(dovecot, f"user{next(_users)}")
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", dovecot.password)
    yield box
    box.close()


@pytest.fixture
def make_config(tmp_path, dovecot, smtp_server, mailbox):
    """Write a config for this test's mailbox; returns its path."""
    controller, _ = smtp_server

    def make(start: str = "2021-05-31T10:00:00", end: str = "2021-05-31T15:00:00",
             capacity: int | None = None, name: str = "mailbot.toml", extra: str = "") -> Path:
        path = tmp_path / name
        path.write_text(CONFIG.format(
            start=start, end=end, imap_port=dovecot.port, user=mailbox.user,
            smtp_port=controller.port, db=tmp_path / "mailbot.sqlite",
            capacity=f"capacity = {capacity}\n" if capacity else "",
        ) + extra, encoding="utf-8")
        return path

    return make


def with_port(text: str, section: str, port: int) -> str:
    """``text`` (a config) with the ``port =`` line of ``[section]`` pointed at ``port``:
    for a test's own server (a stalling SMTP, a cuttable IMAP proxy) in place of the fixture."""
    head, _, rest = text.partition(f"[{section}]")
    before, _, after = rest.partition("\nport = ")
    _, _, after = after.partition("\n")
    return f"{head}[{section}]{before}\nport = {port}\n{after}"


def rows(config, sql: str, *params) -> list[tuple]:
    """Rows of a query on the database beside ``config`` (the test's mailbot.sqlite)."""
    conn = sqlite3.connect(config.parent / "mailbot.sqlite")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def start_daemon(config, password, *args, env=None):
    """`mailbot run` (the service) in its own process, as systemd would start it."""
    env = {**os.environ, "MAILBOT_IMAP_PASSWORD": password, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(config), *args,
                             "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def stop(proc) -> str:
    """SIGTERM, as systemd stops it; its stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def wait_for(condition, timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (for running daemons)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def registration_mail(name: str, address: str, text: str = "hiermit melde ich mich an.",
                      msgid: str | None = None, to: str = CONTACT, extra: str = "") -> bytes:
    """A plain registration mail as a mail client would send it."""
    msgid = msgid or email.utils.make_msgid(domain=address.split("@")[1])
    return (
        f"From: {name} <{address}>\r\nTo: Nathalie Collinet <{to}>\r\n"
        f"Subject: Anmeldung Auftakttreffen\r\nDate: Fri, 21 May 2021 09:00:00 +0200\r\n"
        f"Message-ID: {msgid}\r\n{extra}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Guten Tag,\r\n\r\n{text}\r\n\r\nViele Grüße\r\n{name}\r\n"
    ).encode()


def next_day(config, announced_days_ago: float | None = None) -> None:
    """As on the next day: the daily check is due again (and the announcement older)."""
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        conn.execute("DELETE FROM state WHERE key = 'last_purge_check'")
        if announced_days_ago is not None:
            when = dt.datetime.now(dt.UTC) - dt.timedelta(days=announced_days_ago)
            conn.execute("UPDATE state SET value = ? WHERE key = 'purge_announced'",
                         [when.replace(microsecond=0).isoformat()])
