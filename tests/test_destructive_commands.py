"""Destructive organiser commands ask first, keep a backup, and keep the reply's promise
that the person's mails are deleted (read back from Dovecot)."""

from __future__ import annotations

import email
import email.policy
import os
import sqlite3
import time

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows, start_daemon, stop, wait_for
from test_desk_commands import cli, event_db  # noqa: F401  (the fixture)

from mailbot.cli import common as cli_mod
from mailbot.cli import main


def senders(mailbox, folder: str) -> list[str]:
    return sorted(m["raw"].split(b"From: ", 1)[1].split(b"\r\n", 1)[0].decode()
                  for m in mailbox.folder(folder).values())


@pytest.mark.parametrize("args", [
    ("forget", "anna@a.example"), ("purge", "--now"), ("cancel", "anna@a.example")])
def test_without_a_terminal_nothing_happens_without_yes(event_db, args):  # noqa: F811
    out = cli(event_db, *args, code=1)
    assert out.strip().splitlines()[-1] == ("mailbot: not asked, nothing done: there is no "
                                            "terminal to ask on; add --yes to go ahead")
    assert rows(event_db, "SELECT status FROM registrations WHERE email = 'anna@a.example'") \
        == [("confirmed",)]
    assert not (event_db.parent / "backups").exists()


def test_no_at_the_question_changes_nothing(event_db, monkeypatch, smtp):  # noqa: F811
    monkeypatch.setattr(cli_mod, "interactive", lambda: True)
    result = CliRunner().invoke(main, ["--config", str(event_db), "purge", "--now"],
                                input="n\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(
        "This erases the personal data of 3 registrations (3 confirmed) and every reply, "
        "before the retention period ends")
    assert "Erase it all now? [y/N]: n\nNothing erased." in result.output
    result = CliRunner().invoke(main, ["--config", str(event_db), "cancel", "jan@berg.example"],
                                input="n\n")
    assert result.output.splitlines()[:2] == [
        "This cancels the registration of Jan van der Berg <jan@berg.example> (confirmed).",
        "  They get a cancellation mail; their calendar entry is removed."]
    assert rows(event_db, "SELECT count(*) FROM registrations WHERE status = 'confirmed'") \
        == [(3,)]
    assert smtp.envelopes == []


def test_forget_writes_a_backup_then_deletes_the_persons_mails(event_db, mailbox,  # noqa: F811
                                                              monkeypatch):
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example", "noch eine Frage: "
                                     "gibt es Folien?"))  # a second mail of hers, for review
    cli(event_db, "run", "--once")
    assert "Anna Arndt <anna@a.example>" in senders(mailbox, "Processed")
    old = event_db.parent / "backups" / "mailbot-20200101-000000.sqlite"
    old.parent.mkdir(mode=0o700)
    old.write_bytes(b"")
    os.utime(old, (time.time() - 8 * 86400,) * 2)  # older than backup_days = 7
    killed = old.with_name(".mailbot-x1y2.part")  # half-written by a kill: names people too
    killed.write_bytes(b"SQLite format 3\x00")
    os.utime(killed, (time.time() - 8 * 86400,) * 2)

    monkeypatch.setattr(cli_mod, "interactive", lambda: True)
    result = CliRunner().invoke(main, ["--config", str(event_db), "forget", "anna@a.example"],
                                input="y\n")
    out = result.output
    assert result.exit_code == 0, out
    assert out.splitlines()[:4] == [
        "This erases everything about Anna Arndt <anna@a.example>:",
        "  their registration (confirmed)",
        "  1 reply to them, 2 mails from them in the log",
        "  their mails are deleted from INBOX and Processed"]
    assert "2 mails deleted from INBOX and Processed" in out
    assert all("anna@a.example" not in s for s in senders(mailbox, "Processed")
               + senders(mailbox, "INBOX"))
    assert "Jan van der Berg <jan@berg.example>" in senders(mailbox, "Processed")
    [backup] = (event_db.parent / "backups").glob("mailbot-*.sqlite")
    assert backup != old and backup.stat().st_mode & 0o777 == 0o600
    assert list((event_db.parent / "backups").iterdir()) == [backup], "the old ones went"
    with sqlite3.connect(backup) as conn:  # the backup still holds her: it is the undo
        assert conn.execute("SELECT name FROM registrations WHERE email = 'anna@a.example'"
                            ).fetchall() == [("Anna Arndt",)]
    assert rows(event_db, "SELECT count(*) FROM registrations WHERE email = 'anna@a.example'"
                ) == [(0,)]


