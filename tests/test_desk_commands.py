"""The organiser's commands against a database made by a real run (Dovecot + aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main

QUESTION = ("Hallo Frau Collinet,\r\n\r\nwird das Treffen aufgezeichnet? Ich kann erst ab "
            "13 Uhr.")


def cli(config, *args, code=0):
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def event_db(mailbox, smtp, make_config):
    """Three registrations (one with umlauts), one question for review."""
    config = make_config(capacity=3)
    mailbox.append(registration_mail("Jürgen Weiß", "j.weiss@koeln.example",
                                     "ich melde mich an.\r\nOrganisation: Bürgerstiftung Köln"))
    mailbox.append(registration_mail("Jan van der Berg", "jan@berg.example"))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION))
    cli(config, "run", "--once")
    smtp.envelopes.clear()
    return config


def test_list_in_every_format(event_db):
    table = cli(event_db, "list").splitlines()
    assert table[0].split() == ["email", "name", "organisation", "status", "registered_at"]
    assert table[2].startswith("j.weiss@koeln.example  Jürgen Weiß")
    assert table[2].index("Bürgerstiftung Köln") == table[0].index("organisation"), "aligned"
    assert table[-1] == "3 people"
    data = json.loads(cli(event_db, "list", "--format", "json"))
    assert [d["email"] for d in data] == ["j.weiss@koeln.example", "jan@berg.example",
                                          "anna@a.example"]
    csv_lines = cli(event_db, "list", "--status", "confirmed", "--format", "csv").splitlines()
    assert csv_lines[0].startswith("email,name,organisation,status")
    assert len(csv_lines) == 4


def test_export_for_zoom_and_excel(event_db, tmp_path):
    text = cli(event_db, "export", "--format", "zoom-csv")
    assert text.splitlines() == [
        "Email,First Name,Last Name,Organization",
        "j.weiss@koeln.example,Jürgen,Weiß,Bürgerstiftung Köln",
        "jan@berg.example,Jan,van der Berg,",
        "anna@a.example,Anna,Arndt,"]
    target = tmp_path / "liste.csv"
    cli(event_db, "export", "--format", "csv", "--excel", "--output", str(target))
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfemail;name;organisation;status;registered_at;")
    first = data.decode("utf-8-sig").splitlines()[1].split(";")
    assert first[:4] == ["j.weiss@koeln.example", "Jürgen Weiß", "Bürgerstiftung Köln",
                         "confirmed"]
    local = cli(event_db, "list").splitlines()[2].split()[-2:]
    assert first[4] == " ".join(local), "local time, as `list` shows it"
    assert target.stat().st_mode & 0o777 == 0o600


def test_approve_registers_answers_and_moves_the_mail(event_db, smtp, mailbox):
    listing = cli(event_db, "review")
    assert "Frage – bitte persönlich beantworten" in listing
    assert "Frage: ‚wird das Treffen aufgezeichnet?‘" in listing, "the deciding sentence"
    assert "\n[4] " in listing, "the fourth mail mailbot recorded"
    out = cli(event_db, "approve", "4", "--organisation", "AWO Dortmund")
    assert out.splitlines()[0] == ("heike@awo.example: waitlisted; the mail was moved to the "
                                   "processed folder"), "capacity 3 was reached"
    [reply] = smtp.envelopes
    assert reply.rcpt_tos == ["heike@awo.example"]
    assert rows(event_db, "SELECT name, organisation, status FROM registrations "
                          "WHERE email = 'heike@awo.example'") == [
        ("Heike Wagner", "AWO Dortmund", "waitlisted")]
    assert mailbox.folder("INBOX") == {}
    moved = [m for m in mailbox.folder("Processed").values() if b"aufgezeichnet" in m["raw"]]
    assert moved and b"\\Flagged" not in moved[0]["flags"]
    assert cli(event_db, "review") == "Nothing waits for review.\n"


def test_dismiss_by_message_id_sends_nothing(event_db, smtp, mailbox):
    [(key,)] = rows(event_db, "SELECT message_id FROM messages WHERE action = 'review'")
    out = cli(event_db, "dismiss", key)
    assert out.startswith("marked as handled without a reply")
    assert smtp.envelopes == [] and mailbox.folder("INBOX") == {}
    assert rows(event_db, "SELECT action, resolved_at IS NOT NULL FROM messages "
                          "WHERE message_id = ?", key) == [("noop", 1)]


def test_add_cancel_resend_take_the_same_way_as_mail(event_db, smtp):
    assert cli(event_db, "add", "ida@x.example", "--name", "Ida Öztürk").startswith(
        "ida@x.example: waitlisted")
    assert cli(event_db, "cancel", "anna@a.example", "--yes").splitlines()[0] == (
        "anna@a.example: cancelled, ida@x.example: confirmed")
    [(uid, seq)] = rows(event_db, "SELECT ics_uid, ics_sequence FROM registrations "
                                  "WHERE email = 'ida@x.example'")
    smtp.envelopes.clear()
    assert cli(event_db, "resend", "ida@x.example").startswith(
        "confirmation sent again to ida@x.example")
    [resent] = smtp.envelopes
    msg = email.message_from_bytes(resent.content, policy=email.policy.default)
    [cal] = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert f"UID:{uid}" in cal.get_content() and f"SEQUENCE:{seq}" in cal.get_content()
    assert cli(event_db, "add", "neu@x.example", "--name", "Neu", "--no-mail").startswith(
        "neu@x.example: waitlisted")
    assert len(smtp.envelopes) == 1, "--no-mail"


def test_unknown_address_or_message_is_one_line_exit_1(event_db):
    for args in (("resend", "nobody@x.example"), ("cancel", "nobody@x.example"),
                 ("forget", "nobody@x.example"), ("approve", "17"), ("dismiss", "<no@x>")):
        out = cli(event_db, *args, code=1)
        assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


def test_add_and_edit_refuse_our_own_address_and_robots(event_db, smtp):
    """Found by the attack round: `add` registered the contact address itself (every reply
    would go to our own inbox) and robot addresses (a confirmation to mailer-daemon)."""
    for address in ("n.collinet@isi-innovation.de", "MAILER-DAEMON@x.example",
                    "no-reply@x.example"):
        out = cli(event_db, "add", address, "--name", "Jemand", "--no-mail", code=1)
        assert "not a participant" in out and len(out.strip().splitlines()) == 1, out
    before = rows(event_db, "SELECT email, status FROM registrations ORDER BY email")
    out = cli(event_db, "edit", before[0][0], "--email", "postmaster@x.example", code=1)
    assert "robot" in out
    assert rows(event_db, "SELECT email, status FROM registrations ORDER BY email") == before


def test_forget_leaves_no_trace_in_the_database_files(event_db, smtp, mailbox):
    mailbox.append(registration_mail(
        "Sekretariat", "office@koeln.example",
        "im Auftrag von Herrn Jürgen Weiß melde ich ihn an, bitte an j.weiss@koeln.example"))
    cli(event_db, "run", "--once")  # a note to the office names him; the reason too
    out = cli(event_db, "forget", "j.weiss@koeln.example", "--yes")
    assert out.splitlines()[-1].startswith("erased j.weiss@koeln.example: 1 registration, "
                                           "3 replies")
    folder = Path(event_db).parent
    for path in folder.glob("mailbot.sqlite*"):
        data = path.read_bytes()
        for needle in ("j.weiss@koeln.example", "Weiß", "Wei=C3=9F", "Jürgen"):
            assert needle.encode() not in data, (path.name, needle)
    assert "3 confirmed" not in cli(event_db, "status")


def test_purge_after_the_retention_period(event_db):
    assert cli(event_db, "purge").startswith("nothing to erase before")
    event_db.write_text(event_db.read_text().replace("retain_days_after_event = 36500",
                                                     "retain_days_after_event = 30"))
    out = cli(event_db, "purge")  # the 2021 event ended more than 30 days ago: no question
    assert "\nerased the personal data of 3 registrations (3 confirmed)" in out
    assert rows(event_db, "SELECT count(*) FROM registrations") == [(0,)]
    assert rows(event_db, "SELECT count(*) FROM messages WHERE sender IS NOT NULL") == [(0,)]
    assert rows(event_db, "SELECT count(*) FROM outbox") == [(0,)]
    quoted = rows(event_db, "SELECT reason FROM messages WHERE instr(reason, '‚') > 0")
    assert quoted and all("‚…‘" in r and "melde" not in r for (r,) in quoted), \
        "the sentences a reason quoted are gone"


def test_preview_touches_neither_network_nor_database(tmp_path, make_config):
    config = make_config()
    mail = tmp_path / "mail.eml"
    mail.write_bytes(registration_mail("Anna Arndt", "anna@a.example", QUESTION.replace(
        "wird das", "ich melde mich an. Wird das")))
    out = cli(config, "preview", str(mail))
    assert "Outcome:       register – answered and left flagged for you" in out
    assert "Anmeldung: ‚ich melde mich an.‘" in out and "‚Wird das Treffen aufgezeichnet?‘" in out
    assert "  Anna Arndt <anna@a.example>" in out
    assert "Reply 1 of 1: confirmation to anna@a.example (with calendar entry)" in out
    assert "Guten Tag Anna Arndt," in out
    assert not (config.parent / "mailbot.sqlite").exists()


def test_check_passes_against_real_servers_and_names_every_problem(event_db, tmp_path):
    out = [line for line in cli(event_db, "check", code=1).splitlines()
           if not line.startswith("  ")]  # the indented lines say what will be used
    assert [line[0] for line in out if line[0] not in "⚠!"][:4] == ["✓"] * 4, out
    assert any(line.startswith("⚠ [imap] authserv_id is not set") for line in out), \
        "a warning, not a failure: without it only the topmost header is believed"
    assert [line for line in out if line[0] not in "✓⚠"] == [
        "! [event] start: 31.05.2021 10:00 has passed — is this the right event?",
        "Valid, but please look at the lines marked ! before going live."]
    future = tmp_path / "future.toml"
    future.write_text(Path(event_db).read_text().replace("2021-05-31", "2099-05-31")
                      .replace("capacity = 3", "capacity = 2"))
    out = cli(future, "check", code=1).splitlines()
    assert [line for line in out if line.startswith("!")] == [
        "! [event] capacity: 2, but 3 people are already confirmed (nobody is moved to the "
        "waitlist)"]
    bad = tmp_path / "bad.toml"
    bad.write_text(Path(event_db).read_text()
                   .replace('timezone = "Europe/Berlin"', 'timezone = "Mars/Base"')
                   .replace('meeting_id = "845 1234 5678"\n', ""))
    lines = cli(bad, "check", code=2).splitlines()
    assert len(lines) == 2 and all(line.startswith("✗ ") for line in lines)
    assert "[event] timezone" in lines[0] and "[zoom] meeting_id: missing" in lines[1]
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(Path(event_db).read_text().replace("MAILBOT_IMAP_PASSWORD",
                                                        "WRONG_PASSWORD"))
    result = CliRunner().invoke(main, ["--config", str(wrong), "check"],
                                env={"WRONG_PASSWORD": "not-it"})
    assert result.exit_code == 2
    assert "✗ IMAP" in result.output and "login refused" in result.output


def test_add_while_the_service_handles_the_same_persons_mail_confirms_once(
        mailbox, smtp, make_config, dovecot, monkeypatch):
    """`mailbot add` in another process, at the very moment the service has read that Anna
    is not registered yet: the add waits for the service's transaction and then finds her
    registered — one registration, one calendar entry, one confirmation."""
    from mailbot.service import processor as service

    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    real_situation = service.Processor.situation
    adds = []

    def situation_then_add(self, people, *args, **kwargs):
        result = real_situation(self, people, *args, **kwargs)
        if not adds:  # the service has read; now the organiser adds the same person
            adds.append(subprocess.Popen(
                [sys.executable, "-m", "mailbot", "--config", str(config), "add",
                 "anna@a.example", "--name", "Anna Arndt"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "MAILBOT_IMAP_PASSWORD": dovecot.password}))
            try:
                adds[0].wait(timeout=3)  # without the write lock it would be done by now
            except subprocess.TimeoutExpired:
                pass
        return result

    monkeypatch.setattr(service.Processor, "situation", situation_then_add)
    cli(config, "run", "--once")
    output, _ = adds[0].communicate(timeout=30)

    assert adds[0].returncode == 0, output
    assert "anna@a.example: bereits angemeldet" in output, output
    [(uid,)] = rows(config, "SELECT ics_uid FROM registrations WHERE email = 'anna@a.example'")
    kinds = rows(config, "SELECT kind FROM outbox WHERE recipient = 'anna@a.example' "
                         "ORDER BY id")
    assert kinds == [("confirmation",), ("duplicate",)], "confirmed once, then 'already'"
    cli(config, "run", "--once")  # sends what the add queued, if the first run had not
    calendars = [part.get_content() for m in smtp.messages() for part in m.walk()
                 if part.get_content_type() == "text/calendar"]
    assert len(calendars) == 2 and all(f"UID:{uid}" in c.replace("\r\n ", "")
                                       for c in calendars), "one calendar entry"
