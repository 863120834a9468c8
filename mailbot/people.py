"""Who is a mail about? Participants from what a person wrote (pure).

Sources, strongest first: people listed with their addresses (numbered lists, ``Name |
E-Mail`` tables, "meine Kollegin Petra Klein (p.klein@…)"), a registration on someone's
behalf ("im Auftrag von Frau Karin Schulz … k.schulz@…"), ``Name:`` / ``Organisation:``
fields, the signature, the sender's display name. A person named without an address is
not guessed at: the mail goes to a human.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .models import Participant
from .text import ADDR_RE, ADDR_SPEC, clean_text, valid_address

_FIELD_RE = re.compile(
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
_TITLES = re.compile(
    r"^(?:(?:Dr|Prof|Dipl|Mag)\.(?:[- ]?[\w.]+\.)*\s*|(?:Frau|Herrn?|Ms|Mr|Mrs)\.?\s+)+",
    re.IGNORECASE,
)
_CAP = r"[A-ZÄÖÜŁŚŻ][\w'’.-]*"
PARTICLES = frozenset({"von", "van", "de", "der", "den", "zu", "da", "di", "du", "le", "la",
                       "ten", "ter", "vom", "zum"})  # lower-case parts of family names
_PARTICLES = "(?:" + "|".join(sorted(PARTICLES, key=len, reverse=True)) + ")"
_NAME = (rf"(?:(?:Dr|Prof)\.\s*)*{_CAP}(?:[ \t]+(?:{_PARTICLES}[ \t]+){{0,3}}{_CAP}){{0,4}}")
_PAIR = re.compile(
    rf"(?P<name>{_NAME})[ \t]*(?:[,;:|–-]|\(|<)?[ \t]*(?:E-?Mail:?[ \t]*)?"
    rf"[<(\[]?(?:mailto:)?(?P<email>{ADDR_SPEC})[>)\]]?"
)
_TABLE_ROW = re.compile(rf"^.*\|.*{ADDR_SPEC}.*$|^.*\t.*{ADDR_SPEC}.*$", re.MULTILINE)
_WITH_ME = re.compile(
    r"\b(?:ich|mich)\s+(?:und|sowie|plus)\b|\b(?:und|sowie|außer)\s+(?:ich|mich|mir)\b"
    r"|\bmit mir\b|\bneben mir\b|\bzu zweit\b|\bzu dritt\b|\bme and\b|\band I\b|\bmyself and\b"
    r"|\bmyself\b|\bmich (?:selbst|auch)\b",
    re.IGNORECASE,
)
_ON_BEHALF = re.compile(
    r"\b(?:im Auftrag (?:von|meiner|meines|unserer|unseres)|on behalf of|für (?:meine[nr]? )?"
    r"(?:Chefin|Chef|Kollegin|Kollegen|Vorgesetzte[nr]?|Geschäftsführerin|Geschäftsführer|"
    r"Vorsitzende[nr]?)\b[^.!?\n]{0,60}\b(?:anmelden|an\b))",
    re.IGNORECASE,
)
_UNADDRESSED = re.compile(
    r"\b(?:meine|meinen|unsere|unseren)\s+(?:Kolleg(?:in|en|e)|Mitarbeiter(?:in|innen)?|Chefin|Chef"
    r"|Vorsitzende[nr]?|Geschäftsführer(?:in)?)\b(?P<rest>[^.!?\n]{0,100})",
    re.IGNORECASE,
)
_NAME_AFTER_ROLE = re.compile(r"\s*,?\s*(?:Frau|Herrn?|Dr\.)?\s*[A-ZÄÖÜ][a-zäöüß]+")
_COMING = re.compile(r"\b(?:kommt|kommen|mit\b|anmelden|an\b|teilnehmen|nimmt|dabei|auch\b"
                     r"|attend|join)", re.IGNORECASE)
_ON_BEHALF_NAME = re.compile(
    rf"\b(?:im Auftrag (?:von|meiner|meines|unserer|unseres)|on behalf of)\s+"
    rf"(?:\w+\s+)?(?:Frau|Herrn?|Ms\.?|Mr\.?)?\s*(?P<name>{_NAME})",
)
_STOP = {"sie", "ich", "wir", "bitte", "hallo", "liebe", "lieber", "auch", "und", "sowie", "mit",
         "meine", "meinen", "meiner", "unsere", "unseren", "die", "der", "den", "kollegin",
         "kollege", "kollegen", "frau", "herr", "herrn", "mitarbeiterin", "mitarbeiter", "chefin",
         "chef", "vorsitzende", "vorsitzenden", "geschäftsführerin", "geschäftsführer", "leiterin",
         "leiter", "colleague", "my", "our", "please", "and", "dear", "adresse", "ihre", "seine",
         "e-mail", "email", "mail", "an", "unter", "von"}


@dataclass(frozen=True)
class Found:
    """The participants of a mail; ``registered_by`` is the sender when they registered
    somebody else; ``issue`` says why a human must look (e.g. a person without address)."""

    participants: tuple[Participant, ...]
    registered_by: str | None = None
    issue: str | None = None


_ASIDE = re.compile(r"\s*\([^)]*\)|\s+[-–|/]\s+.*$|\s*,\s*(?:Dr|Prof)\.?\s*$")


def split_name(value: str) -> str:
    """A person's name without titles or additions; "Müller, Thomas" → "Thomas Müller",
    "van der Berg, Jan" → "Jan van der Berg", "Schmidt, Anna (Caritas)" → "Anna Schmidt"."""
    value = _ASIDE.sub("", clean_text(value, 120)).strip(" ,;")
    value = _TITLES.sub("", value)
    if value.count(",") == 1:
        last, first = (_TITLES.sub("", v.strip()) for v in value.split(","))
        if last and first and all(w.lower() in PARTICLES for w in last.split()[:-1]):
            value = f"{first} {last}"
    return _TITLES.sub("", value).strip()


def fields(text: str) -> dict[str, str]:
    """``Key: value`` lines, keys lower-case; organisation synonyms merged."""
    out: dict[str, str] = {}
    for m in _FIELD_RE.finditer(text):
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


def organisation_from(lines: list[str]) -> str | None:
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


def _looks_like_name(line: str) -> bool:
    words = line.split()
    return (1 <= len(words) <= 5 and not _NOT_ORG.search(line) and not ORG_WORDS.search(line)
            and all(w[:1].isupper() or w.rstrip(".").lower() in ("dr", "prof", "von", "van", "de",
                                                                 "zu") for w in words))


_FUNCTION = re.compile(
    r"\b(?:team|sekretariat|info|büro|buero|vorzimmer|geschäftsstelle|verwaltung|office|kontakt"
    r"|anmeldung|familie|family|redaktion|poststelle|service|support|empfang|mitglieder|vorstand"
    r"|admin\w*|e\.\s?V\.|g?GmbH|stiftung|institut|zentrum|initiative)\b"
    r"|(?:netzwerk|verein|agentur|amt|büro|verband)\b", re.IGNORECASE)


def is_person(display: str, sender: str | None) -> bool:
    """A display name that names a person — not a team, an office, a family or a
    nickname ("Team Quartiersarbeit", "Info Seniorennetzwerk", "sonnenblume62")."""
    local = (sender or "").partition("@")[0].casefold()
    return bool(display) and not (
        _FUNCTION.search(display) or any(c.isdigit() for c in display)
        or display.casefold() == local or (" " not in display and display == display.lower()))


_SUBJECT_NAME = re.compile(
    r"(?:^|[-–:,]\s*|\b(?:anmeldung|teilnahme|registration|von|für|for)\s+)"
    r"(?P<name>(?-i:[A-ZÄÖÜ])[\w'’-]+(?:\s+(?-i:[A-ZÄÖÜ])[\w'’-]+){1,2})"
    r"(?:\s*(?:,|\(|–|-)\s*(?P<org>[^()]{3,80}?)\)?)?\s*$", re.IGNORECASE)


def name_from_subject(subject: str) -> tuple[str, str | None]:
    """("Maria Evers", "Tafel Gladbeck") from "Anmeldung Maria Evers, Tafel Gladbeck";
    ("", None) when the subject names nobody."""
    subject = re.sub(r"^(?:(?:re|aw|wg|fwd?)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    for m in _SUBJECT_NAME.finditer(subject):
        name = _person_name(m["name"])
        words = name.split()
        if len(words) >= 2 and not any(_NOT_A_NAME.search(w) or ORG_WORDS.search(w)
                                       or w.casefold() in _EVENT_TERMS for w in words):
            return name, (m["org"] or "").strip(" ,;–-") or None
    return "", None


_EVENT_TERMS = {"auftakttreffen", "treffen", "digitales", "digitale", "digitalen", "meeting",
                "kick-off", "landesnetzwerk", "engagement", "einladung", "online"}


def sender_name_from(found: dict[str, str], sender_name: str, sig: tuple[str, ...] | list[str],
                     sender: str | None = None, subject: str = "") -> str:
    """Name: field, else the display name — completed from the signature when the display
    name is empty or a first name only ("Lena" → "Lena Hoffmann"). A display name that is
    no person's ("Team Quartiersarbeit") gives way to the signature, then the subject."""
    if found.get("name"):
        return split_name(found["name"])
    display = split_name(sender_name)
    if not is_person(display, sender):
        signed = next((split_name(line) for line in sig[:4]
                       if _looks_like_name(split_name(line))), "")
        return signed or name_from_subject(subject)[0]
    for line in sig[:3]:
        candidate = split_name(line)
        if not _looks_like_name(candidate):
            continue
        if not display:
            return candidate
        if len(display.split()) == 1 and candidate.casefold().startswith(display.casefold()):
            return candidate
        break
    return display


