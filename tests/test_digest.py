"""The organiser's daily digest, read back from the SMTP sink."""

from __future__ import annotations

import email
import email.policy

from click.testing import CliRunner
from conftest import registration_mail, rows

from mailbot.cli import main

QUESTION = "Hallo,\r\n\r\nwird das Treffen aufgezeichnet? Ich kann erst ab 13 Uhr."


def run(config) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def digests(smtp) -> list:
    return [email.message_from_bytes(e.content, policy=email.policy.default)
            for e in smtp.envelopes if e.rcpt_tos == ["orga@isi-innovation.de"]]


def test_the_digest_goes_once_a_day_with_news_review_and_the_list(mailbox, smtp, make_config):
    config = make_config(capacity=1, extra='\n[digest]\nto = "orga@isi-innovation.de"\n'
                                           'at = "00:00"\nattach_list = true\n')
    mailbox.append(registration_mail("Jürgen Weiß", "j.weiss@koeln.example"))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION))
    run(config)
    [digest] = digests(smtp)
    assert digest["Subject"].startswith("mailbot: 2 new, 0 cancelled, 1 waiting for you – ")
    assert digest["Auto-Submitted"] == "auto-generated"
    text = digest.get_body(("plain",)).get_content()
    assert "  confirmed  Jürgen Weiß <j.weiss@koeln.example>" in text
    assert "  waitlisted Anna Arndt <anna@a.example>" in text
    assert "Registrations: 1 confirmed of 1 places (0 free), 1 waitlisted" in text
    assert "Reason:  Frage – bitte persönlich beantworten" in text
    assert "| wird das Treffen aufgezeichnet? Ich kann erst ab 13 Uhr." in text
    [attachment] = list(digest.iter_attachments())
    assert attachment.get_filename() == "teilnehmer.csv"
    csv_text = attachment.get_content()
    assert csv_text.startswith("\ufeffemail;name;") and "Jürgen Weiß" in csv_text

    mailbox.append(registration_mail("Neu Person", "neu@x.example"))
    run(config)
    run(config)
    assert len(digests(smtp)) == 1, "once a day"
    assert rows(config, "SELECT count(*) FROM outbox WHERE kind = 'digest'") == [(1,)]


def test_no_digest_without_address_or_before_its_time(mailbox, smtp, make_config):
    config = make_config(extra='\n[digest]\nto = "orga@isi-innovation.de"\nat = "23:59:59"\n')
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    run(config)  # (fails to be meaningful only in the last second of a Berlin day)
    assert digests(smtp) == []
    config = make_config(name="plain.toml")
    run(config)
    assert digests(smtp) == []


def test_forget_takes_the_digests_too(mailbox, smtp, make_config):
    """A digest lists everyone (its CSV is base64, where no search finds a name): after
    `forget`, no digest with that person stays in the outbox."""
    config = make_config(extra='\n[digest]\nto = "orga@isi-innovation.de"\nat = "00:00"\n')
    mailbox.append(registration_mail("Jürgen Weiß", "j.weiss@koeln.example"))
    run(config)
    assert rows(config, "SELECT count(*) FROM outbox WHERE kind = 'digest'") == [(1,)]
    result = CliRunner().invoke(main, ["--config", str(config), "forget",
                                       "j.weiss@koeln.example", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("erased j.weiss@koeln.example: "
                                                     "1 registration, 1 reply,")
    assert rows(config, "SELECT count(*) FROM outbox WHERE kind = 'digest'") == [(0,)]


def test_the_digest_carries_the_same_overview_as_status(mailbox, smtp, make_config):
    """The digest is the organiser's view without a terminal: what `mailbot status` says
    (here the day's sending budget) is in it too — counted before the digest itself went."""
    config = make_config(extra='\n[digest]\nto = "orga@isi-innovation.de"\nat = "00:00"\n')
    config.write_text(config.read_text().replace("[smtp]\n", "[smtp]\nmax_per_day = 500\n", 1))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    run(config)
    [digest] = digests(smtp)
    text = digest.get_body(("plain",)).get_content()
    assert "Sending budget: 499 of 500 replies left for the next 24 hours" in text
    status = CliRunner().invoke(main, ["--config", str(config), "status"]).output
    assert "Sending budget: 498 of 500 replies left for the next 24 hours" in status


def test_a_mail_a_later_address_settled_is_not_counted_as_decided_by_hand(
        mailbox, smtp, make_config):
    """The first mail of a conversation that a later address completed was settled by
    mailbot, not by the organiser: the digest does not tell her she did it."""
    import datetime as dt
    from dataclasses import replace
    from pathlib import Path

    from mailbot.config import load
    from mailbot.service.digest import build
    from mailbot.store import Store

    mails = Path(__file__).parent / "mails"
    config = make_config()
    mailbox.append((mails / "79a_kollege_ohne_adresse.eml").read_bytes())
    run(config)
    mailbox.append((mails / "79b_adresse_nachgereicht.eml").read_bytes())
    run(config)
    assert rows(config, "SELECT count(*) FROM messages WHERE resolved_at IS NOT NULL") == [
        (1,)]
    loaded = load(config)
    with Store(config.parent / "mailbot.sqlite") as store:
        digest = build(replace(loaded, digest=replace(loaded.digest, to="orga@x.example")),
                       store, dt.datetime.now(dt.UTC))
    text = email.message_from_bytes(digest.body).get_payload(0).get_payload(decode=True)
    assert "Von Hand" not in text.decode()
