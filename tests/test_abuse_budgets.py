"""Abuse end to end (issue 13): mailbot mails nobody who did not write beyond a small,
explained budget, and forged senders cannot take the places of real people (real Dovecot
and aiosmtpd)."""

from __future__ import annotations

import csv
import email
import email.policy
import io

from click.testing import CliRunner
from conftest import MAILS, registration_mail, rows

from mailbot.cli import main


def run(config, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def once(config) -> str:
    return run(config, "run", "--once")


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def text_of(envelope) -> str:
    return parsed(envelope).get_body(("plain",)).get_content()


def by_recipient(smtp) -> dict[str, list]:
    out: dict[str, list] = {}
    for envelope in smtp.envelopes:
        out.setdefault(envelope.rcpt_tos[0], []).append(envelope)
    return out


def flagged(mailbox) -> int:
    return sum(b"\\Flagged" in m["flags"] for m in mailbox.folder("INBOX").values())


def test_a_table_of_ten_strangers_mails_none_of_them(mailbox, smtp, make_config):
    """eve@evil.example sends a Name | E-Mail table of ten people at three domains and is
    not on it herself: nobody is registered, nobody is mailed, a human looks."""
    config = make_config()
    mailbox.append((MAILS / "60_tabelle_zehn_fremde_von_eve.eml").read_bytes())

    once(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]
    [(action, reason)] = rows(config, "SELECT action, reason FROM messages")
    assert action == "review" and "10 andere Personen angemeldet" in reason
    assert flagged(mailbox) == 1


def test_im_auftrag_von_a_stranger_asks_her_and_names_who(mailbox, smtp, make_config):
    """"im Auftrag von … k.schulz@victim.example": Karin Schulz gets a mail that names who
    registered her and how to undo it — not a plain confirmation — and "abmelden" undoes."""
    config = make_config()
    mailbox.append((MAILS / "61_im_auftrag_von_fremde_adresse.eml").read_bytes())

    once(config)

    mails = by_recipient(smtp)
    assert sorted(mails) == ["eve@evil.example", "k.schulz@victim.example"]
    [to_her] = mails["k.schulz@victim.example"]
    assert parsed(to_her)["Subject"].startswith("Sie wurden angemeldet")
    body = text_of(to_her)
    assert "Eve Mallory (eve@evil.example) hat Sie" in body
    assert "„abmelden“" in body and "Auftakt21" in body, "default: the details at once"
    assert "Anmeldebestätigung" not in parsed(to_her)["Subject"]
    assert rows(config, "SELECT email, status, registered_by FROM registrations") == [
        ("k.schulz@victim.example", "confirmed", "eve@evil.example")]
    assert rows(config, "SELECT kind FROM outbox WHERE recipient = 'k.schulz@victim.example'"
                ) == [("third_party",)]
    assert "direkt angeschrieben" in text_of(mails["eve@evil.example"][0])

    smtp.envelopes.clear()
    mailbox.append(registration_mail("Karin Schulz", "k.schulz@victim.example", "abmelden"))
    once(config)

    assert rows(config, "SELECT status FROM registrations") == [("cancelled",)]
    assert [e.rcpt_tos for e in smtp.envelopes] == [["k.schulz@victim.example"]]


def test_without_details_the_stranger_is_only_asked_until_she_answers(
        mailbox, smtp, make_config):
    config = make_config(extra="\n[limits]\nothers_get_details = false\n")
    mailbox.append((MAILS / "61_im_auftrag_von_fremde_adresse.eml").read_bytes())

    once(config)

    [to_her] = by_recipient(smtp)["k.schulz@victim.example"]
    types = {p.get_content_type() for p in parsed(to_her).walk()}
    assert "text/calendar" not in types and "Auftakt21" not in text_of(to_her)
    assert "Angemeldet sind Sie erst, wenn Sie selbst zustimmen" in text_of(to_her)
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)], "no seat taken"

    smtp.envelopes.clear()
    mailbox.append(registration_mail("Karin Schulz", "k.schulz@victim.example",
                                     "Ja, ich nehme gerne teil."))
    once(config)

    assert rows(config, "SELECT status, registered_by FROM registrations") == [
        ("confirmed", None)]
    [confirmation] = smtp.envelopes
    assert "Auftakt21" in text_of(confirmation)


