"""The reader's safety invariants as properties (issue 12), on mails built from shuffled,
truncated and salted sentences: foreign names, other dates, questions.

- Evidence: nobody is registered or cancelled whose address the mail does not give, and the
  sender only when she speaks for herself.
- No silent loss: a mail that holds a question, a name, another date or somebody else's
  registration ends with a human (flagged), registered and flagged, or answered — never moved
  away unanswered; only a bare thank-you is put away without reply.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.core.models import Action, Situation, Status
from mailbot.reading.classify import read
from mailbot.reading.parse import parse_mail
from mailbot.rules import guard
from mailbot.rules.policy import decide

OWN = "n.collinet@isi-innovation.de"
SENDER = "p.klein@awo-dortmund.de"
WHEN = dt.datetime(2021, 5, 20, tzinfo=dt.UTC)

SELF = ["hiermit melde ich mich zum Auftakttreffen an.", "Ich nehme gerne am 31.05. teil.",
        "Bin dabei!", "I would like to register for the meeting.",
        "Leider muss ich meine Teilnahme absagen.", "Ich kann am Montag leider nicht teilnehmen.",
        "please take me off the list."]
THIRD = ["Herr Dr. Weber nimmt auch teil.", "Meine Kollegin Frau Sommer kommt auch mit.",
         "Frau Brandt muss leider absagen.", "Ich möchte Herrn Pieper anmelden, er hat keine "
         "eigene Adresse.", "Mein Kollege Jonas Berger ist auch dabei.",
         "Bitte melden Sie auch Frau Yilmaz an.", "My colleague Mr Okafor would like to join."]
DATES = ["Am 17. Juni hätte ich besser Zeit.", "Im Herbst bin ich dann in Köln.",
         "Am Dienstag geht es bei mir.", "Für den Fachtag am 3.6. melde ich mich auch an."]
QUESTIONS = ["Wird das Treffen aufgezeichnet?", "Gibt es eine Teilnahmebescheinigung?",
             "Can I bring a colleague?", "Geben Sie mir Bescheid, ob noch Plätze frei sind."]
NAMES = ["Grüßen Sie bitte Herrn Dr. Yilmaz von mir.", "Frau Okafor lässt herzlich grüßen."]
NOISE = ["Vielen Dank für die Einladung.", "Ich freue mich auf den Austausch."]
SALT = THIRD + DATES + QUESTIONS + NAMES


def mail(sentences: list[str], subject: str = "Auftakttreffen") -> bytes:
    body = "Liebe Frau Collinet,\n\n" + " ".join(sentences) + "\n\nViele Grüße\nPetra Klein"
    head = (f"From: Petra Klein <{SENDER}>\nTo: Nathalie Collinet <{OWN}>\nSubject: {subject}\n"
            f"Message-ID: <{abs(hash(body))}@awo-dortmund.de>\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n")
    return (head + "\n" + body).replace("\n", "\r\n").encode("utf-8")


@pytest.fixture(scope="module")
def event(example_config):
    return example_config.event


def outcome(raw: bytes, event, registered: bool):
    parsed = parse_mail(raw, OWN)
    current = {SENDER: Status.CONFIRMED} if registered else {}
    decision = decide(parsed, read(parsed, event), Situation(current, 1, WHEN, WHEN), event,
                      robot=guard.check(parsed, OWN))
    return parsed, decision


def acted_on(decision) -> set[str]:
    """Addresses whose row changes or who get a confirmation or cancellation."""
    return {s.participant.email for s in decision.steps
            if s.status is not None or (s.reply is not None and s.reply.value != "on_behalf")}


def flagged_or_answered(decision) -> bool:
    return (decision.action is Action.REVIEW or decision.attention
            or any(s.reply is not None for s in decision.steps))


def _check(parsed, decision, has_self: bool, salted: bool) -> None:
    text = parsed.text.casefold()
    for address in acted_on(decision):
        assert address == SENDER or address in text, f"{address} has no evidence"
    if not has_self:
        assert SENDER not in acted_on(decision), f"sender acted on: {decision.reason}"
    if salted:
        assert flagged_or_answered(decision), f"silent: {decision.action} {decision.reason}"
        assert decision.action is not Action.NOOP, decision.reason
    if decision.action in (Action.NOOP, Action.IGNORE):
        assert not salted and not decision.steps


mails = st.tuples(st.lists(st.sampled_from(SELF), max_size=2),
                  st.lists(st.sampled_from(SALT), max_size=3),
                  st.lists(st.sampled_from(NOISE), max_size=2), st.randoms(), st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mails)
def test_shuffled_and_salted_mail_keeps_the_invariants(event, drawn):
    selfs, salt, noise, rnd, registered = drawn
    parts = selfs + salt + noise
    rnd.shuffle(parts)
    parsed, decision = outcome(mail(parts), event, registered)
    _check(parsed, decision, has_self=bool(selfs), salted=bool(salt))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SALT + NOISE), min_size=1, max_size=4),
       st.integers(0, 400), st.booleans())
def test_truncated_mail_without_self_never_acts_on_the_sender(event, parts, cut, registered):
    """Cut anywhere, a mail in which the writer never speaks for herself registers and
    cancels nobody but a person given with her own address (here: nobody)."""
    text = " ".join(parts)[:cut]
    parsed, decision = outcome(mail([text]), event, registered)
    assert acted_on(decision) == set(), decision.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SELF[:4]), st.sampled_from(SALT), st.randoms())
def test_registration_with_salt_is_never_quiet(event, registration, salt, rnd):
    """A registration next to a question, a name or another date is flagged (or not done)."""
    parts = [registration, salt]
    rnd.shuffle(parts)
    _, decision = outcome(mail(parts), event, registered=False)
    assert decision.action is Action.REVIEW or decision.attention, decision.reason


def _corpus_texts() -> list[str]:
    from conftest import MAILS, SAMPLES

    texts = []
    for folder in (SAMPLES, MAILS, MAILS / "blind"):
        for path in sorted(folder.glob("*.eml")) if folder.exists() else ():
            text = parse_mail(path.read_bytes(), OWN).text
            if text.strip():
                texts.append(text)
    return texts


CORPUS_TEXTS = _corpus_texts()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CORPUS_TEXTS), st.sampled_from(QUESTIONS + DATES + NAMES + THIRD),
       st.randoms(), st.integers(20, 2000), st.booleans())
def test_real_mail_shuffled_truncated_and_salted(event, text, salt, rnd, cut, registered):
    """A real mail's lines shuffled and cut, with a question, a name or another date
    added: nobody without an address in it is acted on, and it never ends quietly."""
    lines = text.split("\n")
    rnd.shuffle(lines)
    parsed, decision = outcome(mail(["\n".join(lines)[:cut], "\n\n" + salt]), event, registered)
    text = parsed.text.casefold()
    for address in acted_on(decision):
        assert address == SENDER or address in text, f"{address} has no evidence"
    assert flagged_or_answered(decision), f"silent: {decision.action} {decision.reason}"


# -- conditions and other events (issue 21, item 4): never confirmed -------------------

CONDITIONS = ["Ich nehme aber nur teil, wenn die Folien vorab kommen.",
              "Ich komme, falls die Ratssitzung verlegt wird.",
              "Allerdings steht noch nicht fest, ob ich an dem Tag freibekomme.",
              "I will attend only if there is an interpreter.",
              "Sofern mein Dienstplan es zulässt, bin ich dabei.",
              "Vorausgesetzt, es gibt Untertitel, melde ich mich an."]
FOREIGN_EVENTS = ["Es geht um den Fachtag am 3. Juni.",
                  "Vielen Dank für die Einladung zur Regionalkonferenz in Bielefeld.",
                  "Gemeint ist die Präsenzveranstaltung in Dortmund."]
BARE = ["Ich melde mich hiermit an.", "Ich bin dabei.", "Ich nehme gerne teil."]


def confirmed(decision) -> set[str]:
    return {s.participant.email for s in decision.steps if s.status is Status.CONFIRMED}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SELF[:4]), st.sampled_from(CONDITIONS),
       st.lists(st.sampled_from(NOISE), max_size=2), st.randoms())
def test_a_registration_with_a_condition_is_never_confirmed(event, registration, condition,
                                                             noise, rnd):
    parts = [registration, condition, *noise]
    rnd.shuffle(parts)
    _, decision = outcome(mail(parts), event, registered=False)
    assert not confirmed(decision), decision.reason
    assert decision.action is Action.REVIEW, decision.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BARE), st.sampled_from(FOREIGN_EVENTS),
       st.lists(st.sampled_from(NOISE), max_size=2), st.randoms(),
       st.sampled_from(["Auftakttreffen", "AW: Einladung Fachtag 2020", "Re: Einladung"]))
def test_a_registration_whose_only_event_is_another_is_never_confirmed(
        event, registration, foreign, noise, rnd, subject):
    parts = [registration, foreign, *noise]
    rnd.shuffle(parts)
    _, decision = outcome(mail(parts, subject), event, registered=False)
    assert not confirmed(decision), decision.reason


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BARE), st.sampled_from(["Auftakttreffen", "Re: Anmeldung"]))
def test_a_reply_in_an_old_thread_is_never_confirmed(event, registration, subject):
    quoted = ("\n\nAm 03.02.2020 um 09:14 schrieb Nathalie Collinet <n.collinet@isi-innovation"
              ".de>:\n> herzlich laden wir Sie zu unserem Treffen am 14. März 2020 ein.")
    _, decision = outcome(mail([registration + quoted], subject), event, registered=False)
    assert not confirmed(decision), decision.reason


OTHERS_CANCEL = ["Frau Brandt muss leider absagen.", "Herr Özdemir kann leider nicht teilnehmen.",
                 "Bitte streichen Sie ihn von der Liste.",
                 "Bitte stornieren Sie sämtliche Anmeldungen.", "Please cancel all registrations."]
STAYING = ["Meine Kollegin Jana Ries (j.ries@awo-dortmund.de) bleibt dabei.",
           "Herr Teuber (teuber@awo-dortmund.de) nimmt weiterhin teil.",
           "Die Liste bitte an verteiler@gmx.example senden."]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(OTHERS_CANCEL), min_size=1, max_size=2),
       st.lists(st.sampled_from(STAYING + NOISE), max_size=2), st.randoms(), st.booleans())
def test_a_cancellation_acts_only_on_whom_its_sentence_names(event, cancels, salt, rnd,
                                                            registered):
    """Cancellations of others named without an address (or of everybody), salted with
    colleagues and addresses who stay: nobody is cancelled or told "not registered" —
    neither the sender nor an address the cancelling sentence does not name."""
    parts = cancels + salt
    rnd.shuffle(parts)
    parsed, decision = outcome(mail(parts, subject="Änderung"), event, registered)
    touched = {s.participant.email for s in decision.steps if s.status is Status.CANCELLED
               or (s.reply is not None and s.reply.value in ("cancellation", "not_registered"))}
    assert not touched, f"{touched}: {decision.action} {decision.reason}"
    assert flagged_or_answered(decision), decision.reason
