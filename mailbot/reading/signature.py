"""The fields and the signature of a mail (pure): ``Name:`` / ``Organisation:`` lines,
where the signature begins, and the organisation a person names (in a field, the
signature, a sentence or a correction)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from mailbot.core.text import clean_text

FIELD_RE = re.compile(
    r"(?:^[ \t]*[-*•]?[ \t]*|(?<=[ \t]))"
    r"(?P<key>Name|Vor- und Nachname|Vorname und Name|Teilnehmer(?:in)?|Organisation"
    r"|Organization|Institution|Verein|Einrichtung|Träger|Arbeitgeber|Firma"
    r"|E-?Mail(?:-Adresse)?|Mail)[ \t]*:[ \t]*(?P<value>.+?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORG_KEYS = {"organisation", "organization", "institution", "verein", "einrichtung", "träger",
             "arbeitgeber", "firma"}
_CLOSING_RE = re.compile(
    r"^(?:(?:mit )?(?:freundlichen|besten|herzlichen|vielen|liebe|viele|beste|schöne|sonnige)n? "
    r"(?:grüßen|grüße|gruß|grüssen|grüsse|gruss)(?: aus \w+)?"
    r"|(?:herzliche |liebe |beste |viele |freundliche )?(?:grüße|grüsse)(?: aus \w+)?"
    r"|(?:best |kind |warm )?regards|best wishes|best|cheers|sincerely|yours sincerely"
    r"|mfg|lg|vg|gruß|gruss|ciao|tschüss|bis dann|danke|vielen dank|herzlichen dank"
    r"|(?:\S+ ){1,4}(?:grüße|grüßen|gruß|grüsse|grüssen|regards|wishes))"
    r"[,.!]?\s*$",
    re.IGNORECASE,
)
ORG_WORDS = re.compile(
    r"\b(?:e\.\s?V\.|gGmbH|GmbH|gUG|Verein|Stiftung|Stadt|Kreis|Caritas|Diakonie|AWO|Lebenshilfe"
    r"|Agentur|Netzwerk|Network|Büro|Institut|Verband|Zentrum|Rat|Gemeinde|Kirche|Universität"
    r"|Hochschule|Initiative|Association|Foundation|Council|Ministerium|Landkreis|Bezirk"
    r"|Paritätische\w*|DRK|Malteser|Johanniter|Bündnis|Forum|Kolpingwerk|Landesverband"
    r"|Kirchengemeinde|Volkshochschule|VHS|Freiwilligen\w*|Ehrenamt\w*|Seniorenbüro"
    r"|Centre|Center|Club|Society|Trust|Charity|Volunteer\w*"
    r"|Cercle|Fédération|Federation|Comité|Maison|Derneği|Dernek|Vakfı)"
    r"|(?:verein|stiftung|agentur|verband|netzwerk|zentrum|rat|büro|werk|hilfe|initiative"
    r"|gemeinschaft|kreis|amt|forum|bündnis|haus)\b",
    re.IGNORECASE,
)
_NOT_ORG = re.compile(r"\b(?:Tel|Telefon|Fon|Fax|Mobil|Handy|E-?Mail|www\.|http|Straße|Str\."
                      r"|Referent\w*|Leiter\w*|Koordinator\w*|Mitarbeiter\w*|Vorsitzende\w*"
                      r"|Geschäftsführer\w*|Sachbearbeiter\w*|Beauftragte\w*|Projekt\w*leitung"
                      r"|Gesendet|Sent from|Von meinem)"
                      r"|\d{4,}|@|\+\d", re.IGNORECASE)


def fields(text: str) -> dict[str, str]:
    """``Key: value`` lines, keys lower-case; organisation synonyms merged."""
    out: dict[str, str] = {}
    for m in FIELD_RE.finditer(text):
        key = m["key"].lower()
        if key in _ORG_KEYS:
            key = "organisation"
        elif key.startswith(("e-mail", "email", "mail")):
            key = "email"
        else:
            key = "name"
            if any(c.isdigit() for c in m["value"]):  # "Teilnehmer: 1 Person"
                continue
        out.setdefault(key, clean_text(m["value"], 200))
    return out


def signature(text: str, sender_name: str = "") -> list[str]:
    """The signature: the lines after the closing formula ("Viele Grüße"), else from the
    line with the sender's name among the last ones; at most six lines."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, max(-1, len(lines) - 16), -1):
        if _CLOSING_RE.match(lines[i].strip()) or lines[i].rstrip() in ("--", "-- ", "—"):
            return [line.strip() for line in lines[i + 1 : i + 7] if line.strip()]
    first = sender_name.casefold().split()[0] if sender_name.split() else ""
    if first:
        for i in range(len(lines) - 1, max(-1, len(lines) - 9), -1):
            line = lines[i].strip()
            if line.casefold().startswith(first) and not re.search(r"[@|:]", line):
                return [line.strip() for line in lines[i : i + 6] if line.strip()]
    return []


