"""Who is a mail about? Participants from what a person wrote (pure).

Sources, strongest first: people listed with their addresses (numbered lists, ``Name |
E-Mail`` tables, "meine Kollegin Petra Klein (p.klein@…)"), a registration on someone's
behalf ("im Auftrag von Frau Karin Schulz … k.schulz@…"), ``Name:`` / ``Organisation:``
fields, the signature, the sender's display name. A person named without an address is
not guessed at: the mail goes to a human.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from mailbot.core.models import Participant
from mailbot.core.text import ADDR_RE, ADDR_SPEC, CAPITALS, clean_text, valid_address
from mailbot.reading.names import (
    NAME,
    PARTICLES,  # noqa: F401
    is_person,  # noqa: F401
    name_from_subject,
    name_in,
    person_name,
    role_address,
    sender_name_from,
)
from mailbot.reading.signature import (
    FIELD_RE,
    fields,
    organisation_after_name,
    organisation_correction,
    organisation_from,
    organisation_in_text,
    signature,  # noqa: F401
    split_signature,
)
from mailbot.reading.tables import is_table_row, stacked_pairs, table_pairs

_PAIR = re.compile(
    rf"(?P<name>{NAME})[ \t]*(?:[,;:|–-]|\(|<)?[ \t]*(?:E-?Mail:?[ \t]*)?"
    rf"[<(\[]?(?:mailto:)?(?P<email>{ADDR_SPEC})[>)\]]?"
)
MAX_ADDRESSES = 200  # addresses a mail may name; with more, a human reads it (bounded work)
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
_NAME_AFTER_ROLE = re.compile(r"\s*,?\s*(?:Frau|Herrn?|Dr\.)?\s*[" + CAPITALS + r"][a-zäöüß]+")
_COMING = re.compile(r"\b(?:kommt|kommen|mit\b|anmelden|an\b|teilnehmen|nimmt|dabei|auch\b"
                     r"|attend|join)", re.IGNORECASE)
_ON_BEHALF_NAME = re.compile(
    rf"\b(?:im Auftrag (?:von|meiner|meines|unserer|unseres)|on behalf of)\s+"
    rf"(?:\w+\s+)?(?:Frau|Herrn?|Ms\.?|Mr\.?)?\s*(?P<name>{NAME})",
)


@dataclass(frozen=True)
class Found:
    """The participants of a mail; ``registered_by`` is the sender when they registered
    somebody else; ``issue`` says why a human must look (e.g. a person without address)."""

    participants: tuple[Participant, ...]
    registered_by: str | None = None
    issue: str | None = None


# a cancellation or registration of everybody ("sämtliche Anmeldungen", "alle stornieren"):
# it names nobody, least of all the sender
EVERYONE = re.compile(
    r"\b(?:sämtliche|alle)\s+(?:\w+\s+){0,2}?(?:Anmeldungen|Teilnehmer\w*|Teilnehmende\w*"
    r"|Registrierungen|Buchungen)\b|\balle\s+(?:stornieren|abmelden|streichen|löschen)\b"
    r"|\b(?:all|every)\s+(?:\w+\s+)?(?:registrations|participants|attendees)\b|\beveryone\b",
    re.IGNORECASE)


_HEADER_NAMES = {"message-id", "reply-to", "return-path", "in-reply-to", "references", "from",
                 "to", "cc", "bcc", "sender", "delivered-to", "x-original-to", "kopie"}


def _pairs(text: str) -> list[tuple[str, str, str | None]]:
    """(name, address, organisation from a table cell) for every person listed with an
    address, in order of appearance."""
    out: list[tuple[str, str, str | None]] = []
    out += table_pairs(text)
    out += [p for p in stacked_pairs(text) if p[1] not in {a for _, a, _ in out}]
    seen = {a for _, a, _ in out}
    examined = 0
    for line in text.split("\n"):
        if "@" not in line or FIELD_RE.match(line):
            continue  # a pair holds an address: most lines are passed over at once
        roster, sentences = _ROSTER_LINE.match(line), _Sentences(line)
        for m in _PAIR.finditer(line):
            examined += 1
            if examined > MAX_ADDRESSES:
                return out  # find() has sent such a mail to a human already
            if not (roster or sentences.registering(m)):
                continue  # an address for invoices or questions is not a participant
            address = m["email"].lower()
            name = _fuller(_before_role(person_name(m["name"]), line[:m.start()]), text)
            if name and _NO_NAME_WORD.search(name):  # "Ihre E-Mail-Adresse: …": named before
                name = name_in(text[max(0, text.find(line) - 400):text.find(line)]) or ""
            if address in seen or not name or name.lower() in _HEADER_NAMES:
                continue
            seen.add(address)
            out.append((name, address, None))
    return out + _pairs_in_sentences(text, seen)


_NO_NAME_WORD = re.compile(r"mail|adresse|address", re.IGNORECASE)  # "Ihre E-Mail-Adresse:"
def _fuller(name: str, text: str) -> str:
    """The full name for a surname alone ("Herrn Dr. Stahlschmidt (b.st…@…)") when the
    text names the person in full elsewhere ("Herrn Dr. Bernhard Stahlschmidt")."""
    if not name or " " in name:
        return name
    m = re.search(r"\b((?:[" + CAPITALS + rf"][\w'’-]+\s+){{1,2}}){re.escape(name)}\b", text)
    fuller = person_name(m[0]) if m else ""
    return fuller if len(fuller.split()) >= 2 else name


_SENTENCE = re.compile(r"(?<=[^\W\d]{2}[.!?])\s+|\n\s*\n")


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
        for here, where in enumerate(parts[i: i + 2]):
            fresh = [a.lower() for a in ADDR_RE.findall(where) if a.lower() not in seen]
            if len(set(fresh)) == 1:
                # the name between the address before and this one: never a name that
                # stands before another person's address ("1. Petra Klein <…>" above it)
                before = where[:where.lower().find(fresh[0])] if here == 0 else sentence
                last = max((a.end() for a in ADDR_RE.finditer(before)), default=0)
                name = name_in(before[last:])
                if name:
                    seen.add(fresh[0])
                    out.append((name, fresh[0], None))
                break
            if fresh:
                break
    return out


_NAME_BEFORE_ROLE = re.compile(rf"({NAME})[ \t]*,[ \t]*$")


def _before_role(name: str, before: str) -> str:
    """"Jan Jung, Kassenwart, jan.jung@…": the one word before the address is the role,
    the full name stands before it."""
    if " " in name or not (m := _NAME_BEFORE_ROLE.search(before)):
        return name
    full = person_name(m[1])
    return full if len(full.split()) >= 2 else name


_REGISTERING = re.compile(
    r"\b(?:anmeld\w*|melde\w*|teilnehm\w*|teil\b|nimmt|nehmen|kommt|kommen|dabei|register\w*"
    r"|attend\w*|join\w*|participa\w*|teilnehmer\w*|teilnahme|zugangsdaten|bestätigung)\b",
    re.IGNORECASE)
_SELF = re.compile(
    r"\b(?:melde|melden)\s+(?:\S+\s+){0,3}?(?:mich|uns)\b|\b(?:ich|wir)\b.{0,80}"
    r"\b(?:teilnehmen|teil\b|dabei)|\bmyself\b|\b(?:I|we)(?:'d| would)? like to (?:register"
    r"|attend|join)", re.IGNORECASE)
_NOT_ME = re.compile(  # "ich selbst kann leider nicht": the sender only registers others
    r"\bich\s+selbst\s+(?:\S+\s+){0,6}?(?:nicht|verhindert)\b|\bI\s+(?:myself\s+)?(?:can't|cannot"
    r"|won't be able to)\s+(?:make it|attend|come|join)\s+myself\b", re.IGNORECASE)
_ROSTER_LINE = re.compile(rf"^[ \t]*(?:\d+[.)]|[-*•])?[ \t]*{NAME}[ \t]*[,;:|–(<-]?[ \t]*"
                          rf"[<(]?(?:mailto:)?{ADDR_SPEC}[>)]?[ \t]*[,;.]?[ \t]*$")


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


class _Sentences:
    """The sentences of one line, found once and only when first asked for: the sentence
    around a match in logarithmic time, whether it registers somebody read once per
    sentence — a long line of many addresses costs linear time, not quadratic."""

    def __init__(self, line: str):
        self.line = line
        self.starts: list[int] = []
        self.ends: list[int] | None = None
        self.known: dict[tuple[int, int], bool] = {}

    def around(self, m: re.Match) -> tuple[int, int]:
        """(start, end) as ``span_around(line, m, _SENTENCE_BREAK)`` gives them."""
        if self.ends is None:
            breaks = list(_SENTENCE_BREAK.finditer(self.line))
            self.starts = [b.start() for b in breaks]
            self.ends = [b.end() for b in breaks]
        i = bisect_right(self.ends, m.start()) - 1
        j = bisect_left(self.starts, m.end())
        return (self.ends[i] if i >= 0 else 0,
                self.starts[j] if j < len(self.starts) else len(self.line))

    def at(self, m: re.Match) -> str:
        start, end = self.around(m)
        return self.line[start:end]

    def registering(self, m: re.Match) -> bool:
        span = self.around(m)
        if span not in self.known:
            self.known[span] = _REGISTERING.search(self.line[span[0]:span[1]]) is not None
        return self.known[span]


def find(text: str, sender: str | None, sender_name: str, own: str = "",
         subject: str = "") -> Found:
    """Who the mail is about. ``own`` is our contact address: neither it nor any other
    address of our domain is a participant."""
    if sender is None:
        return Found(())
    found = fields(text)
    body, sig = split_signature(text, sender_name)
    form_address = valid_address(found.get("email", "")) if found.get("name") else None
    form_address = form_address or _own_address(body, sender)
    name = sender_name_from(found, sender_name, sig, sender, subject)
    organisation = (found.get("organisation") or organisation_correction(body)
                    or organisation_from(sig, name, sender)
                    or organisation_after_name(body, name) or organisation_in_text(body))
    if not organisation and name and name == name_from_subject(subject)[0]:
        organisation = name_from_subject(subject)[1]
    me = Participant(email=form_address or sender, name=name, organisation=organisation)
    own_domain = own.lower().rpartition("@")[2]
    if body.count("@") > MAX_ADDRESSES:
        return Found((me,), issue=f"mehr als {MAX_ADDRESSES} Adressen in der Mail")
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
        roster = any(_ROSTER_LINE.match(line) or is_table_row(line)
                     for line in body.split("\n"))
        if me.email not in {p.email for p in people} and not _NOT_ME.search(body) and (
                _WITH_ME.search(body) or (_SELF.search(body) and not roster)):
            people = [me, *people]  # "ich und meine Kollegin …": the sender comes too
        return Found(tuple(_unique(people)))
    if not name.strip() and me.email == sender and role_address(sender):
        return Found((me,), issue="Funktionsadresse ohne Namen einer Person – bitte prüfen")
    unaddressed = _unaddressed_person(body)
    if unaddressed:
        return Found((me,), issue=f"Person ohne E-Mail-Adresse genannt ({unaddressed})")
    return Found((me,))


_OWN_ADDRESS = re.compile(
    r"\b(?:(?:mit|unter|an|über)\s+meine[rn]?\s+(?:\w+\s+){0,2}?(?:E-?Mail-?)?Adresse"
    r"|meine\s+(?:\w+\s+){0,2}?(?:E-?Mail-?)?Adresse\s+(?:lautet|ist)"
    r"|(?:erreichen|kontaktieren)\s+Sie\s+mich\s+(?:\w+\s+){0,2}?(?:unter|über)"
    r"|(?:my|use)\s+(?:\w+\s+){0,2}?(?:e-?mail\s+)?address)\b", re.IGNORECASE)


def _own_address(body: str, sender: str) -> str | None:
    """The address the writer states as her own ("Bitte tragen Sie mich mit meiner
    persönlichen Adresse ein – jana.pieczyk@… –"): one address in that sentence, not the
    sender's. A ticket system or a shared office box writes for her; she is reached there."""
    if "@" not in body.replace(sender, "") or not _OWN_ADDRESS.search(body):
        return None
    for sentence in _SENTENCE.split(body):
        m = _OWN_ADDRESS.search(sentence)
        if not m:
            continue
        fresh = {a.lower() for a in ADDR_RE.findall(sentence)} - {sender}
        if len(fresh) == 1:
            return valid_address(fresh.pop())
    return None


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
        return Participant(addresses.pop(), person_name(m["name"]), organisation)
    return None


_NAMED_BY_TITLE = re.compile(
    r"\b(?:melde|melden)\s+(?:\S+\s+){0,2}?(?:Frau|Herrn|Herr)\s+[^.!?\n]{0,60}"
    r"|\b(?:Frau|Herr)\s+(?:(?:Dr|Prof)\.?\s+)*[" + CAPITALS + r"][\w-]+"
    r"(?:\s+[" + CAPITALS + r"][\w-]+)?\s+"
    r"(?:nimmt|kommt|wird|möchte|würde)\b[^.!?\n]{0,60}"
    r"|\b(?:ich|mich)\s+(?:und|sowie)\s+(?:Frau\s+|Herrn?\s+|meine\w*\s+|unsere\w*\s+)"
    r"[^.!?\n]{0,60}")


def _unaddressed_person(text: str) -> str | None:
    """ "meine Kollegin Frau Sommer kommt auch mit", "ich melde Herrn Dr. Weber an" –
    somebody named, but no address."""
    for line in text.split("\n"):
        sentences = _Sentences(line)
        for m in _UNADDRESSED.finditer(line):
            rest = m["rest"]
            if ("@" in sentences.at(m) or not _NAME_AFTER_ROLE.match(rest)
                    or not _COMING.search(rest)):
                continue
            return clean_text(m[0][:60], 80)
    for line in text.split("\n"):
        sentences = _Sentences(line)
        for m in _NAMED_BY_TITLE.finditer(line):
            if "@" not in sentences.at(m):
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
