"""`mailbot approve` after a human looked: the limits that sent the mail to review are
waived, the people are registered and answered; when it cannot be carried out the mail
keeps waiting and the command says why (exit 1) — against the real Dovecot and aiosmtpd."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows

from mailbot.cli import main


def cli(config, *args, code=0):
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == code, result.output
    return result.output


def verband_mail(n: int) -> bytes:
    """A Verband registers ``n`` people in one mail, one line each."""
    lines = "\r\n".join(f"Person{i} Mitglied <person{i}@verband.example>" for i in range(n))
    raw = registration_mail("Vera Vorstand", "vorstand@verband.example",
                            f"hiermit melden wir folgende Personen zum Auftakttreffen an:"
                            f"\r\n\r\n{lines}")
    return raw


def test_approve_registers_a_list_beyond_the_limit_per_mail(mailbox, smtp, make_config):
    config = make_config(extra="\n[limits]\nothers_get_details = true\n"
                               "max_others_per_sender_per_day = 100\n")
    mailbox.append(verband_mail(12))
    cli(config, "run", "--once")
    [(number, reason)] = rows(config, "SELECT rowid, reason FROM messages")
    assert reason == "mehr als 10 Personen in einer Mail"
    assert smtp.envelopes == []

    out = cli(config, "approve", str(number))

    assert not out.startswith("not done"), out
    assert rows(config, "SELECT count(*) FROM registrations WHERE status = 'confirmed'") == [
        (12,)]
    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == sorted(
        [f"person{i}@verband.example" for i in range(12)] + ["vorstand@verband.example"])
    assert cli(config, "review") == "Nothing waits for review.\n"
    assert mailbox.folder("INBOX") == {}


def test_approve_that_cannot_be_done_leaves_the_mail_waiting(mailbox, smtp, make_config,
                                                            monkeypatch):
    """Whatever would still send it to review (a rule of tomorrow: here a stand-in)."""
    import mailbot.rules.policy as policy
    from mailbot.core.models import Action, Decision

    config = make_config(extra="\n[limits]\nothers_get_details = true\n")
    mailbox.append(verband_mail(12))
    cli(config, "run", "--once")
    [(number,)] = rows(config, "SELECT rowid FROM messages")
    monkeypatch.setattr(policy, "_decide", lambda *a, **k: Decision(
        Action.REVIEW, "Veranstaltung nicht lesbar"))

    out = cli(config, "approve", str(number), code=1)

    assert "not approved: Veranstaltung nicht lesbar" in out
    assert "still waits for review" in out
    assert rows(config, "SELECT action, resolved_at FROM messages") == [("review", None)]
    assert len(mailbox.folder("INBOX")) == 1 and smtp.envelopes == []


def test_a_registration_held_by_the_burst_limit_is_answered_when_approved(
        mailbox, smtp, make_config):
    config = make_config(extra="\n[limits]\nmax_new_per_domain_per_hour = 2\n")
    for i in range(3):
        mailbox.append(registration_mail(f"Kollegin{i} Stadt", f"k{i}@kommune.example"))
    cli(config, "run", "--once")
    assert len(smtp.envelopes) == 2
    [(number, reason)] = rows(config, "SELECT rowid, reason FROM messages "
                                      "WHERE action = 'review'")
    smtp.envelopes.clear()

    cli(config, "approve", str(number))

    [reply] = smtp.envelopes
    assert reply.rcpt_tos == ["k2@kommune.example"]
    assert rows(config, "SELECT status FROM registrations WHERE email = ?",
                "k2@kommune.example") == [("confirmed",)]
    assert CONTACT not in reply.rcpt_tos
