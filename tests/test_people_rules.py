"""Plain-value tests of the people rules (reading.people): who a mail is about."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbot.reading.names import name_in
from mailbot.reading.people import find

OWN = "n.collinet@isi-innovation.de"


def _emails(found) -> list[str]:
    return [p.email for p in found.participants]


def test_an_address_stated_as_her_own_is_hers_not_the_ticket_systems():
    text = ("Ich nehme gern teil.\n\nBitte tragen Sie mich mit meiner persönlichen Adresse ein "
            "– jana.pieczyk@paritaet-bochum.de –, das Infopostfach lesen mehrere.\n\n"
            "Mit freundlichen Grüßen\nJana Pieczyk\nDer Paritätische Bochum")
    found = find(text, "info@paritaet-bochum.de", "Der Paritätische Bochum", OWN)
    assert _emails(found) == ["jana.pieczyk@paritaet-bochum.de"]
    assert found.participants[0].name == "Jana Pieczyk"


def test_an_address_for_invoices_is_not_taken_as_hers():
    text = ("Ich nehme gern teil. Rechnungen bitte an buchhaltung@verein.example.\n\n"
            "Viele Grüße\nJana Pieczyk")
    found = find(text, "jana@verein.example", "Jana Pieczyk", OWN)
    assert _emails(found) == ["jana@verein.example"]


def test_a_cancellation_of_everybody_names_nobody():
    from mailbot.core.models import Intent
    from mailbot.reading.classify import classify
    reading = classify("Stornierung", "Bitte stornieren Sie umgehend sämtliche Anmeldungen "
                       "und senden Sie uns die Teilnehmerliste.")
    assert reading.intent is Intent.CANCEL and reading.others
    assert not classify("Absage", "Ich muss leider absagen.").others


def test_a_forms_first_name_and_surname_fields_are_one_name():
    from mailbot.reading.signature import fields
    assert fields("Name: Hüsing\nVorname: Elisabeth\nE-Mail: e@kreis.example")["name"] == \
        "Elisabeth Hüsing"
    assert fields("Vorname: Theresa\nNachname: Brüggemann")["name"] == "Theresa Brüggemann"
    assert fields("Name: Theresa Brüggemann\nVorname: Theresa")["name"] == "Theresa Brüggemann"

_LIST_LINES = {
    "numbered": "{n}. {name} <{address}>",
    "dash": "- {name}, {address}",
    "role": "{n}. {name}, {role}, {address}",
    "brackets": "{name} ({address})",
}
_PEOPLE = [("Petra Klein", "petra.klein"), ("Jan Jung", "jan.jung"), ("Aylin Demir", "a.demir"),
           ("Tomasz Nowak", "t.nowak"), ("Grete Lang", "grete.lang")]
_ROLES = ["Kassenwart", "Vorsitzende", "Schriftführerin", "Beisitzer"]


@pytest.mark.parametrize("second", sorted(_LIST_LINES))
def test_each_list_line_keeps_its_own_name(second):
    """A name never crosses to another line's address: "1. Petra Klein <…>" above
    "Jan Jung, Kassenwart, jan.jung@…" gave Jan's address Petra's name."""
    lines = ["1. Petra Klein <petra.klein@verein.example>",
             _LIST_LINES[second].format(n=2, name="Jan Jung", role="Kassenwart",
                                        address="jan.jung@verein.example")]
    text = "Guten Tag,\n\nwir melden an:\n" + "\n".join(lines) + "\n\nGrüße\nAnke Vogt"
    found = find(text, "anke.vogt@verein.example", "Anke Vogt", OWN)
    assert {(p.email, p.name) for p in found.participants} == {
        ("petra.klein@verein.example", "Petra Klein"), ("jan.jung@verein.example", "Jan Jung")}


@settings(max_examples=60, deadline=None)
@given(st.permutations(_PEOPLE), st.lists(st.sampled_from(sorted(_LIST_LINES)), min_size=5,
                                          max_size=5), st.sampled_from(_ROLES))
def test_a_shuffled_list_never_pairs_an_address_with_another_lines_name(people, shapes, role):
    lines = [_LIST_LINES[shape].format(n=i + 1, name=name, role=role,
                                       address=f"{local}@verein.example")
             for i, ((name, local), shape) in enumerate(zip(people, shapes, strict=True))]
    text = "Hallo,\n\nfolgende Personen melden wir an:\n" + "\n".join(lines) + "\n\nGruß\nAnke"
    found = find(text, "anke.vogt@verein.example", "Anke Vogt", OWN)
    name_of = {local: name for name, local in people}
    for person in found.participants:
        local = person.email.split("@")[0]
        if local in name_of:
            assert person.name == name_of[local]


def test_a_list_of_contacts_is_no_list_of_participants():
    text = ("Hiermit melde ich mich an.\n\nBei Rückfragen erreichen Sie unser Büro:\n"
            "- Anna Roth (Sekretariat) – anna.roth@verein.example\n"
            "- Jens Ohm, Buchhaltung – jens.ohm@verein.example\n\nGrüße\nUte Brandt")
    found = find(text, "ute.brandt@verein.example", "Ute Brandt", OWN)
    assert "anna.roth@verein.example" not in _emails(found)
    assert "jens.ohm@verein.example" not in _emails(found)


@pytest.mark.parametrize("text, name", [
    ("Außerdem kommt Aylin Çelik mit.", "Aylin Çelik"),
    ("Bitte melden Sie auch Łucja Nowak an.", "Łucja Nowak"),
    ("Und Şükrü Yıldız ist dabei.", "Şükrü Yıldız"),
])
def test_names_beginning_with_capitals_beyond_german(text, name):
    assert name_in(text) == name
