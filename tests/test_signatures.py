"""Signatures as a reader sees them (plain values): the block after the closing, the
organisation line apart from jobs and offices, the name apart from "i. A." and titles."""

import pytest

from mailbot.reading.names import role_address, sender_name_from, signed_name, split_name
from mailbot.reading.signature import org_part, organisation_from, signature, split_signature


@pytest.mark.parametrize("line, name", [
    ("i. A. Marion Terhorst", "Marion Terhorst"),
    ("Im Auftrag", ""),
    ("i.V. Jens Korte", "Jens Korte"),
    ("Pfr. Thomas Brinkhege", "Thomas Brinkhege"),
    ("Pfarrerin Anne Vogt", "Anne Vogt"),
    ("Koordination Ehrenamt", ""),
    ("Kreisgeschäftsführerin", ""),
])
def test_signed_name(line, name):
    assert signed_name(line) == name


@pytest.mark.parametrize("line, org", [
    ("Vorstand | Bürgerstiftung Rheda-Wiedenbrück", "Bürgerstiftung Rheda-Wiedenbrück"),
    ("Stadt Neuss - Der Bürgermeister", "Stadt Neuss"),
    ("Märkischer Kreis – Der Landrat", "Märkischer Kreis"),
    ("Schriftführerin Heimatverein Olfen e.V.", "Heimatverein Olfen e.V."),
    ("Vorsitzender des Integrationsrates der Stadt Solingen", "Integrationsrat der Stadt Solingen"),
    ("Kreisgeschäftsführerin", None),
    ("Ehrenamtskoordination", None),
    ("Policy & Networks Officer", None),
])
def test_org_part(line, org):
    found = org_part(line)
    assert (found[0] if found else None) == org


def test_organisation_is_not_the_name_nor_the_job_and_takes_its_unit():
    sig = ["Ulrike Hesse", "Kreisgeschäftsführerin", "Der Paritätische NRW",
           "Kreisgruppe Hochsauerland", "Am Kreishaus 7 · 59872 Meschede"]
    assert organisation_from(sig, "Ulrike Hesse", "u.hesse@paritaet-nrw.org") == (
        "Der Paritätische NRW – Kreisgruppe Hochsauerland")
    assert organisation_from(["Karin Oberhaus", "Lesepaten-Netzwerk Herne"],
                             "Karin Oberhaus") == "Lesepaten-Netzwerk Herne"


def test_the_domain_decides_between_two_organisations():
    sig = ["Jens Albrecht", "Familienzentrum Lünen-Süd", "Ev. Kirchengemeinde Lünen"]
    assert organisation_from(sig, "Jens Albrecht", "j.a@familienzentrum-luenen.de") == (
        "Familienzentrum Lünen-Süd")


def test_signature_skips_phone_footer_and_ticket_lines():
    text = ("Hallo,\n\nich bin dabei.\n\nGrüße\nYusuf Demir\nVorsitzender des Beirates\n--\n"
            "Von meinem iPhone gesendet")
    assert signature(text, "Yusuf Demir") == ["Yusuf Demir", "Vorsitzender des Beirates"]
    assert split_signature(text, "Yusuf Demir")[0] == "Hallo,\n\nich bin dabei.\n"


def test_a_closing_alone_is_no_signature():
    assert split_signature("Danke!", "") == ("Danke!", ())


def test_a_postscript_after_the_signature_stays_in_the_body():
    text = "ich bin dabei.\n\nViele Grüße\nAnna Roth\n\nPS: Gibt es eine Pause?"
    body, sig = split_signature(text, "Anna Roth")
    assert sig == ("Anna Roth",) and "PS: Gibt es eine Pause?" in body


def test_role_address_takes_the_signed_name():
    assert role_address("ehrenamt@diakonie-gbd.de") and role_address("buero@x.example")
    assert not role_address("b.holtkamp@x.example")
    assert sender_name_from({}, "Kinderschutzbund Hamm", ("Bettina Holtkamp", "Koordination"),
                            "buero@kinderschutzbund-hamm.de") == "Bettina Holtkamp"
    assert split_name("Pfr. Dr. Ralf Omen") == "Ralf Omen"