_ORG_IN_TEXT = re.compile(
    r"\b(?:beide|wir|ich|alle|bin|sind)\b[^.\n]{0,40}?\b(?:von|vom|aus|bei|beim|im)\s+"
    r"(?:der |dem |den |die |das )?"
    r"(?P<org>(?-i:[A-ZÄÖÜ])[^.\n,;:!?]{2,80}?(?:\be\.\s?V\.)?)\s*(?:[.,;:!?]|\n|$)",
    re.IGNORECASE,
)
# one's own registration corrected: "please put me down as …", "meine Organisation ist jetzt …"
_ORG_CORRECTION = re.compile(
    r"\b(?:put|list|register|sign)\s+me\s+(?:down\s+|up\s+)?(?:as|for|with)\s+(?:the\s+)?"
    r"|\bmy\s+organi[sz]ation\s+is\s+(?:now\s+)?(?:the\s+)?"
    r"|\b(?:meine\s+organisation|mein\s+verein|meine\s+einrichtung)\s+ist\s+(?:jetzt\s+|nun\s+)?"
    r"(?:die\s+|der\s+|das\s+)?"
    r"|\bbin\s+(?:jetzt|nun|inzwischen|seit\s+\S+(?:\s+\S+)?)\s+(?:aber\s+)?(?:bei|beim|im)\s+"
    r"(?:der\s+|dem\s+)?", re.IGNORECASE)
_EVENT_WORDS = re.compile(r"treffen|veranstaltung|termin|tagung|workshop|meeting|event|zoom",
                          re.IGNORECASE)
_ORG_JOINERS = {"für", "der", "des", "und", "am", "an", "de", "du", "la", "e.V.", "e.", "V.",
                "of", "the", "for", "and", "-", "–", "&"}


def _org_words(candidate: str) -> str:
    """The organisation at the start of a phrase: capitalised words and their joiners
    ("Hospizverein Unna aktiv und dort …" → "Hospizverein Unna")."""
    kept: list[str] = []
    for word in candidate.split():
        if word[:1].isupper() or word in _ORG_JOINERS or word[:1].isdigit():
            kept.append(word)
        else:
            break
    while kept and kept[-1] in _ORG_JOINERS - {"e.V.", "V."}:
        kept.pop()
    return " ".join(kept).strip(" ,;–-")


def _is_org(candidate: str) -> bool:
    return bool(candidate and ORG_WORDS.search(candidate) and not _NOT_ORG.search(candidate)
                and not _EVENT_WORDS.search(candidate))


def organisation_correction(text: str) -> str | None:
    """ "please put me down as Caritas Essen" → "Caritas Essen": a correction of one's own
    registration names the organisation that counts now."""
    low = text.lower()
    if not any(w in low for w in ("put", "list", "regist", "sign", "organi", "verein",
                                  "einrichtung", "bin ")):
        return None
    for m in _ORG_CORRECTION.finditer(text):
        candidate = _org_words(text[m.end(): m.end() + 120].split("\n")[0].split(" instead")[0]
                               .split(" statt")[0].rstrip(".!"))
        if _is_org(candidate):
            return candidate
    return None


def organisation_in_text(text: str) -> str | None:
    """"Beide von der Ehrenamtsagentur Münster." → "Ehrenamtsagentur Münster"."""
    for m in _ORG_IN_TEXT.finditer(text):
        candidate = _org_words(m["org"].strip())
        if _is_org(candidate):
            return candidate
    return None


_LEGAL_FORM = re.compile(r"\be\.\s?V\.|gGmbH|GmbH|\bgUG\b|Stiftung|[Vv]erband\b|[Vv]erein\b"
                         r"|\bStadt\b|\bKreis\b|Landkreis|Hochschule|Universität|Ministerium")


def organisation_from(lines: Sequence[str]) -> str | None:
    """The signature line that names an organisation (not the job title or phone);
    a line with a legal form or a public body ("e.V.", "Stiftung", "Stadt") wins."""
    best, best_score = None, 0.0
    for i, line in enumerate(lines):
        line = line.strip(" |–-")
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if re.match(r"(?:des|der|für|und|im|in der)\s+(?-i:[A-ZÄÖÜ])", following):
            line = f"{line} {following}"  # "Ministerium für …" / "des Landes NRW"
        score = 1.0
        job = _JOB_TITLE.match(line)
        if job:  # "Leitung Ehrenamtsbüro Solingen": the office, but only if nothing better
            line, score = line[job.end():], 0.5
        if not ORG_WORDS.search(line) or _NOT_ORG.search(line) or len(line) > 120:
            continue
        score += 1 if _LEGAL_FORM.search(line) else 0
        if score > best_score:
            best, best_score = line, score
    return best


_JOB_TITLE = re.compile(r"^(?:Leitung|Leiter(?:in)?|Koordination|Koordinator(?:in)?|Referent(?:in)?"
                        r"|Geschäftsführ\w*|Vorsitzende\w*|Mitarbeiter(?:in)?|Sachbearbeit\w*"
                        r"|Projektleitung|Fachbereich|Programmbereich|Stabsstelle|Abteilung"
                        r"|Referat)\b\s*(?:de[rs]\s+|im\s+|für\s+)?")


def looks_like_name(line: str) -> bool:
    words = line.split()
    return (1 <= len(words) <= 5 and not _NOT_ORG.search(line) and not ORG_WORDS.search(line)
            and all(w[:1].isupper() or w.rstrip(".").lower() in ("dr", "prof", "von", "van", "de",
                                                                 "zu") for w in words))


@functools.lru_cache(maxsize=16)  # parse and classify both ask, for the same mail
def split_signature(text: str, sender_name: str) -> tuple[str, tuple[str, ...]]:
    """(the body without the signature, the signature's lines)."""
    sig = tuple(signature(text, sender_name))
    if not sig:
        return text, ()
    lines = text.rstrip().split("\n")
    cut = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == sig[0]:
            cut = i
            break
    body = "\n".join(lines[:cut])
    body = re.sub(r"\n[^\n]*\Z", "", body) if _CLOSING_RE.match(
        body.rsplit("\n", 1)[-1].strip()) else body
    return body, sig