def colleague_mail(sender: str, colleague: str) -> bytes:
    name = sender.split("@")[0].title()
    return registration_mail(name, sender, f"ich melde mich und meine Kollegin Petra Klein "
                                           f"({colleague}) zum Auftakttreffen an.")


def test_one_sender_mails_at_most_max_others_per_day(mailbox, smtp, make_config):
    config = make_config(extra="\n[limits]\nmax_others_per_sender_per_day = 2\n")
    for i in range(3):
        mailbox.append(colleague_mail("anna@a.example", f"kollegin{i}@b.example"))

    once(config)

    strangers = [e for e in smtp.envelopes if e.rcpt_tos[0].endswith("@b.example")]
    assert len(strangers) == 2
    [(reason,)] = rows(config, "SELECT reason FROM messages WHERE action = 'review'")
    assert "max_others_per_sender_per_day" in reason
    assert rows(config, "SELECT count(*) FROM registrations WHERE email LIKE '%@b.example'"
                ) == [(2,)], "the third colleague is neither registered nor mailed"


def test_everybody_together_mails_at_most_max_others_per_hour(mailbox, smtp, make_config):
    config = make_config(extra="\n[limits]\nmax_others_per_hour = 2\n")
    for i in range(3):
        mailbox.append(colleague_mail(f"sender{i}@a{i}.example", f"kollegin{i}@b{i}.example"))

    once(config)

    assert sum(e.rcpt_tos[0].startswith("kollegin") for e in smtp.envelopes) == 2
    [(reason,)] = rows(config, "SELECT reason FROM messages WHERE action = 'review'")
    assert "max_others_per_hour" in reason


def append_forged(mailbox, lower_pass_by: str) -> None:
    """Two forged mails: the sample with dmarc=fail, and a registration whose topmost
    Authentication-Results (our server's) says fail while one further down, written by
    ``lower_pass_by``, says pass."""
    mailbox.append((MAILS / "62_gefaelschter_absender_dmarc_fail.eml").read_bytes())
    mailbox.append(registration_mail("Carl Chef", "ceo@bigcorp.example", extra=(
        "Authentication-Results: mx.isi-innovation.de; dmarc=fail header.from=bigcorp.example"
        f"\r\nAuthentication-Results: {lower_pass_by}; dmarc=pass\r\n")))


def test_forged_from_without_authserv_id_is_caught_by_the_topmost_header(
        mailbox, smtp, make_config):
    """Without authserv_id, a dmarc=fail in the topmost Authentication-Results (the one the
    receiving server writes) still sends the mail to a human; a pass further down, written
    by the forger, changes nothing."""
    config = make_config()
    append_forged(mailbox, lower_pass_by="mx.evil.example")

    once(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT action, count(*) FROM messages GROUP BY action") == [
        ("review", 2)]
    assert rows(config, "SELECT count(*) FROM registrations") == [(0,)]


def test_forged_from_with_authserv_id_believes_only_our_servers_topmost_verdict(
        mailbox, smtp, make_config):
    """With authserv_id set: our server's dmarc=fail decides, and a header the forger
    wrote further down in our server's name ("dmarc=pass") changes nothing."""
    config = make_config()
    config.write_text(config.read_text().replace(
        'processed_folder = "Processed"',
        'processed_folder = "Processed"\nauthserv_id = "mx.isi-innovation.de"'))
    append_forged(mailbox, lower_pass_by="mx.isi-innovation.de")

    once(config)

    assert smtp.envelopes == []
    assert rows(config, "SELECT action, reason FROM messages") == [
        ("review", "DMARC-Prüfung fehlgeschlagen – Absender womöglich gefälscht")] * 2