_HEADER_NAMES = {"message-id", "reply-to", "return-path", "in-reply-to", "references", "from",
                 "to", "cc", "bcc", "sender", "delivered-to", "x-original-to", "kopie"}


_ROLE = re.compile(
    r"^(?:frau|herrn?|dr|prof|ms|mr|mrs|auftrag|kolleg\w*|chef\w*|\w*bürgermeister\w*|landrat"
    r"|landrätin|\w*vorsitzende\w*|geschäftsführer\w*|\w*leiter\w*|direktor\w*|präsident\w*"
    r"|pfarrer\w*|referent\w*|dezernent\w*|mitarbeiter\w*|stellvertret\w*|vorstand\w*"
    r"|sekretär\w*|koordinator\w*|beauftragte\w*|ehrenamtlich\w*|anmeldung|abmeldung|absage"
    r"|teilnahme|registration)\.?$", re.IGNORECASE)


def _person_name(value: str) -> str:
    """The name in "Kollegin Frau Dr. Petra Klein" or "Auftrag von Herrn Bürgermeister Karl
    Schulz": the capitalised words at the end, without titles, roles and filler words."""
    words = split_name(value).split()
    kept: list[str] = []
    for word in reversed(words):
        bare = word.strip(".,:;()")
        if bare.lower() in PARTICLES and kept:
            kept.insert(0, bare)
            continue
        if (not bare[:1].isupper() or bare.lower() in _STOP or _ROLE.match(bare)
                or len(kept) >= 4):
            break
        kept.insert(0, bare)
    while kept and kept[0].lower() in PARTICLES:
        kept.pop(0)
    return " ".join(kept)


