"""The fields and the signature of a mail (pure): ``Name:`` / ``Organisation:`` lines,
where the signature begins, and the organisation a person names (in a field, the
signature, a sentence or a correction)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from mailbot.core.text import CAPITALS, clean_text

FIELD_RE = re.compile(
    r"(?:^[ \t]*[-*•]?[ \t]*|(?<=[ \t]))"
    r"(?P<key>Vor- und Nachname|Vorname und Name|Vorname|Nachname|Familienname|Name"
    r"|Teilnehmer(?:in)?|Organisation"
    r"|Organization|Institution|Verein|Einrichtung|Träger|Arbeitgeber|Firma"
    r"|E-?Mail(?:-Adresse)?|Mail)[ \t]*:[ \t]*(?P<value>.+?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORG_KEYS = {"organisation", "organization", "institution", "verein", "einrichtung", "träger",
             "arbeitgeber", "firma"}
_CLOSING_RE = re.compile(
    r"^(?:(?:mit )?(?:freundlichen|besten|herzlichen|vielen|liebe|viele|beste|schöne|sonnige)n? "
    r"(?:grüßen|grüße|gruß|grüssen|grüsse|gruss)(?: aus (?:der |dem |den )?[\w-]+)?"
    r"|(?:herzliche |liebe |beste |viele |freundliche )?(?:grüße|grüsse)(?: aus \w+)?"
    r"|(?:best |kind |warm )?regards|best wishes|best|cheers|sincerely|yours sincerely"
    r"|mfg|lg|vg|gruß|gruss|ciao|tschüss|bis dann|danke|vielen dank|herzlichen dank"
    r"|(?:\S+ ){1,4}(?:grüße|grüßen|gruß|grüsse|grüssen|regards|wishes)"
    r"(?: aus (?:der |dem |den )?[\w-]+)?)"
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
    r"|Cercle|Fédération|Federation|Comité|Maison|Derneği|Dernek|Vakfı"
    r"|Tafel|Werkstatt|Werkstätten|Quartiersmanagement|Stadtteilbüro|Treff|Café"
    r"|(?-i:SV|TV|TuS|SC|FC|VfL|VfB|DJK|TSV|SSV|SpVgg|BSC))"
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
    # a field stands within one line and has a colon: only such lines are searched (the
    # same matches, in the same order, as in the whole text — in a fraction of the time)
    for m in FIELD_RE.finditer("\n".join(line for line in text.split("\n") if ":" in line)):
        key = m["key"].lower()
        if key in _ORG_KEYS:
            key = "organisation"
        elif key.startswith(("e-mail", "email", "mail")):
            key = "email"
        else:
            key = "first" if key == "vorname" else "name"
            if any(c.isdigit() for c in m["value"]):  # "Teilnehmer: 1 Person"
                continue
        out.setdefault(key, clean_text(m["value"], 200))
    return _full_name(out)


def _full_name(found: dict[str, str]) -> dict[str, str]:
    """A form's "Vorname:" and "Name:"/"Nachname:" fields are one name."""
    first = found.pop("first", "")
    if first and found.get("name") and first.split()[0] not in found["name"].split():
        found["name"] = f"{first} {found['name']}"
    return found


_CLOSING_AND_NAME = re.compile(  # "gruß olaf brinkmann", "LG Jana", "Cheers, Ryan"
    r"^(?:(?:viele|liebe|beste|herzliche|freundliche)\s+)?(?:grüße|grüsse|gruß|gruss|lg|vg|mfg"
    r"|cheers|best)\b[,.!]?\s+(?P<name>\w[\w'’.-]*(?:\s+\w[\w'’.-]*){0,2})$", re.IGNORECASE)
_FOOTER = re.compile(r"^(?:von meinem|gesendet (?:von|mit|über)|sent from|envoyé de|\[?ticket"
                     r"|bitte lassen sie|-{2,}\s*$|_{3,}|get outlook)", re.IGNORECASE)
_POSTSCRIPT = re.compile(r"^\s*(?:P\.?\s?S\.?|PPS)\b", re.IGNORECASE)
_SIG_LINE_MAX = 100  # a longer line is a sentence or a disclaimer, not a signature line


