"""`mailbot run` as a service, and the embedded demo default (Maildir in, files out)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from conftest import registration_mail, start_daemon, wait_for

from mailbot.cli import main

ROOT = Path(__file__).resolve().parent.parent




def test_daemon_polls_answers_and_stops_cleanly_on_sigterm(mailbox, smtp, make_config):
    config = make_config()
    proc = start_daemon(config, mailbox.server.password)
    try:
        assert wait_for(lambda: (config.parent / "mailbot.sqlite").exists())
        mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 1), "answered while running"
        mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
        assert wait_for(lambda: len(smtp.envelopes) == 2), "and the next poll too"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err and "mailbot stopped" in err
    assert mailbox.server.password not in err
    assert len(smtp.envelopes) == 2


def test_demo_default_reads_a_maildir_and_writes_replies_as_files(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    maildir = tmp_path / "var" / "demo" / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for mail in sorted((ROOT / "examples" / "mail").glob("*.eml")):
        shutil.copy(mail, maildir / "new" / mail.name)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["--config", "examples/demo.toml", "run", "--once"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("7 mails read: 3 registrations, 1 cancellation,")
    assert "replies written to var/demo/outbox/" in result.output
    outbox = sorted(p.name for p in (tmp_path / "var" / "demo" / "outbox").iterdir())
    assert len(outbox) == 5 and outbox[0].startswith("00001-confirmation-")
    db = tmp_path / "var" / "demo" / "mailbot.sqlite"
    assert db.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM registrations").fetchone() == (4,)
    assert sorted(os.listdir(maildir / "new")) == ["06_andere_adresse.eml"], "foreign: untouched"
    assert os.listdir(maildir / "cur") == ["05_frage.eml:2,F"], "question: flagged for a human"
    assert len(os.listdir(maildir / ".Processed" / "cur")) == 5

    again = CliRunner().invoke(main, ["--config", "examples/demo.toml", "run", "--once"])
    assert again.exit_code == 0
    assert len(list((tmp_path / "var" / "demo" / "outbox").iterdir())) == 5, "nothing twice"

    review = CliRunner().invoke(main, ["--config", "examples/demo.toml", "review"])
    assert review.exit_code == 0
    lines = review.output.splitlines()
    assert lines[0] == "1 mail waits for a human (flagged in the inbox):"
    assert lines[2].endswith("heike.wagner@awo-dortmund.example")
    assert lines[3:5] == ["    Subject: Frage zum Auftakttreffen",
                          "    Reason:  Frage – bitte persönlich beantworten; "
                          "Frage: ‚wird das Treffen aufgezeichnet?‘"]  # the deciding sentence
    assert "    | wird das Treffen aufgezeichnet?" in lines
