"""Names of people (pure): a name without titles or additions, whether a display name is a
person or a function, the sender's name from the From header, the signature or the
subject, and a name within a sentence."""

from __future__ import annotations

import re

from mailbot.core.text import CAPITALS, clean_text
from mailbot.reading.signature import ORG_WORDS, looks_like_name

_TITLES = re.compile(
    r"^(?:(?:Dr|Prof|Dipl|Mag|Pfr|Pf)\.(?:[- ]?[\w.]+\.)*\s*|(?:Frau|Herrn?|Ms|Mr|Mrs)\.?\s+"
    r"|(?:Pfarrer(?:in)?|Pastor(?:in)?|Diakon(?:in)?|Rev)\.?\s+"
    r"|(?:i\.\s?[AV]\.|ppa?\.|im Auftrag)\s*)+",  # "i. A. Monika Berger" signs for an office
    re.IGNORECASE,
)
# "i. A. Monika Berger", "Im Auftrag", "i.V.": how one signs for an office, not a name
_SIGNING_FOR = re.compile(r"^(?:i\.\s?A\.|i\.\s?V\.|ppa?\.|im auftrag|in vertretung"
                          r"|ihre?|euer|eure|deine?)(?:\s+|$)", re.IGNORECASE)
_CAP = r"[" + CAPITALS + r"][\w'’.-]*"
PARTICLES = frozenset({"von", "van", "de", "der", "den", "zu", "da", "di", "du", "le", "la",
                       "ten", "ter", "vom", "zum"})  # lower-case parts of family names
_PARTICLES = "(?:" + "|".join(sorted(PARTICLES, key=len, reverse=True)) + ")"
NAME = (rf"(?:(?:Dr|Prof)\.\s*)*{_CAP}(?:[ \t]+(?:{_PARTICLES}[ \t]+){{0,3}}{_CAP}){{0,4}}")


_STOP = {"sie", "ich", "wir", "bitte", "hallo", "liebe", "lieber", "auch", "und", "sowie", "mit",
         "meine", "meinen", "meiner", "unsere", "unseren", "die", "der", "den", "kollegin",
         "kollege", "kollegen", "frau", "herr", "herrn", "mitarbeiterin", "mitarbeiter", "chefin",
         "chef", "vorsitzende", "vorsitzenden", "geschäftsführerin", "geschäftsführer", "leiterin",
         "leiter", "colleague", "my", "our", "please", "and", "dear", "adresse", "ihre", "seine",
         "e-mail", "email", "mail", "an", "unter", "von"}


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


_FUNCTION = re.compile(
    r"\b(?:team|sekretariat|info|büro|buero|vorzimmer|geschäftsstelle|verwaltung|office|kontakt"
    r"|anmeldung|familie|family|redaktion|poststelle|service|support|empfang|mitglieder|vorstand"
    r"|admin\w*|e\.\s?V\.|g?GmbH|stiftung|institut|zentrum|initiative)\b"
    r"|(?:netzwerk|verein|agentur|amt|büro|verband)\b", re.IGNORECASE)


def is_office(name: str) -> bool:
    """A name of an office, a team, a family ("Sekretariat Bürgermeisterin", "Büro Dr.
    Lange", "Info"): no greeting by it."""
    return bool(_FUNCTION.search(name))


ROLE_LOCAL = re.compile(
    r"^(?:info|infos|ehrenamt\w*|buero|büro|vorstand|kontakt|contact|sekretariat|poststelle"
    r"|office|mail|post|team|service|support|anmeldung\w*|verwaltung|geschaeftsstelle"
    r"|zentrale|empfang|hallo|hello|mitglieder|redaktion|freiwillig\w*|engagement|ticket\w*"
    r"|helpdesk|noreply|no-reply|vorsitz\w*|leitung|kanzlei|rathaus|stadt|gemeinde|kreis"
    r"|verein|pfarrbuero|pfarrbüro|pfarramt|gemeindebuero)(?:[._-]\w+)?$", re.IGNORECASE)


def role_address(address: str | None) -> bool:
    """info@, ehrenamt@, buero@, vorstand@, a ticket system: an office's address, no
    person's (the person who wrote is named in the signature, if at all)."""
    return bool(address) and bool(ROLE_LOCAL.match((address or "").partition("@")[0]))


def signed_name(line: str) -> str:
    """The name on a signature line ("i. A. Marion Terhorst" → "Marion Terhorst"), or ""
    when the line is no name ("Im Auftrag", "Koordination Ehrenamt")."""
    candidate = split_name(_SIGNING_FOR.sub("", line.strip(), count=1))
    return candidate if candidate and looks_like_name(candidate) and not any(
        _ROLE.match(w) for w in candidate.split()) else ""