def _closing_at(lines: list[str]) -> int | None:
    """The line of the last closing formula among the last lines whose next line looks
    like a signature (short, not a question), or None."""
    for i in range(len(lines) - 1, max(-1, len(lines) - 30), -1):
        line = lines[i].strip()
        if not (_CLOSING_RE.match(line) or _CLOSING_AND_NAME.match(line)):
            continue
        after = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
        if (after or _CLOSING_AND_NAME.match(line)) and len(after) <= _SIG_LINE_MAX and not (
                after.endswith("?")):
            return i
    return None


def _delimiter_at(lines: list[str]) -> int | None:
    """The last "-- " line that a signature follows (not only a phone app's footer)."""
    for i in range(len(lines) - 1, max(-1, len(lines) - 16), -1):
        if lines[i].rstrip() in ("--", "-- ", "—"):
            rest = [x.strip() for x in lines[i + 1:] if x.strip()]
            if rest and not all(_FOOTER.match(x) for x in rest):
                return i
    return None


def _block(lines: list[str], start: int) -> list[str]:
    """The signature's lines from ``start``: short lines, at most twelve, without
    delimiters and phone-app footers, up to the first long line (a disclaimer)."""
    out: list[str] = []
    for line in lines[start:]:
        line = line.strip()
        if not line or line in ("--", "—") or _FOOTER.match(line):
            continue
        if len(line) > _SIG_LINE_MAX or _POSTSCRIPT.match(line) or len(out) >= 12:
            break
        out.append(line)
    return out


def _signature_at(text: str, sender_name: str) -> tuple[int, list[str]]:
    """(the line where the body ends, the signature's lines)."""
    lines = text.split("\n")
    closing = _closing_at(lines)
    if closing is not None:
        m = _CLOSING_AND_NAME.match(lines[closing].strip())
        sig = _block(lines, closing + 1)
        return closing, ([m["name"], *sig] if m and not _CLOSING_RE.match(
            lines[closing].strip()) else sig)
    delimiter = _delimiter_at(lines)
    if delimiter is not None:
        return delimiter, _block(lines, delimiter + 1)
    first = sender_name.casefold().split()[0] if sender_name.split() else ""
    if first:
        for i in range(len(lines) - 1, max(-1, len(lines) - 9), -1):
            line = lines[i].strip()
            if line.casefold().startswith(first) and not re.search(r"[@|:]", line):
                return i, _block(lines, i)
    return len(lines), []


def signature(text: str, sender_name: str = "") -> list[str]:
    """The signature as a reader sees it: the short lines after the closing formula
    ("Viele Grüße"), or after a "-- " line, else from the line with the sender's name
    among the last ones; a phone app's footer and a disclaimer are not part of it."""
    return _signature_at(text, sender_name)[1]