def _pairs(text: str) -> list[tuple[str, str, str | None]]:
    """(name, address, organisation from a table cell) for every person listed with an
    address, in order of appearance."""
    out: list[tuple[str, str, str | None]] = []
    for row in _TABLE_ROW.finditer(text):
        cells = [c.strip() for c in re.split(r"\||\t", row[0]) if c.strip()]
        address = next((valid_address(c.strip("<>()")) for c in cells
                        if valid_address(c.strip("<>()"))), None)
        names = [c for c in cells if "@" not in c and _looks_like_name(split_name(c))]
        orgs = [c for c in cells if "@" not in c and ORG_WORDS.search(c)]
        if address and names:
            out.append((split_name(names[0]), address, orgs[0] if orgs else None))
    seen = {a for _, a, _ in out}
    for line in text.split("\n"):
        if _FIELD_RE.match(line):
            continue
        for m in _PAIR.finditer(line):
            if not (_ROSTER_LINE.match(line) or _REGISTERING.search(_sentence_at(line, m))):
                continue  # an address for invoices or questions is not a participant
            address = m["email"].lower()
            name = _person_name(m["name"])
            if address in seen or not name or name.lower() in _HEADER_NAMES:
                continue
            seen.add(address)
            out.append((name, address, None))
    return out + _pairs_in_sentences(text, seen)