def is_person(display: str, sender: str | None) -> bool:
    """A display name that names a person — not a team, an office, a family or a
    nickname ("Team Quartiersarbeit", "Info Seniorennetzwerk", "sonnenblume62"), nor the
    name an office's address (info@, ehrenamt@) carries."""
    local = (sender or "").partition("@")[0].casefold()
    return bool(display) and not role_address(sender) and not (
        is_office(display) or any(c.isdigit() for c in display)
        or display.casefold() == local or (" " not in display and display == display.lower()))


_SUBJECT_NAME = re.compile(
    r"(?:^|[-–:,]\s*|\b(?:anmeldung|teilnahme|registration|von|für|for)\s+)"
    r"(?P<name>(?-i:[" + CAPITALS + r"])[\w'’-]+(?:\s+(?-i:[" + CAPITALS + r"])[\w'’-]+){1,2})"
    r"(?:\s*(?:,|\(|–|-)\s*(?P<org>[^()]{3,80}?)\)?)?\s*$", re.IGNORECASE)


def name_from_subject(subject: str) -> tuple[str, str | None]:
    """("Maria Evers", "Tafel Gladbeck") from "Anmeldung Maria Evers, Tafel Gladbeck";
    ("", None) when the subject names nobody."""
    subject = re.sub(r"^(?:(?:re|aw|wg|fwd?)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    for m in _SUBJECT_NAME.finditer(subject):
        name = person_name(m["name"])
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
    display = split_name(_SIGNING_FOR.sub("", sender_name.strip(), count=1))
    if not is_person(display, sender):
        return addressed_name(display, sig, sender) or name_from_subject(subject)[0]
    for line in sig[:3]:
        candidate = signed_name(line)
        if not candidate:
            continue
        if not display:
            return candidate
        if len(display.split()) == 1 and candidate.casefold().startswith(display.casefold()):
            return candidate
        break
    return display


def addressed_name(display: str, sig: tuple[str, ...] | list[str], sender: str | None) -> str:
    """The sender's name to greet them by: the display name when it names a person, else
    the person who signed ("Sekretariat Bürgermeisterin" signed "i. A. Monika Berger"),
    else "" (a neutral greeting)."""
    display = split_name(display)
    if is_person(display, sender):
        return display
    return next((n for n in map(signed_name, sig[:4]) if n), "")


_ROLE = re.compile(
    r"^(?:frau|herrn?|dr|prof|ms|mr|mrs|auftrag|kolleg\w*|chef\w*|\w*bürgermeister\w*|landrat"
    r"|landrätin|\w*vorsitzende\w*|geschäftsführer\w*|\w*leiter\w*|direktor\w*|präsident\w*"
    r"|pfarrer\w*|referent\w*|dezernent\w*|mitarbeiter\w*|stellvertret\w*|vorstand\w*"
    r"|sekretär\w*|koordinator\w*|beauftragte\w*|ehrenamtlich\w*|anmeldung|abmeldung|absage"
    r"|teilnahme|registration)\.?$", re.IGNORECASE)


def person_name(value: str) -> str:
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


_CAPITALISED_RUN = re.compile(
    r"(?:(?:Frau|Herrn?|Dr\.|Prof\.)\s+)*(?:[" + CAPITALS
    + rf"][\w'’-]+\.?\s+(?:{_PARTICLES}\s+){{0,3}}){{1,5}}"
    r"[" + CAPITALS + r"][\w'’-]+")
# common nouns by their ending ("Anmeldung", "Freiwilligenagentur") — a short word is a
# name all the same ("Jung", "Lang", "Haus" are surnames too)
_NOT_A_NAME = re.compile(r"(?:ung|heit|keit|schaft|treffen|tag|haus|büro|verein|netzwerk"
                         r"|agentur|zentrum|stelle|amt|liste|adresse|mail|link)$", re.IGNORECASE)


def name_in(sentence: str) -> str | None:
    """The last person's name in a sentence: two to four capitalised words that are no
    title, role, organisation or common noun ("Heike Brandt", "Dr. Oliver Kranz")."""
    found = None
    for m in _CAPITALISED_RUN.finditer(sentence):
        name = person_name(m[0])
        words = name.split()
        if len(words) >= 2 and not any((len(w) > 5 and _NOT_A_NAME.search(w))
                                       or ORG_WORDS.search(w) for w in words):
            found = name
    return found