_ORG_IN_TEXT = re.compile(
    r"\b(?:beide|wir|ich|alle|bin|sind|arbeite|arbeiten|engagiere|engagieren)\b[^.\n]{0,60}?"
    r"\b(?:von|vom|aus|bei|beim|im|an der|am)\s+(?:der |dem |den |die |das )?"
    r"(?P<org>(?-i:[" + CAPITALS + r"])[^.\n,;:!?]{2,80}?(?:\be\.\s?V\.)?)\s*(?:[.,;:!?]|\n|$)"
    # Leichte Sprache: "Die Werkstatt heißt: Caritas-Werkstätten Niederrhein."
    r"|\b(?:verein|organisation|einrichtung|gruppe|werkstatt|initiative|firma|träger|arbeitgeber)"
    r"\s+hei(?:ß|ss)t:?\s+(?P<named>(?-i:[" + CAPITALS + r"])[^.\n;:!?]{2,80}?)\s*(?:[.;:!?]|\n|$)",
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


def organisation_after_name(text: str, name: str) -> str | None:
    """"Anmeldung: Luisa Brenken, Universität Bielefeld (Fakultät …), luisa@…" → the part
    after her name, when it is an organisation (not a job, a department or a phone)."""
    if len(name.split()) < 2 or name not in text:
        return None
    for m in re.finditer(rf"{re.escape(name)}\s*,\s*([^,\n(@]{{3,80}})", text):
        found = org_part(m[1])
        if found and found[1] >= 1:
            return found[0]
    return None


def organisation_in_text(text: str) -> str | None:
    """"Beide von der Ehrenamtsagentur Münster." → "Ehrenamtsagentur Münster"."""
    for m in _ORG_IN_TEXT.finditer(text):
        candidate = _org_words((m["org"] or m["named"]).strip())
        if _is_org(candidate):
            return candidate
    return None


_LEGAL_FORM = re.compile(r"\be\.\s?V\.|gGmbH|GmbH|\bgUG\b|Stiftung|[Vv]erband\b|[Vv]erein\b"
                         r"|\bStadt\b|\bKreis\b|Landkreis|Hochschule|Universität|Ministerium"
                         r"|Kirchengemeinde|Kirchenkreis|Pfarrei|Caritas|Diakoni\w*|\bAWO\b"
                         r"|Paritätische\w*|\bDRK\b|\bGemeinde\b|Kreisverwaltung|Stadtverwaltung")
# a job, a function or an office of the person, not the organisation (matched in a word)
_JOB_WORD = re.compile(
    r"(?:koordinat|leitung|leiter|referent|geschäftsführ|sachbearbeit|beauftragt|vorsitz"
    r"|vorstand|sekretär|assisten|mitarbeit|officer|manager|coordinator|director|head"
    r"|bürgermeister|landr[aä]t|dezernent|pfarrer|pastor|schriftführ|kassier|präsident"
    r"|berater|beratung|fachkraft|sozialarbeit|pädagog|sprecher|vertret|fachdienst"
    r"|sachgebiet|abteilung|referat\b|fachbereich|programmbereich|stabsstelle|vorzimmer"
    r"|dezernat|student|praktikant|ehrenamtlich|hauptamtlich|projekt)", re.IGNORECASE)
_ROLE_FILLER = {"der", "die", "das", "des", "für", "und", "im", "in", "am", "of", "and", "&",
                "/", "1.", "2.", "stellv.", "stv.", "i.", "a.", "ehrenamt", "engagement"}
_PART_BREAK = re.compile(r"\s+[|–·/]\s+|\s+-\s+")
_SUB_UNIT = re.compile(r"^(?:Kreisgruppe|Ortsverband|Ortsverein|Ortsgruppe|Kreisverband"
                       r"|Bezirksverband|Unterbezirk|Regionalverband|Regionalgruppe|Stadtverband)\b")
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def _is_job(part: str) -> bool:
    """ "Kreisgeschäftsführerin", "Der Landrat", "Policy & Networks Officer": every word a
    job, a function or a filler word."""
    words = [w.strip("(),.") for w in part.split()]
    if words and _JOB_WORD.search(words[-1]) and not _LEGAL_FORM.search(part):
        return True  # the head of the phrase is a job: "Policy & Networks Officer"
    return any(_JOB_WORD.search(w) for w in words) and all(
        _JOB_WORD.search(w) or w.lower() in _ROLE_FILLER or not w for w in words)


def _without_job(part: str) -> tuple[str, bool]:
    """("Heimatverein Olfen e.V.", True) from "Schriftführerin Heimatverein Olfen e.V.";
    a genitive after the job becomes the name ("des Integrationsrates" → "Integrationsrat")."""
    words = part.split()
    i = 0
    while i < len(words) - 1 and (_JOB_WORD.search(words[i]) or words[i].lower() in (
            "1.", "2.", "stellv.", "stv.")):
        i += 1
    if i == 0:
        return part, False
    rest = words[i:]
    if rest and rest[0].lower() in ("des", "der", "im", "für", "beim", "bei", "vom"):
        genitive = rest[0].lower() == "des"
        rest = rest[1:]
        if genitive and rest and len(rest[0]) > 5 and rest[0].endswith("es"):
            rest = [rest[0][:-2], *rest[1:]]
        elif genitive and rest and len(rest[0]) > 5 and rest[0].endswith("s"):
            rest = [rest[0][:-1], *rest[1:]]
    return " ".join(rest), True


def org_part(text: str) -> tuple[str, float] | None:
    """The organisation in a signature line or a table cell, with its weight: the parts
    that are jobs or offices ("Vorstand | …", "… – Der Landrat") left out."""
    parts = [p.strip(" |–-·,") for p in _PART_BREAK.split(text.strip(" |–-"))]
    kept, weight = [], 1.0
    for part in parts:
        if not part or _is_job(part):
            continue
        part, had_job = _without_job(part)
        if had_job:
            weight = 0.5
        if ORG_WORDS.search(part) and not _NOT_ORG.search(part) and len(part) <= 120:
            kept.append(part)
    if not kept:
        return None
    line = " – ".join(kept) if _LEGAL_FORM.search(" ".join(kept)) or len(kept) == 1 else kept[-1]
    return line, weight + (1 if _LEGAL_FORM.search(line) else 0)


def _domain_words(domain: str) -> list[str]:
    labels = domain.lower().rsplit(".", 1)[0].replace(".", "-").split("-")
    return [t for t in labels if len(t) >= 4]


def _same_as_domain(line: str, tokens: list[str]) -> int:
    """How many words of the address's domain the line shares ("stadt-kamen.de")."""
    words = [w for w in re.findall(r"\w+", line.lower().translate(_FOLD)) if len(w) >= 4]
    return sum(1 for t in tokens if any(
        w in t or t in w or w[:min(5, len(t))] == t[:min(5, len(t))] for w in words))


def organisation_from(lines: Sequence[str], name: str = "",
                      address: str = "") -> str | None:
    """The signature line that names an organisation, not the person, a job title, a
    department or the phone: a legal form or a public body ("e.V.", "Stiftung", "Stadt")
    and a word of the address's domain weigh most; a unit on the next line ("Kreisgruppe
    Hochsauerland") belongs to it."""
    surname = name.split()[-1].casefold() if name.split() else ""
    tokens = _domain_words(address.rpartition("@")[2]) if "@" in address else []
    best, best_score, best_at = None, 0.0, -1
    for i, line in enumerate(lines):
        line = line.strip(" |–-")
        if surname and surname in line.casefold().split():
            continue  # the person's name ("Karin Oberhaus", "J. Nienhaus")
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if re.match(r"(?:des|der|für|und|im|in der)\s+(?-i:[" + CAPITALS + r"])", following):
            line = f"{line} {following}"  # "Ministerium für …" / "des Landes NRW"
        found = org_part(line)
        if not found:
            continue
        org, score = found
        score += _same_as_domain(org, tokens) - 0.01 * i
        if score > best_score:
            best, best_score, best_at = org, score, i
    if best and best_at + 1 < len(lines) and _SUB_UNIT.match(lines[best_at + 1].strip()):
        best = f"{best} – {lines[best_at + 1].strip()}"
    return best


def looks_like_name(line: str) -> bool:
    words = line.split()
    return (1 <= len(words) <= 5 and not _NOT_ORG.search(line) and not ORG_WORDS.search(line)
            and all(w[:1].isupper() or w.rstrip(".").lower() in ("dr", "prof", "von", "van", "de",
                                                                 "zu") for w in words))


@functools.lru_cache(maxsize=16)  # parse and classify both ask, for the same mail
def split_signature(text: str, sender_name: str) -> tuple[str, tuple[str, ...]]:
    """(the body without the closing and the signature, the signature's lines). A
    postscript after the signature stays in the body: it is something the person wrote."""
    cut, sig = _signature_at(text, sender_name)
    lines = text.split("\n")
    if cut >= len(lines):
        return text, ()
    after = lines[cut + 1:]
    ps = next((i for i, line in enumerate(after) if _POSTSCRIPT.match(line)), None)
    body = "\n".join(lines[:cut] + (after[ps:] if ps is not None else []))
    return body, tuple(sig)
