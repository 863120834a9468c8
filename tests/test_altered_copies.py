"""The same mail under its Message-ID, altered on the way (issue 20, third round): a server
that appends a footer (a virus scanner, a list), a copy re-sent with another Date — or a
crash between recording a mail and moving it while the server rewrites it. It is the mail
already answered: recorded, never answered a second time (real Dovecot and aiosmtpd)."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main
from mailbot.core.models import (
    Action,
    Decision,
    Participant,
    Plan,
    ReplyKind,
    ReplySpec,
    Status,
    Step,
)

ANNA_ID = "<anmeldung-1@a.example>"


def run(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


def answered_once_then(mailbox, smtp, config, copy: bytes) -> None:
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example", msgid=ANNA_ID))
    assert run(config).exit_code == 0
    assert len(smtp.envelopes) == 1
    mailbox.append(copy)
    result = run(config)
    assert result.exit_code == 0, result.output


def test_a_copy_with_a_footer_added_on_the_way_is_not_answered_again(mailbox, smtp,
                                                                     make_config):
    config = make_config()
    raw = registration_mail("Anna Arndt", "anna@a.example", msgid=ANNA_ID)

    answered_once_then(mailbox, smtp, config,
                       raw + b"\r\n-- \r\nGeprueft von ClamAV: virenfrei\r\n")

    assert len(smtp.envelopes) == 1, "no second reply"
    assert rows(config, "SELECT email FROM registrations") == [("anna@a.example",)]
    assert mailbox.folder("INBOX") == {}  # recorded and moved, nothing waits


def test_a_copy_with_another_date_is_not_answered_again(mailbox, smtp, make_config):
    config = make_config()
    raw = registration_mail("Anna Arndt", "anna@a.example", msgid=ANNA_ID)

    answered_once_then(mailbox, smtp, config,
                       raw.replace(b"09:00:00 +0200", b"07:00:00 +0000"))

    assert len(smtp.envelopes) == 1, "no second reply"


def test_a_form_mailer_reusing_one_id_still_registers_the_next_person(mailbox, smtp,
                                                                      make_config):
    config = make_config()
    answered_once_then(mailbox, smtp, config, registration_mail(
        "Bernd Bauer", "bernd@b.example", msgid=ANNA_ID))

    assert sorted(e.rcpt_tos[0] for e in smtp.envelopes) == ["anna@a.example",
                                                             "bernd@b.example"]


def test_only_a_copy_that_changes_nothing_is_left_unanswered():
    from mailbot.rules.triage import copy_of_handled

    anna = Participant("anna@a.example", "Anna Arndt")
    again = Plan(Decision(Action.REGISTER, "bereits angemeldet",
                          (Step(anna, None, ReplyKind.DUPLICATE),)),
                 replies=(ReplySpec(ReplyKind.DUPLICATE, anna, None, "<x@y>", None),))
    assert copy_of_handled(again).decision.action is Action.NOOP
    assert copy_of_handled(again).replies == ()
    new = Plan(Decision(Action.REGISTER, "", (Step(anna, Status.CONFIRMED,
                                                   ReplyKind.CONFIRMATION),)))
    assert copy_of_handled(new) is new
    review = Plan(Decision(Action.REVIEW, "Frage"))
    assert copy_of_handled(review) is review
