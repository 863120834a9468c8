"""Conditions, other events and old threads (issue 21, item 4), as plain values."""

from __future__ import annotations

import pytest

from mailbot.core.models import Intent
from mailbot.reading.classify import classify
from mailbot.reading.conditions import anyway, conditional, firm_then, unsure
from mailbot.reading.eventfacts import EventFacts


@pytest.fixture(scope="module")
def facts(example_config):
    return EventFacts.of(example_config.event)


@pytest.mark.parametrize("sentence", [
    "Ich nehme nur teil, wenn die Präsentationen vorab verschickt werden.",
    "Ich komme, falls die Sitzung an einem anderen Tag stattfindet.",
    "Wenn das geht, würde ich mich gern anmelden.",
    "Sofern mein Dienstplan es zulässt, bin ich dabei.",
    "I would come if there is interpretation into Arabic.",
    "I will attend provided that the slides are accessible.",
    "Vorausgesetzt, es gibt Untertitel, melde ich mich an.",
    # a strong condition about places is still a condition, not the waiting list's question
    "Ich komme nur, wenn es Plätze für Menschen mit Rollstuhl in der Breakout-Gruppe gibt.",
    # German conditions with the verb first
    "Passt der Termin in meinen Dienstplan, komme ich gerne.",
    "Klappt es mit der Kinderbetreuung, bin ich dabei.",
    "Bekomme ich an dem Tag frei, melde ich mich an.",
    "Geht das, nehme ich teil.",
])
def test_a_condition_of_the_registration(sentence):
    assert conditional(sentence, sentence.lower())


@pytest.mark.parametrize("sentence", [
    "Falls ich doch nicht kann, sage ich rechtzeitig ab.",
    "Falls ich verhindert bin, melde ich mich.",
    "Ich würde mich freuen, wenn Sie mich anmelden.",
    "Ich würde gern teilnehmen, wenn noch ein Platz frei ist.",
    "Wenn das nicht klappt, komme ich trotzdem.",
    "Ich melde mich an und schicke, wenn möglich, vorab meine Fragen.",
    "Habe die Einladung vom Kreis bekommen, melde ich mich hiermit an.",
    "Ist ja super, dann komme ich.",
])
def test_not_a_condition_of_the_registration(sentence):
    assert not conditional(sentence, sentence.lower())


@pytest.mark.parametrize("sentence", [
    "Je nachdem, wie die Schicht fällt, komme ich dazu.",
    "Ob ich teilnehme, hängt noch davon ab, ob die Vertretung steht.",
    "Abhängig von der Sitzung im Rat melde ich mich an.",
    "Depending on my shift I will join.",
])
def test_it_depends_is_open(sentence):
    assert unsure(sentence.lower(), sentence)


def test_uncertain_and_anyway():
    assert unsure("allerdings steht noch nicht fest, ob ich kann.",
                  "Allerdings steht noch nicht fest, ob ich kann.")
    assert anyway("Wenn das nicht klappt, komme ich trotzdem.")
    assert not anyway("Wenn das klappt, komme ich.")


@pytest.mark.parametrize("previous, sentence, firm", [
    ("das ist eine sehr gute Nachricht, herzlichen Dank!",
     "Dann melden wir uns hiermit verbindlich an:", True),
    ("that is wonderful news, thank you so much!", "Then yes, please register me.", True),
    ("Sind noch Plätze frei?", "Dann melde ich mich hiermit gleich an.", True),
    ("Können Sie mir das zusagen?", "Dann melde ich mich hiermit verbindlich an.", False),
    ("Danke.", "Dann melde ich mich an.", False),
    ("Wenn es Untertitel gibt, komme ich.", "Dann melde ich mich hiermit an.", False),
])
def test_then_is_firm_only_after_an_answer(previous, sentence, firm):
    assert firm_then(sentence, previous) is firm


def test_conditional_registration_goes_to_a_human(facts):
    reading = classify("Anmeldung", "Ich melde mich an. Ich komme aber nur, wenn es Untertitel "
                                    "gibt.", event=facts)
    assert reading.intent is Intent.UNKNOWN
    assert reading.reason.startswith("Anmeldung unter Bedingung")


def test_a_past_event_in_small_talk_does_not_block_this_one(facts):
    reading = classify("Hallo", "schön, nach dem Fachtag in Dortmund im Februar von Ihnen zu "
                                "hören! Für das Auftakttreffen am 31. Mai melde ich mich hiermit "
                                "an.", event=facts)
    assert reading.intent is Intent.REGISTER
    assert not reading.elsewhere and not reading.note


def test_another_event_beside_a_bare_registration_blocks_it(facts):
    reading = classify("Anmeldung", "Vielen Dank für die Einladung zum Fachtag am 17. Juni. "
                                    "Ich melde mich hiermit an.", event=facts)
    assert reading.intent is Intent.REGISTER and reading.elsewhere


@pytest.mark.parametrize("subject, quoted, other", [
    ("AW: Einladung Fachtag 2020", "", True),
    ("AW: Einladung 2020", "", True),
    ("Re: Einladung", "Am 03.02.2020 um 09:14 schrieb Nathalie Collinet:", True),
    ("Re: Einladung", "Gesendet: Montag, 3. Februar 2020 09:14", True),
    ("AW: Einladung zum Auftakttreffen", "Am 03.05.2021 schrieb Nathalie Collinet:", False),
    ("Re: Anmeldung", "", False),
])
def test_an_old_or_another_events_thread(facts, subject, quoted, other):
    assert bool(facts.in_thread(subject, quoted)) is other
    reading = classify(subject, "Ja, ich nehme gerne teil.", event=facts, thread=quoted)
    assert bool(reading.elsewhere) is other
