"""Only the person herself (or the organiser) changes her row: a stranger's mail about a
registered person changes nothing of it — against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main


def run(config):
    return CliRunner().invoke(main, ["--config", str(config), "run", "--once"])


ANNA = "anna@kreis-a.example"


def signed(name: str, address: str, text: str, organisation: str) -> bytes:
    """A mail whose signature names the writer's organisation."""
    mail = registration_mail(name, address, text).decode()
    head, _, _ = mail.partition("\r\n\r\n")
    return (f"{head}\r\n\r\nGuten Tag,\r\n\r\n{text}\r\n\r\nMit freundlichen Grüßen"
            f"\r\n{name}\r\n{organisation}\r\n").encode()


@pytest.mark.parametrize("details", ["false", "true"])
def test_a_stranger_naming_a_registered_colleague_changes_nothing_of_her_row(
        mailbox, smtp, make_config, details):
    config = make_config(extra=f"\n[limits]\nothers_get_details = {details}\n")
    mailbox.append(signed("Anna Arndt", ANNA, "hiermit melde ich mich zum Auftakttreffen an.",
                          "Freiwilligenagentur Kreis A e.V."))
    assert run(config).exit_code == 0
    before = rows(config, "SELECT name, organisation, registered_by FROM registrations "
                          "WHERE email = ?", ANNA)
    assert before[0][1] == "Freiwilligenagentur Kreis A e.V."
    mailbox.append(signed(
        "Eve Evers", "eve@evil.example",
        f"meine Kollegin Anna Arndt ({ANNA}) und ich melden uns zum Auftakttreffen an.",
        "Evil Consulting GmbH"))

    result = run(config)

    assert result.exit_code == 0, result.output
    assert rows(config, "SELECT name, organisation, registered_by FROM registrations "
                        "WHERE email = ?", ANNA) == before


def test_the_person_herself_still_corrects_her_organisation(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(signed("Anna Arndt", ANNA, "hiermit melde ich mich zum Auftakttreffen an.",
                          "Freiwilligenagentur Kreis A e.V."))
    assert run(config).exit_code == 0
    mailbox.append(signed("Anna Arndt", ANNA, "hiermit melde ich mich zum Auftakttreffen an.",
                          "Caritasverband Kreis A e.V."))

    assert run(config).exit_code == 0
    assert rows(config, "SELECT organisation FROM registrations WHERE email = ?", ANNA) == [
        ("Caritasverband Kreis A e.V.",)]