_SENTENCE = re.compile(r"(?<=[^\W\d]{2}[.!?])\s+|\n\s*\n")
_CAPITALISED_RUN = re.compile(
    rf"(?:(?:Frau|Herrn?|Dr\.|Prof\.)\s+)*(?:[A-ZÄÖÜ][\w'’-]+\.?\s+(?:{_PARTICLES}\s+){{0,3}}){{1,5}}"
    r"[A-ZÄÖÜ][\w'’-]+")
_NOT_A_NAME = re.compile(r"(?:ung|heit|keit|schaft|treffen|tag|haus|büro|verein|netzwerk"
                         r"|agentur|zentrum|stelle|amt|liste|adresse|mail|link)$", re.IGNORECASE)


def _name_in(sentence: str) -> str | None:
    """The last person's name in a sentence: two to four capitalised words that are no
    title, role, organisation or common noun ("Heike Brandt", "Dr. Oliver Kranz")."""
    found = None
    for m in _CAPITALISED_RUN.finditer(sentence):
        name = _person_name(m[0])
        words = name.split()
        if len(words) >= 2 and not any(_NOT_A_NAME.search(w) or ORG_WORDS.search(w)
                                       for w in words):
            found = name
    return found


def _pairs_in_sentences(text: str, seen: set[str]) -> list[tuple[str, str, None]]:
    """A person named in a registering sentence whose address follows later in that
    sentence or in the next one ("… kommt Heike Brandt mit, Sie erreichen sie unter
    h.brandt@…"). Only one new address per sentence: anything more is not guessed."""
    out: list[tuple[str, str, None]] = []
    if text.count("@") <= len(seen) or not {a.lower() for a in ADDR_RE.findall(text)} - seen:
        return out  # most mails: no address besides those already paired
    parts = [p.replace("\n", " ") for p in _SENTENCE.split(text)]
    for i, sentence in enumerate(parts):
        if "@" not in sentence and "@" not in (parts[i + 1] if i + 1 < len(parts) else ""):
            continue
        if not _REGISTERING.search(sentence):
            continue
        name = _name_in(sentence.split("@")[0])
        if not name:
            continue
        for where in parts[i: i + 2]:
            fresh = [a.lower() for a in ADDR_RE.findall(where) if a.lower() not in seen]
            if len(set(fresh)) == 1:
                seen.add(fresh[0])
                out.append((name, fresh[0], None))
                break
            if fresh:
                break
    return out


_REGISTERING = re.compile(
    r"\b(?:anmeld\w*|melde\w*|teilnehm\w*|teil\b|nimmt|nehmen|kommt|kommen|dabei|register\w*"
    r"|attend\w*|join\w*|participa\w*|teilnehmer\w*|teilnahme|zugangsdaten|bestätigung)\b",
    re.IGNORECASE)
_SELF = re.compile(
    r"\b(?:melde|melden)\s+(?:\S+\s+){0,3}?(?:mich|uns)\b|\b(?:ich|wir)\b.{0,80}"
    r"\b(?:teilnehmen|teil\b|dabei)|\bmyself\b|\b(?:I|we)(?:'d| would)? like to (?:register"
    r"|attend|join)", re.IGNORECASE)
_ROSTER_LINE = re.compile(rf"^[ \t]*(?:\d+[.)]|[-*•])?[ \t]*{_NAME}[ \t]*[,;:|–(<-]?[ \t]*"
                          rf"[<(]?(?:mailto:)?{ADDR_SPEC}[>)]?[ \t]*[,;.]?[ \t]*$")


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


_SENTENCE_BREAK = re.compile(r"(?<=[^\W\d]{2}[.!?])\s+")  # not after "31." or "e.V."


_LIST_MARK = re.compile(r"^[ \t]*(?:\d+[.)]|[-*•])[ \t]+")


def _unpaired_list_address(body: str, paired: set[str]) -> str | None:
    """An address on a list line that no name could be paired with: rather than drop that
    person silently, the mail goes to a human."""
    for line in body.split("\n"):
        if _LIST_MARK.match(line):
            for address in ADDR_RE.findall(line):
                if address.lower() not in paired:
                    return address.lower()
    return None


def _sentence_at(line: str, m: re.Match) -> str:
    """The sentence of ``line`` in which the match stands."""
    start, end = 0, len(line)
    for brk in _SENTENCE_BREAK.finditer(line):
        if brk.end() <= m.start():
            start = brk.end()
        elif brk.start() >= m.end():
            end = brk.start()
            break
    return line[start:end]


