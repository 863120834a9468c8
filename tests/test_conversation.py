"""A conversation memory (issue 21, item 2): a later mail that gives the address a waiting
mail lacked registers that person, and the waiting mail leaves review."""

from __future__ import annotations

import datetime as dt

from mailbot.core.models import Action, Decision, Intent, Participant, Reading, Request
from mailbot.reading.followup import completion, names_spoken_of
from mailbot.rules.thread import completed, waits_for

SENDER = "d.kemper@stadt-werne.example"
WHEN = dt.datetime(2021, 5, 17, tzinfo=dt.UTC)


def request(reading: Reading, **extra) -> Request:
    return Request(key="<b@x>", people=(Participant(SENDER, "Doris Kemper"),), sender=SENDER,
                   arrival=WHEN, evidence=reading, sender_name="Doris Kemper", **extra)


def test_names_spoken_of():
    assert names_spoken_of("der Sprecher, Herr Walter Brüggemann, möchte teilnehmen.") == [
        "Walter Brüggemann"]
    assert names_spoken_of("meine Kollegin Petra Klein kommt auch") == ["Petra Klein"]


def test_an_address_sent_later_completes_the_waiting_person():
    text = "bitte melden Sie ihn mit der Adresse w.b@posteo.example an."
    assert completion(text, ["Walter Brüggemann"], SENDER) == (
        "w.b@posteo.example", "Walter Brüggemann", text)
    # by name among several waiting
    text = "Frau Klein erreichen Sie unter p.klein@x.example, bitte tragen Sie sie ein."
    assert completion(text, ["Walter Brüggemann", "Petra Klein"], SENDER)[1] == "Petra Klein"


def test_no_completion_without_a_clear_person_or_address():
    names = ["Walter Brüggemann", "Petra Klein"]
    assert completion("bitte melden Sie ihn mit w.b@posteo.example an.", names, SENDER) is None
    assert completion("melden Sie ihn mit a@x.example oder b@x.example an.", names[:1],
                      SENDER) is None
    assert completion(f"Sie erreichen mich unter {SENDER}.", names[:1], SENDER) is None
    assert completion("Die Adresse von Herrn Brüggemann ist w.b@posteo.example.", [],
                      SENDER) is None


def test_completed_only_when_the_mail_says_nothing_else():
    person = Participant("w.b@posteo.example", "Walter Brüggemann")
    sentence = "bitte melden Sie ihn mit der Adresse w.b@posteo.example an."
    plain = Reading(Intent.UNKNOWN, note=f"Adresse: ‚{sentence}‘")
    done = completed(request(plain), person, sentence)
    assert done.people == (person,) and done.evidence.intent is Intent.REGISTER
    for other in (Reading(Intent.UNKNOWN, asks=True), Reading(Intent.CANCEL),
                  Reading(Intent.UNKNOWN, elsewhere="andere Veranstaltung"),
                  Reading(Intent.UNKNOWN, note="Frage: ‚Gibt es Untertitel?‘")):
        assert completed(request(other), person, sentence) is None
    assert completed(request(plain, robot="Auto-Submitted"), person, sentence) is None
    assert completed(request(plain, suspicious="DMARC"), person, sentence) is None


def test_only_a_mail_for_review_remembers_the_names_of_others():
    review = Decision(Action.REVIEW, "Person ohne eigene Adresse")
    r = request(Reading(Intent.REGISTER))
    assert waits_for(review, r, ["Walter Brüggemann", "Brüggemann", "Kemper"]) == \
        "Walter Brüggemann"
    assert waits_for(Decision(Action.REGISTER, ""), r, ["Walter Brüggemann"]) is None
    assert waits_for(review, r, ["Doris Kemper"]) is None


def test_the_settled_waiting_mail_leaves_the_inbox_flag(mailbox, smtp, make_config):
    """Against the real Dovecot: once a later mail gave the address, the first mail is
    settled — out of `mailbot review` and no longer flagged in the inbox as waiting."""
    from pathlib import Path

    from click.testing import CliRunner
    from conftest import rows

    from mailbot.cli import main

    mails = Path(__file__).parent / "mails"
    config = make_config()

    def run(*args):
        result = CliRunner().invoke(main, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output

    mailbox.append((mails / "79a_kollege_ohne_adresse.eml").read_bytes())
    run("run", "--once")
    mailbox.append((mails / "79b_adresse_nachgereicht.eml").read_bytes())
    run("run", "--once")
    run("run", "--once")

    assert rows(config, "SELECT email FROM registrations WHERE status = 'confirmed'") == [
        ("w.brueggemann@posteo.example",)]
    assert "Seniorenbeirat" not in run("review")
    flagged = [m for m in mailbox.folder("INBOX").values() if b"\\Flagged" in m["flags"]]
    assert flagged == [], "settled: nothing waits in the inbox"