def test_purge_now_deletes_every_handled_mail_and_keep_leaves_them(event_db, mailbox):  # noqa: F811
    assert len(mailbox.folder("Processed")) == 3 and len(mailbox.folder("INBOX")) == 1
    kept = event_db.parent / "keep.toml"
    kept.write_text(event_db.read_text().replace("[privacy]", '[privacy]\nmailbox = "keep"'))
    out = cli(kept, "forget", "jan@berg.example", "--yes")
    assert "The mails stay in INBOX and Processed ([privacy] mailbox = \"keep\"): delete " \
           "them in your mail program" in out
    assert len(mailbox.folder("Processed")) == 3
    out = cli(event_db, "purge", "--now", "--yes")
    assert "4 mails deleted from INBOX and Processed" in out
    assert mailbox.folder("Processed") == {} and mailbox.folder("INBOX") == {}
    assert rows(event_db, "SELECT count(*) FROM registrations") == [(0,)]


def test_announce_says_to_how_many_and_what_before_asking(event_db, smtp):  # noqa: F811
    event_db.write_text(event_db.read_text().replace("start = 2021-05-31T10:00:00",
                                                     "start = 2021-05-31T09:30:00"))
    out = cli(event_db, "announce", code=1).splitlines()
    assert out[:4] == ["This tells 3 people the changed details:",
                       "  start: 10:00 → 09:30",
                       "  Digitales Auftakttreffen: Aufbau des Landesnetzwerks für "
                       "bürgerschaftliches Engagement",
                       "  31.05.2021 09:30 – 15:00 (Europe/Berlin)"]
    assert smtp.envelopes == [] and "add --yes" in out[-1]
    assert cli(event_db, "announce", "--yes").splitlines()[-1].startswith(
        "3 announcements queued, 3 delivered")
    update = email.message_from_bytes(smtp.envelopes[0].content, policy=email.policy.default)
    text = update.get_body(("plain",)).get_content()
    assert "geändert.\n\nBeginn: bisher 10:00, jetzt 09:30\n" in text.replace("\r\n", "\n"), text


def test_run_once_is_quiet_when_nothing_new(event_db, mailbox):  # noqa: F811
    """Cron mails every output: a mail waiting for review and a foreign mail seen again on
    each run are not news; a new registration is."""
    mailbox.append(registration_mail("Fremd", "x@y.example", to="someone@else.example"))
    assert cli(event_db, "run", "--once") == ""  # Heike's question waits; foreign: left
    assert cli(event_db, "run", "--once") == ""
    mailbox.append(registration_mail("Neu Person", "neu@x.example"))
    out = cli(event_db, "run", "--once")
    # the waiting and the foreign mail are not even read again (issue 13: only new UIDs)
    assert out.startswith("1 mail read: 1 registration") and "1 reply delivered" in out


