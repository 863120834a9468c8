"""The parser's short cuts (issue 21, parser speed) give what the long way gives: each is
checked against the plain computation it skips, on every mail of the corpora."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

from mailbot.core.text import clean_text
from mailbot.reading.parse import _PARSER, _headers, body_text, decode_header
from mailbot.reading.people import _PAIR, _Sentences, find
from mailbot.reading.quotes import strip_quotes
from mailbot.reading.signature import FIELD_RE, _full_name, fields

ROOT = Path(__file__).resolve().parent
MAILS = sorted(ROOT.glob("mails/**/*.eml")) + sorted((ROOT.parent / "examples" / "mail")
                                                      .glob("*.eml"))


def _texts() -> list[str]:
    return [strip_quotes(body_text(_PARSER.parsebytes(p.read_bytes()))) for p in MAILS]


def _fields_slowly(text: str) -> dict[str, str]:
    """``fields`` as it was: the pattern run over the whole text."""
    out: dict[str, str] = {}
    for m in FIELD_RE.finditer(text):
        key = m["key"].lower()
        if key in {"organisation", "organization", "institution", "verein", "einrichtung",
                   "träger", "arbeitgeber", "firma"}:
            key = "organisation"
        elif key.startswith(("e-mail", "email", "mail")):
            key = "email"
        else:
            key = "first" if key == "vorname" else "name"
            if any(c.isdigit() for c in m["value"]):
                continue
        out.setdefault(key, clean_text(m["value"], 200))
    return _full_name(out)


def test_fields_read_only_lines_with_a_colon_find_what_the_whole_text_holds():
    text = ("Hallo,\nhiermit melde ich mich an. Name: Petra Klein\n"
            "  - Organisation :  Tafel Gladbeck e.V.  \nE-Mail: p.klein@example.org\n"
            "Vorname: Petra\nTermin 10:00 Uhr\nTeilnehmer: 1 Person\n")
    assert fields(text) == _fields_slowly(text) == {
        "name": "Petra Klein", "organisation": "Tafel Gladbeck e.V.",
        "email": "p.klein@example.org"}
    texts = _texts()
    assert any(fields(t) for t in texts)  # the corpora hold forms: the check means something
    for text in texts:
        assert fields(text) == _fields_slowly(text)


def test_clean_text_skips_the_character_walk_only_for_printable_text():
    for value in ("Petra  Klein", "a\tb\nc\x00d\u200be\u2028f\xa0g", "  x   y  ", "Jürgen Groß"):
        slow = re.sub(r" {2,}", " ", "".join(
            " " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in value))
        assert clean_text(value) == slow.strip()[:200]
    for code in range(sys.maxunicode + 1):  # the rule str.isprintable stands for
        c = chr(code)
        assert c.isprintable() == (unicodedata.category(c)[0] not in "CZ" or c == " ")


def test_headers_unfold_folded_values_and_keep_the_others():
    raw = (b"From: a@example.org\r\nReceived: from x\r\n\tby y\r\nX-Note: one  line\r\n"
           b"Subject: =?utf-8?q?Anmeldung_J=C3=BCrgen?=\r\n  Gro\xc3\x9f\r\n\r\nText\r\n")
    headers, values = _headers(_PARSER.parsebytes(raw))
    assert headers["received"] == "from x by y"
    assert headers["x-note"] == "one  line"
    assert headers["subject"] == decode_header("=?utf-8?q?Anmeldung_J=C3=BCrgen?= Groß")
    assert values["received"] == ("from x by y",)


def test_pairs_are_looked_for_only_on_lines_with_an_address():
    text = ("Ich melde meine Kollegin an:\n1. Petra Klein <p.klein@example.org>\n"
            "2. Jan Jung | jan.jung@example.org\nDas Treffen beginnt um 10:00 Uhr.\n\n"
            "Viele Grüße\nAnna Berg")
    found = find(text, "a.berg@example.org", "Anna Berg")
    assert [(p.name, p.email) for p in found.participants] == [
        ("Petra Klein", "p.klein@example.org"), ("Jan Jung", "jan.jung@example.org")]


def test_sentences_of_a_line_are_found_when_first_asked():
    line = "Das ist gut. Bitte melden Sie Petra Klein p.klein@example.org an. Danke!"
    sentences = _Sentences(line)
    m = next(_PAIR.finditer(line))
    assert sentences.at(m) == "Bitte melden Sie Petra Klein p.klein@example.org an."
    assert sentences.registering(m)