def find(text: str, sender: str | None, sender_name: str, own: str = "",
         subject: str = "") -> Found:
    """Who the mail is about. ``own`` is our contact address: neither it nor any other
    address of our domain is a participant."""
    if sender is None:
        return Found(())
    found = fields(text)
    body, sig = split_signature(text, sender_name)
    organisation = (found.get("organisation") or organisation_correction(body)
                    or organisation_from(sig) or organisation_in_text(body))
    form_address = valid_address(found.get("email", "")) if found.get("name") else None
    name = sender_name_from(found, sender_name, sig, sender, subject)
    if not organisation and name and name == name_from_subject(subject)[0]:
        organisation = name_from_subject(subject)[1]
    me = Participant(email=form_address or sender, name=name, organisation=organisation)
    own_domain = own.lower().rpartition("@")[2]
    pairs = [p for p in _pairs(body) if p[1].rpartition("@")[2] != own_domain or not own]
    unread = _unpaired_list_address(body, {a for _, a, _ in pairs})
    if unread:
        return Found((me,), issue=f"Liste nicht vollständig lesbar ({unread})")
    others = [p for p in pairs if p[1] != me.email]
    if _ON_BEHALF.search(body):
        behalf = _on_behalf(body, others, {own.lower(), me.email}, organisation)
        if behalf:
            return Found((behalf,), registered_by=sender)
    if others:
        people = [Participant(a, n, org or organisation) for n, a, org in pairs]
        roster = any(_ROSTER_LINE.match(line) or _TABLE_ROW.match(line)
                     for line in body.split("\n"))
        if me.email not in {p.email for p in people} and (
                _WITH_ME.search(body) or (_SELF.search(body) and not roster)):
            people = [me, *people]  # "ich und meine Kollegin …": the sender comes too
        return Found(tuple(_unique(people)))
    unaddressed = _unaddressed_person(body)
    if unaddressed:
        return Found((me,), issue=f"Person ohne E-Mail-Adresse genannt ({unaddressed})")
    return Found((me,))


def _on_behalf(text: str, others: list, exclude: set[str],
               organisation: str | None) -> Participant | None:
    """The one person registered by someone else: named after "im Auftrag von", reached
    at the one address in the text that is neither the sender's nor ours. Unless stated
    otherwise, they belong to the sender's organisation (a secretary, a colleague)."""
    if len(others) == 1:
        name, address, org = others[0]
        return Participant(address, name, org or organisation)
    addresses = {a.lower() for a in ADDR_RE.findall(text)} - exclude
    m = _ON_BEHALF_NAME.search(text)
    if len(addresses) == 1 and m:
        return Participant(addresses.pop(), _person_name(m["name"]), organisation)
    return None


_NAMED_BY_TITLE = re.compile(
    r"\b(?:melde|melden)\s+(?:\S+\s+){0,2}?(?:Frau|Herrn|Herr)\s+[^.!?\n]{0,60}"
    r"|\b(?:Frau|Herr)\s+(?:(?:Dr|Prof)\.?\s+)*[A-ZÄÖÜ][\w-]+(?:\s+[A-ZÄÖÜ][\w-]+)?\s+"
    r"(?:nimmt|kommt|wird|möchte|würde)\b[^.!?\n]{0,60}"
    r"|\b(?:ich|mich)\s+(?:und|sowie)\s+(?:Frau\s+|Herrn?\s+|meine\w*\s+|unsere\w*\s+)"
    r"[^.!?\n]{0,60}")


def _unaddressed_person(text: str) -> str | None:
    """ "meine Kollegin Frau Sommer kommt auch mit", "ich melde Herrn Dr. Weber an" –
    somebody named, but no address."""
    for line in text.split("\n"):
        for m in _UNADDRESSED.finditer(line):
            rest = m["rest"]
            if ("@" in _sentence_at(line, m) or not _NAME_AFTER_ROLE.match(rest)
                    or not _COMING.search(rest)):
                continue
            return clean_text(m[0][:60], 80)
    for line in text.split("\n"):
        for m in _NAMED_BY_TITLE.finditer(line):
            if "@" not in _sentence_at(line, m):
                return clean_text(m[0][:60], 80)
    return None


def _unique(people: list[Participant]) -> list[Participant]:
    seen: set[str] = set()
    out = []
    for p in people:
        if p.email not in seen:
            seen.add(p.email)
            out.append(p)
    return out
