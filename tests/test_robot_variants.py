"""No robot gets an answer (issue 20, point 7): every variant of a mail no person wrote —
RFC 3834 headers, list headers, spam verdicts, the system addresses Pigeonhole's vacation
never answers, and each header counted at every occurrence — end to end against a real
Dovecot and aiosmtpd."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main

PERSON = "k.becker@stadt-hamm.example"
LIST = "fachtag@lists.example"

# (name, sender, extra headers): each a registration as a person would write it
VARIANTS = [
    ("auto-submitted auto-replied", PERSON, "Auto-Submitted: auto-replied\r\n"),
    ("auto-submitted auto-generated", PERSON, "Auto-Submitted: auto-generated\r\n"),
    ("auto-submitted no, then auto-replied", PERSON,
     "Auto-Submitted: no\r\nAuto-Submitted: auto-replied\r\n"),
    ("precedence bulk", PERSON, "Precedence: bulk\r\n"),
    ("precedence junk", PERSON, "Precedence: junk\r\n"),
    ("precedence list", PERSON, "Precedence: list\r\n"),
    ("precedence bulk as the second header", PERSON,
     "Precedence: normal\r\nPrecedence: bulk\r\n"),
    ("list-id", PERSON, f"List-Id: Fachtag <{LIST.replace('@', '.')}>\r\n"),
    ("list-unsubscribe", PERSON, "List-Unsubscribe: <mailto:fachtag-leave@lists.example>\r\n"),
    ("x-mailing-list alone", PERSON, f"X-Mailing-List: <{LIST}>\r\n"),
    ("mailing-list (ezmlm)", PERSON, f"Mailing-List: list {LIST}; contact help@lists.example\r\n"),
    ("x-loop alone", PERSON, f"X-Loop: {LIST}\r\n"),
    ("x-autoreply", PERSON, "X-Autoreply: yes\r\n"),
    ("x-autorespond", PERSON, "X-Autorespond: yes\r\n"),
    ("x-spam-flag yes", PERSON, "X-Spam-Flag: YES\r\n"),
    ("x-spam-flag no, then yes", PERSON, "X-Spam-Flag: NO\r\nX-Spam-Flag: YES\r\n"),
    ("x-spam-status yes", PERSON, "X-Spam-Status: Yes, score=9.1 required=5.0\r\n"),
    ("x-spam yes (rspamd)", PERSON, "X-Spam: Yes\r\n"),
    ("mailer-daemon", "MAILER-DAEMON@mx.stadt-hamm.example", ""),
    ("postmaster", "postmaster@stadt-hamm.example", ""),
    ("noreply", "noreply@stadt-hamm.example", ""),
    ("no-reply", "no-reply@stadt-hamm.example", ""),
    ("owner-list", "owner-fachtag@lists.example", ""),
    ("list-owner", "fachtag-owner@lists.example", ""),
    ("list-request", "fachtag-request@lists.example", ""),
    ("list-request+tag", "fachtag-request+x@lists.example", ""),
    ("return-path of a list owner", PERSON, "Return-Path: <owner-fachtag@lists.example>\r\n"),
    ("return-path of a list's bounces", PERSON,
     "Return-Path: <fachtag-bounces+k.becker=stadt-hamm.example@lists.example>\r\n"),
    ("empty return-path", PERSON, "Return-Path: <>\r\n"),
]


def run_once(config) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("sender", "extra"), [v[1:] for v in VARIANTS],
                         ids=[v[0] for v in VARIANTS])
def test_no_robot_variant_gets_a_reply(mailbox, smtp, make_config, sender, extra):
    config = make_config()
    mailbox.append(registration_mail("Klaus Becker", sender, extra=extra))

    run_once(config)

    assert smtp.envelopes == [], "no reply to a robot, a list or spam"
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]
    [(action,)] = rows(config, "SELECT action FROM messages")
    inbox = list(mailbox.folder("INBOX").values())
    if action == "review":  # spam may be a person's after all: a human looks
        assert [m["flags"] for m in inbox] == [{b"\\Flagged"}]
    else:
        assert action == "ignore" and inbox == []


def test_the_same_mail_from_a_person_is_answered(mailbox, smtp, make_config):
    """The control: without the robot's mark the very same mail is a registration — also
    when a mail service's "bounce+…" envelope sender carried it (a web form's mail)."""
    config = make_config()
    mailbox.append(registration_mail("Klaus Becker", PERSON, extra="Precedence: normal\r\n"
                                     "X-Spam-Flag: NO\r\nAuto-Submitted: no\r\n"
                                     "Return-Path: <bounce+4f2a=stadt-hamm@mg.example>\r\n"))

    run_once(config)

    assert [e.rcpt_tos for e in smtp.envelopes] == [[PERSON]]

