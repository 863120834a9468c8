"""Plain-value tests of the people rules (reading.people): who a mail is about."""

from __future__ import annotations

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