def test_read_only_commands_need_no_mail_password(event_db, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.delenv("MAILBOT_IMAP_PASSWORD")
    assert "3 people" in cli(event_db, "list")
    assert "Heike Wagner" in cli(event_db, "review")
    assert "3 confirmed" in cli(event_db, "status")
    assert "anna@a.example" in cli(event_db, "export")
    mail = tmp_path / "m.eml"
    mail.write_bytes(registration_mail("Ida Neu", "ida@x.example"))
    assert "Ida Neu <ida@x.example>" in cli(event_db, "preview", str(mail))
    out = cli(event_db, "add", "ida@x.example", "--name", "Ida", code=2)
    assert "[imap] password_env: environment variable MAILBOT_IMAP_PASSWORD is not set" in out


def test_an_unusable_database_is_one_line_not_a_traceback(event_db, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.toml"
    (tmp_path / "adir").mkdir()
    broken.write_text(event_db.read_text().replace(str(tmp_path / "mailbot.sqlite"),
                                                   str(tmp_path / "adir")))
    for args in (("status",), ("list",), ("run", "--once")):
        result = CliRunner().invoke(main, ["--config", str(broken), *args])
        assert result.exit_code == 2, (args, result.output)
        [line] = result.output.strip().splitlines()
        assert line.startswith(f"mailbot: database {tmp_path / 'adir'}: "), line


def test_review_ids_stay_and_approve_works_while_the_service_runs(
        event_db, mailbox, smtp, dovecot):  # noqa: F811
    mailbox.append(registration_mail("Otto Ott", "otto@o.example", "Gibt es eine Aufzeichnung?"))
    mailbox.append(registration_mail("Lea Lang", "lea@l.example", "Kann ich später kommen?"))
    cli(event_db, "run", "--once")
    listing = cli(event_db, "review")
    ids = {line.split()[-1]: line.split("]")[0].strip("[") for line in listing.splitlines()
           if line.startswith("[")}
    assert len(ids) == 3
    first, lea = ids["heike@awo.example"], ids["lea@l.example"]
    service = start_daemon(event_db, dovecot.password)
    try:
        assert wait_for(lambda: rows(event_db, "SELECT 1 FROM state WHERE key = "
                                               "'running_version'"))
        out = cli(event_db, "dismiss", first)
        assert out.splitlines() == [
            "marked as handled without a reply; the mail was left for the running service, "
            "which moves it at its next round"]
        later = cli(event_db, "review")
        assert f"[{first}]" not in later and f"[{lea}] " in later, "the others keep theirs"
        out = cli(event_db, "approve", lea)
        assert out.startswith("lea@l.example: waitlisted")
        assert wait_for(lambda: [e.rcpt_tos for e in smtp.envelopes] == [["lea@l.example"]])
        assert wait_for(lambda: len(mailbox.folder("INBOX")) == 1)  # Otto's waits
        moved = [m for m in mailbox.folder("Processed").values()
                 if b"lea@l.example" in m["raw"] or b"heike@awo.example" in m["raw"]]
        assert len(moved) == 2 and not [m for m in moved if b"\\Flagged" in m["flags"]], \
            "settled: moved by the service, no longer flagged"
    finally:
        stop(service)
    assert rows(event_db, "SELECT name, status FROM registrations WHERE email = "
                          "'lea@l.example'") == [("Lea Lang", "waitlisted")]


def test_preview_inbox_is_a_dry_run_of_the_real_inbox(make_config, mailbox, smtp):
    config = make_config(start="2099-05-31T10:00:00", end="2099-05-31T15:00:00")
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example",
                                     "Wird das Treffen aufgezeichnet?"))
    mailbox.append(registration_mail("Fremd", "x@y.example", to="someone@else.example"))
    before = mailbox.folder("INBOX")
    out = cli(config, "preview", "--inbox")
    lines = out.splitlines()
    assert lines[0].endswith("3 mails — what `mailbot run` would do now (a dry run: nothing "
                             "sent, moved, flagged or stored)")
    assert "  → register – Anmeldung: ‚hiermit melde ich mich an.‘" in lines, "and why"
    assert "  → would send: confirmation to anna@a.example" in lines
    assert any(line.startswith("  → left flagged for you (review) – ") for line in lines)
    assert "  → not addressed to us: left alone" in lines
    assert lines[-1] == "1 reply would be sent."
    assert mailbox.folder("INBOX") == before, "no flag, no move"
    assert not mailbox.client.folder_exists("Processed")
    assert not (config.parent / "mailbot.sqlite").exists() and smtp.envelopes == []

    cli(config, "run", "--once")  # live: Anna is registered now
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example", "ich melde mich an!"))
    snapshot = rows(config, "SELECT count(*) FROM messages")
    out = cli(config, "preview", "--inbox")
    assert "  → would send: duplicate to anna@a.example" in out.splitlines()
    assert "  → handled before: still waiting for review" in out.splitlines()
    assert rows(config, "SELECT count(*) FROM messages") == snapshot


def test_backups_do_not_outlive_their_days_or_the_retention_period(event_db):  # noqa: F811
    cli(event_db, "forget", "anna@a.example", "--yes")
    backups = event_db.parent / "backups"
    [recent] = backups.glob("mailbot-*.sqlite")
    old = backups / "mailbot-20200101-000000.sqlite"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 8 * 86400,) * 2)
    (event_db.parent / "mailbot.sqlite").unlink()  # a fresh database: its first daily check
    for suffix in ("-wal", "-shm"):
        (event_db.parent / f"mailbot.sqlite{suffix}").unlink(missing_ok=True)
    cli(event_db, "run", "--once")
    assert sorted(backups.glob("mailbot-*.sqlite")) == [recent], "the service prunes daily"

    event_db.write_text(event_db.read_text().replace("retain_days_after_event = 36500",
                                                     "retain_days_after_event = 30"))
    os.utime(recent, (time.time() - 8 * 86400,) * 2)
    with sqlite3.connect(event_db.parent / "mailbot.sqlite") as conn:  # as on the next day
        conn.execute("DELETE FROM state WHERE key = 'last_purge_check'")
    cli(event_db, "run", "--once")  # over, but a date alone deletes no backup
    assert list(backups.glob("mailbot-*.sqlite")) == [recent], \
        "an empty new database: the last backup may be all that is left"


def test_purge_after_the_retention_period_keeps_no_backup(event_db, mailbox):  # noqa: F811
    cli(event_db, "forget", "jan@berg.example", "--yes")  # a backup from before
    event_db.write_text(event_db.read_text().replace("retain_days_after_event = 36500",
                                                     "retain_days_after_event = 30"))
    out = cli(event_db, "purge").splitlines()
    assert out[0] == "No backup: the retention period is over; 1 older backup removed"
    assert out[-1].startswith("erased the personal data of 2 registrations")
    assert list((event_db.parent / "backups").glob("*.sqlite")) == []
    assert mailbox.folder("Processed") == {}