def test_a_flood_of_forged_senders_takes_no_places_and_leaves_no_row_unanswered(
        mailbox, smtp, make_config):
    """500 forged senders at one domain with capacity 300: 20 (one hour's burst budget)
    are registered and answered, 480 wait for a human, `status` says why, and the next real
    person still gets a place."""
    config = make_config(capacity=300)
    for i in range(500):
        mailbox.append(registration_mail(f"Person {i}", f"p{i}@bigcorp.example",
                                         msgid=f"<flood-{i}@bigcorp.example>"))
    mailbox.append(registration_mail("Real Person", "real@verein.example"))

    once(config)

    confirmed = {r[0] for r in rows(config, "SELECT email FROM registrations "
                                            "WHERE status = 'confirmed'")}
    answered = {r[0] for r in rows(config, "SELECT recipient FROM outbox WHERE status = 'sent'")}
    assert len(confirmed) == 21 and "real@verein.example" in confirmed
    assert confirmed == answered, "no confirmed row without its reply, no reply without a row"
    assert len(smtp.envelopes) == 21
    assert rows(config, "SELECT count(*) FROM registrations WHERE status != 'confirmed'"
                ) == [(0,)], "nobody forged on the waitlist either"
    assert rows(config, "SELECT count(*) FROM messages WHERE action = 'review' "
                        "AND reason LIKE 'Anmeldewelle%bigcorp.example%'") == [(480,)]
    status = run(config, "status")
    assert "21 confirmed of 300 places (279 free)" in status
    assert "of these 480 held as a burst of new registrations from one domain" in status


def test_a_freemail_flood_stops_at_the_reply_cap_without_unanswered_rows(
        mailbox, smtp, make_config):
    """At a freemail domain a burst is counted per address; the daily reply cap per
    domain stops it, and the mail over the cap goes to a human whole."""
    config = make_config(extra="\n[limits]\nreplies_per_domain_per_day = 5\n")
    for i in range(8):
        mailbox.append(registration_mail(f"Person {i}", f"p{i}@gmail.com"))

    once(config)

    confirmed = {r[0] for r in rows(config, "SELECT email FROM registrations")}
    assert len(confirmed) == 5 and len(smtp.envelopes) == 5
    assert confirmed == {e.rcpt_tos[0] for e in smtp.envelopes}
    assert rows(config, "SELECT count(*) FROM messages WHERE action = 'review' AND reason "
                        "LIKE 'Antwortlimit%'") == [(3,)]


FORMULAS = ['=HYPERLINK("http://evil.example","Verein")', "+49 sofort anrufen",
            "-1+1", "@SUM(1+1)*cmd|' /C calc'!A0"]


def test_formula_cells_are_text_in_all_three_exports(mailbox, smtp, make_config, tmp_path):
    config = make_config()
    mailbox.append((MAILS / "63_formel_in_organisation.eml").read_bytes())
    for i, formula in enumerate(FORMULAS[1:]):
        mailbox.append(registration_mail(
            f"Person {i}", f"p{i}@formel{i}.example",
            f"hiermit melde ich mich an.\r\n\r\nName: Person {i}\r\nE-Mail: p{i}@formel{i}"
            f".example\r\nOrganisation: {formula}"))
    once(config)
    assert len(rows(config, "SELECT 1 FROM registrations")) == 4

    for args in (["export", "--format", "csv"], ["export", "--format", "csv", "--excel"],
                 ["export", "--format", "zoom-csv"]):
        out = tmp_path / "out.csv"
        run(config, *args, "--output", str(out))
        separator = ";" if "--excel" in args else ","  # German Excel: semicolons
        cells = [c for row in csv.reader(io.StringIO(out.read_text("utf-8-sig")),
                                         delimiter=separator) for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], args
        for formula in FORMULAS:
            assert "'" + formula in cells, (args, formula)


def test_an_approved_table_asks_each_person_and_names_the_sender(mailbox, smtp, make_config):
    """After a human looked, `approve` sends what the budget held back: each person gets
    the mail naming who registered them, the sender the note."""
    config = make_config()
    mailbox.append((MAILS / "60_tabelle_zehn_fremde_von_eve.eml").read_bytes())
    once(config)

    run(config, "approve", "1")

    mails = by_recipient(smtp)
    assert len(mails) == 11 and len(mails["eve@evil.example"]) == 1
    to_karin = mails["k.schulz@victim.example"][0]
    assert "Eve Mallory (eve@evil.example) hat Sie" in text_of(to_karin)
    assert rows(config, "SELECT DISTINCT registered_by FROM registrations") == [
        ("eve@evil.example",)]
