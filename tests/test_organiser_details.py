"""The small things an organiser noticed (issue 15, point 11), each with its test."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner
from conftest import registration_mail, rows
from test_desk_commands import cli, event_db  # noqa: F401  (the fixture)

from mailbot import config as cfg
from mailbot.cli import main
from mailbot.core.models import Summary
from mailbot.replies.report import describe

ROOT = Path(__file__).resolve().parent.parent


def body(envelope) -> str:
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content()


def test_summary_counts_each_unsent_reply_once_and_names_kinds_in_words():
    summary = Summary()
    summary.not_sent([7])  # the relay was down at the first flush of a run …
    summary.not_sent([7])  # … and at the second
    summary.replies["on_behalf"] += 1
    summary.mails["register"] += 1
    text = describe(summary)
    assert "1 could not be sent yet" in text
    assert "on_behalf" not in text and "1 note to who registered them" in text


def test_a_stale_error_is_shown_as_resolved(event_db, smtp):  # noqa: F811
    smtp.mail_code = "451 4.3.0 try later"
    cli(event_db, "add", "neu@x.example", "--name", "Neu Person")
    assert "\nLast error: " in cli(event_db, "status")
    smtp.mail_code = None
    cli(event_db, "run", "--once")
    status = cli(event_db, "status")
    assert "\nLast error: " not in status
    assert "\nEarlier error (resolved, polls went fine since): " in status


def test_tls_on_a_plain_port_is_named_in_words(event_db, tmp_path):  # noqa: F811
    wrong = tmp_path / "tls.toml"
    wrong.write_text(event_db.read_text().replace('security = "none"\nusername',
                                                  'security = "tls"\nusername', 1))
    result = CliRunner().invoke(main, ["--config", str(wrong), "run", "--once"])
    assert result.exit_code == 2
    assert "the server does not speak TLS on this port" in result.output
    assert "WRONG_VERSION_NUMBER" not in result.output


def test_log_lines_carry_their_time_zone(event_db, dovecot, mailbox):  # noqa: F811
    mailbox.append(registration_mail("Ida Neu", "ida@x.example"))
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(event_db), "-v", "run", "--once"],
        capture_output=True, text=True, timeout=60,
        env={"MAILBOT_IMAP_PASSWORD": dovecot.password, "PATH": "/usr/bin:/bin"})
    lines = [line for line in result.stderr.splitlines() if " INFO " in line]
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} INFO ", line)
                         for line in lines), lines


def test_remind_says_why_nothing_was_sent(event_db, tmp_path):  # noqa: F811
    assert cli(event_db, "remind") == "No reminder due: the event has begun.\n"
    future = tmp_path / "future.toml"
    future.write_text(event_db.read_text().replace("2021-05-31", "2099-05-31"))
    assert cli(future, "remind") == ("No reminder due: the next one (24 h before the start) "
                                     "is due on 30.05.2099 10:00.\n")


def test_a_zoom_meeting_without_passcode(make_config, mailbox, smtp):
    with (ROOT / "config" / "example.toml").open("rb") as fh:
        data = tomllib.load(fh)
    del data["zoom"]["passcode"]
    assert cfg.parse(data, secrets=False).zoom.passcode is None
    config = make_config()
    config.write_text(config.read_text().replace('passcode = "Auftakt21"\n', ""))
    mailbox.append(registration_mail("Ida Neu", "ida@x.example"))
    cli(config, "run", "--once")
    [reply] = smtp.envelopes
    assert "Meeting-ID: 845 1234 5678" in body(reply) and "Kenncode" not in body(reply)


def test_the_duplicate_reply_has_one_heading_and_moving_up_is_explained(event_db, mailbox,  # noqa: F811
                                                                        smtp):
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Wera Wart", "wera@w.example"))
    cli(event_db, "run", "--once")
    duplicate = next(e for e in smtp.envelopes if e.rcpt_tos == ["anna@a.example"])
    assert body(duplicate).count("Zugangsdaten") == 1, body(duplicate)
    smtp.envelopes.clear()
    cli(event_db, "cancel", "anna@a.example", "--yes")
    moved = next(e for e in smtp.envelopes if e.rcpt_tos == ["wera@w.example"])
    assert "Ein Platz ist frei geworden, und Sie rücken von der Warteliste nach." in body(moved)
    smtp.envelopes.clear()
    cli(event_db, "add", "anna@a.example", "--name", "Anna Arndt")  # capacity 3: waits
    cli(event_db, "move-up", "anna@a.example")
    [by_hand] = smtp.envelopes[1:]
    assert "Ein Platz ist frei geworden" in body(by_hand)


def test_forget_counts_in_words(event_db, smtp):  # noqa: F811
    out = cli(event_db, "forget", "anna@a.example", "--yes")
    assert out.splitlines()[-1] == ("erased anna@a.example: 1 registration, 1 reply, sender "
                                    "hidden in 1 mail")


def test_add_no_mail_beside_a_run_says_nothing_about_sending(event_db):  # noqa: F811
    from mailbot.host.lock import exclusive

    with exclusive(Path(event_db.parent / "mailbot.sqlite")):  # as a cron run would hold it
        out = cli(event_db, "add", "neu@x.example", "--name", "Neu", "--no-mail")
    assert out == "neu@x.example: waitlisted\n"
    assert rows(event_db, "SELECT status FROM registrations WHERE email = 'neu@x.example'") \
        == [("waitlisted",)]


def test_sample_replies_go_to_var_and_carry_the_events_dates(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mailbot", "--config",
                             str(ROOT / "examples" / "demo.toml"), "sample-replies"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    files = list((tmp_path / "var" / "sample-replies").glob("*.eml"))
    assert files
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Date"].datetime.year == 2027, "the demo event's year, not 2021"
