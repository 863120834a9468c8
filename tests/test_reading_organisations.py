"""Where a person says her organisation in the body (issue 21, item 3) — sentences written
for this test, none taken from a corpus."""

from __future__ import annotations

import pytest

from mailbot.reading.signature import organisation_after_name, organisation_in_text


@pytest.mark.parametrize("text, organisation", [
    ("Ich bin seit Jahren ehrenamtlich bei der Dürener Tafel aktiv.", "Dürener Tafel"),
    ("ich bin Ali Kaya, Übungsleiter (ehrenamtlich) beim TuS Eintracht Hagen.",
     "TuS Eintracht Hagen"),
    ("Ich arbeite im Quartiersmanagement Hochlarmark.", "Quartiersmanagement Hochlarmark"),
    ("Ich arbeite in einer Werkstatt. Die Werkstatt heißt: Lebenshilfe-Werkstätten Kleve.",
     "Lebenshilfe-Werkstätten Kleve"),
    ("Ich studiere an der Universität Paderborn.", "Universität Paderborn"),
])
def test_an_organisation_said_in_a_sentence(text, organisation):
    assert organisation_in_text(text) == organisation


@pytest.mark.parametrize("text, name, organisation", [
    ("Anmeldung: Mara Lenz, Hochschule Niederrhein (Projekt Quartier), mara.lenz@hs.example",
     "Mara Lenz", "Hochschule Niederrhein"),
    ("Bitte anmelden: Uwe Pohl, Stadt Lünen, Stabsstelle Ehrenamt.", "Uwe Pohl", "Stadt Lünen"),
    ("Bitte anmelden: Uwe Pohl, Sachbearbeiter, Tel. 0231 1234.", "Uwe Pohl", None),
    ("Uwe Pohl, 0231 1234", "Uwe Pohl", None),
])
def test_the_organisation_after_her_name(text, name, organisation):
    assert organisation_after_name(text, name) == organisation
