"""What does the writer want? register / cancel / question / thanks / automatic (pure).

Deliberately cautious: a wrong confirmation is worse than none. The text is read sentence
by sentence. A registration must be said in the first person and as a statement ("ich
melde mich an", "nehme gerne teil", "I would like to attend"); a question ("kann ich auch
online teilnehmen?", "ich möchte wissen, ob …"), a negation ("wir nehmen nicht teil"), a
condition ("falls ich doch nicht kommen kann, sage ich ab") or somebody else's imperative
("Bitte melden Sie sich bis … an") is not one. Anything unclear goes to a human.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypedDict

from mailbot.config import EventConfig
from mailbot.core.models import Intent, ParsedMail, Reading
from mailbot.core.text import ADDR_RE, quote, span_around
from mailbot.reading.conditions import AVAILABILITY, anyway, conditional, firm_then, unsure
from mailbot.reading.eventfacts import EventFacts
from mailbot.reading.hints import (
    INDIRECT_QUESTION,
    NEGATION,
    QUESTION_WORDS,
    RELATIVE,
    THANKS,
    TITLED,
    is_explained,
    salient,
    subject_before,
)
from mailbot.reading.people import EVERYONE, split_signature
from mailbot.reading.sentences import F, has_any, sentences
from mailbot.reading.subject import (
    FIELD_LINE,
    RSVP_SUBJECT,
    asked,
    bare,
    calendar_comment,
    calendar_reading,
    from_subject,
)

_END = (r"(?=\s*(?:[.,;:!)(–-]|$|\n|\s(?:und|and|&|für|zum|zur|beim|bei|mit|am)\b))")
_CANCEL = re.compile(
    r"\b(?:absagen|abmelden|abmeldung|stornier\w*|zurückziehen|ziehe\b.{0,40}\bzurück"
    rf"|sage\s+(?:ich\s+|wir\s+)?(?:\S+\s+){{0,10}}ab{_END}"
    rf"|melde\s+(?:mich|uns)\s+(?:\S+\s+){{0,10}}ab{_END}"
    rf"|melden\s+sie\s+(?:\S+\s+){{0,10}}ab{_END}|melde[nt]?\s+(?:ich|wir)\s+(?:sie|ihn)\s+"
    rf"(?:\S+\s+){{0,10}}ab{_END}"
    r"|streich\w*.{0,40}\bliste|von der (?:teilnehmer)?liste"
    r"|nicht\s+(?:mehr\s+)?(?:teilnehmen|dabei)|nicht\b.{0,30}\bkommen\b|nicht\s+teil" + _END +
    r"|kann\s+(?:\w+\s+){0,2}nicht\W*$"
    r"|verhindert|schaffe (?:es|ich)\b.{0,30}\bnicht|(?:muss|müssen)\b.{0,40}\bpassen"
    r"|cancel\w*|can(?:'|no)t (?:make it|attend|come|join|participate)"
    r"|(?:take|remove)\s+(?:me|us)\s+(?:off|from)\b"
    r"|\b(?:nimm|nehmt|nehmen\s+sie)\s+(?:mich|uns)\b.{0,40}\b(?:raus|heraus|runter)\b"
    r"|(?:unable|not able|won't be able) to (?:attend|make it|join|come|participate)"
    r"|withdraw\w*)",
    F,
)
_REGISTER = re.compile(
    r"\b(?:meld(?:e|en)?\s+(?:mich|uns|hiermit|ich|wir|gerne?|folgende|meine\w*|unsere\w*"
    rf"|frau|herrn?)\b.{{0,160}}\ban{_END}"
    rf"|melden\s+(?:wir|uns)\b.{{0,160}}\ban{_END}|meldet\s+sich\b.{{0,160}}\ban{_END}"
    rf"|(?:wir|ich)\s+(?:\S+\s+)?melden?\b.{{0,160}}\ban{_END}"
    r"|(?:möchte|möchten|würde|würden|will|wollen|werde|werden)\b.{0,120}"
    r"\b(?:teilnehmen|anmelden|dabei sein|mitmachen|teil ?nehmen)"
    rf"|(?:nehme|nehmen)\b.{{0,120}}\bteil{_END}"
    r"|(?:bin|sind|ist)\s+(?:\S+\s+){0,4}?dabei\b"
    rf"|(?:kommt|kommen)\b.{{0,80}}\bmit{_END}|nimmt\b.{{0,120}}\bteil{_END}"
    r"|wird\b.{0,120}\bteilnehmen"
    r"|(?:setzen|tragen|nehmen|schreiben)\s+sie\s+(?:mich|uns)\b.{0,60}"
    r"\b(?:liste|ein\b|auf\b)|(?:put|add|sign)\s+(?:me|us)\s+(?:down|up|on)\b"
    r"|\bsie\s+(?:mich|uns)\b.{0,40}\bauf\s+die\s+(?:teilnehmer)?liste\s+(?:setzen|nehmen)"
    r"|\b(?:je|nous)\s+(?:\w+\s+){0,3}?(?:m'inscri\w*|nous inscri\w*|participer|participe\w*)"
    r"|\bkatıl(?:mak istiyorum|ıyorum|acağım|acağız|mak isterim)"
    r"|\bkayıt (?:olmak istiyorum|oluyorum)"
    r"|(?:bin|sind)\s+(?:ich|wir)\b.{0,60}\bdabei\b"
    r"|(?:komme|kommen)\s+(?:\w+\s+){0,2}?(?:gerne?|sehr gerne?)\b"
    r"|(?:bestätige|bestätigen)\b.{0,40}\bteilnahme"
    r"|(?:sage|sagen)\s+(?:ich\s+|wir\s+)?(?:hiermit\s+|gerne?\s+|sehr\s+gerne?\s+)?"
    r"(?:meine\s+|unsere\s+)?(?:teilnahme\s+)?zu\b"
    r"|hiermit\b.{0,40}\banmeldung"
    r"|(?:i|we)(?:'d| would| want to| wish to| will)?\s+(?:like\s+to\s+|love\s+to\s+)?"
    r"(?:register|attend|join|participate|sign\s+up)"
    r"|please\s+(?:register|sign\s+up|add)\s+(?:me|us)|count\s+(?:me|us)\s+in"
    r"|registration\s+for\s+(?:me|us|my)"
    r"|\btrag\s+(?:mich|uns)\b.{0,40}\bein\b"  # du-form: "trag mich bitte ein"
    r"|\b(?:könnten|können|würden)\s+sie\s+(?:\w+\s+){0,2}?(?:mich|uns)\b.{0,60}"
    r"\b(?:anmelden|eintragen)\b"  # "Könnten Sie mich bitte für das Treffen anmelden?"
    r"|\breservier\w*\s+(?:sie\s+)?(?:bitte\s+)?(?:mir|uns|für\s+(?:mich|uns))\b.{0,40}\bpl[aä]tz"
    r"|\b(?:für\s+(?:mich|uns)\s+)?(?:einen|zwei|drei|\d+)\s+pl[aä]tze?\b.{0,30}\breservier"
    r"|\b(?:reserve|save|hold)\s+(?:me\s+|us\s+)?(?:a\s+)?(?:place|seat|spot)s?\s+for\s+(?:me|us)\b"
    r"|(?:bei|in|an)\s+meiner\s+anmeldung\b.{0,80}\b(?:fehlt|falsch|korrigier|ergänz|änder"
    r"|vergessen|nachreichen|nachgereicht))",
    F,
)


# Words without which the patterns above cannot match: a cheap test on the lower-case
# sentence spares most sentences the long patterns (they stay the only rule).
_CANCEL_WORDS = ("absag", "abmeld", "storn", "zurück", "sage", "melde", "streich", "liste",
                 "nicht", "verhindert", "schaffe", "passen", "cancel", "can't", "cannot",
                 "take", "remove", "nimm", "nehm", "unable", "not able", "won't", "withdraw")
_REGISTER_WORDS = ("meld", "teil", "dabei", "mitmach", "komm", "setzen", "trag", "nehmen",
                   "reserv", "save", "hold",
                   "schreiben", "put", "add", "sign", "inscri", "particip", "katıl", "kayıt",
                   "bestätig", "sag", "regist", "attend", "join", "count")


_AWAY_WORDS = ("büro", "haus", "dienst", "abwesen", "urlaub", "erreichbar", "office", "away",
               "leave", "automati", "dringend")
_SUBSTITUTE_WORDS = ("statt", "stelle", "vertretung", "instead", "place")


_EXCUSE_WORDS = ("pünktlich", "rechtzeitig", "später", "früher", "ganz", "bis", "erst", "on time",
                 "late")
_AWAY_CONTEXT_WORDS = ("dringend", "urgent", "wenden", "contact", "absence", "abwesenheit",
                       "lese meine", "access", "weitergeleitet", "forwarded", "vertr")


_CONDITION = re.compile(r"^\W*(?:falls|wenn|sollte|sofern|if|in case|unless)\b", F)
_EXCUSE = re.compile(r"\b(?:pünktlich|rechtzeitig|später|früher|ganz|bis\s+\d|erst\s+ab"
                     r"|on time|late)\b", F)
_HEDGE = re.compile(r"\b(?:abklären|klären|abstimmen|noch nicht sicher|weiß noch nicht"
                    r"|vielleicht|eventuell|unter vorbehalt|voraussichtlich|vorläufig"
                    r"|not sure|maybe|tentative\w*|probably)\b", F)
_SUBSTITUTE = re.compile(r"\b(?:statt meiner|an meiner stelle|in vertretung|stattdessen"
                         r"|instead of me|in my place)\b", F)
_AWAY = re.compile(
    r"\b(?:(?:bin|ist)\b.{0,60}\b(?:nicht im (?:büro|haus|dienst)|abwesend|im urlaub|außer haus"
    r"|nicht erreichbar)|(?:am|out of (?:the )?)office until|(?:i am|i'm) (?:currently )?"
    r"(?:out of (?:the )?office|away|on (?:annual )?leave)|abwesenheitsnotiz"
    r"|automatische antwort|automatic reply|in dringenden fällen)\b", F)
_AWAY_CONTEXT = re.compile(
    r"\b(?:in dringenden fällen|for urgent matters|in urgent cases|wenden sie sich|please contact"
    r"|in my absence|während meiner abwesenheit|lese meine (?:e-?)?mails|access to e-?mail"
    r"|nicht weitergeleitet|not (?:be )?forwarded|vertritt mich|vertreten durch)\b", F)



class _Facts(TypedDict):  # what a Reading says besides its intent
    sentence: str
    note: str
    elsewhere: str
    others: str


@dataclass
class _Found:
    register: bool = False
    cancel: bool = False
    asks: bool = False
    substitute: bool = False
    away: bool = False
    sentence: str = ""  # the first registration or cancellation sentence
    hedge: str = ""  # a registration said with reservations
    notes: list[tuple[str, str]] = field(default_factory=list)  # (what, sentence) to read
    elsewhere: str = ""
    others: str = ""
    unexplained: list[str] = field(default_factory=list)
    condition: str = ""  # a registration that depends on something
    ours: bool = False  # a registration that names this event (its day or title)
    mentions: list[tuple[str, str]] = field(default_factory=list)  # another event, in passing
    previous: str = ""
    avail: str = ""  # asked for a free place only
    lone: bool = False  # the text names no address: "diese Adresse" is the sender's

    def note(self, intent: Intent) -> str:
        """The first sentence a human must read, given what the mail was taken for: in a
        cancellation, a negation only agrees ("es geht an dem Tag nicht")."""
        for what, sentence in self.notes:
            if not (intent is Intent.CANCEL and what == "Verneinung"):
                return f"{what}: {quote(sentence)}"
        return ""


def _read(parts: list[str], event: EventFacts | None = None, lone: bool = False) -> _Found:
    found = _Found(lone=lone)
    previous = ""
    for sentence in parts:
        sentence = _GREETING_PREFIX.sub("", sentence, count=1).strip() or sentence
        found.previous = previous
        kind, m = _kind(sentence, found)
        if m is not None:  # a registration or cancellation: its clause decides
            found.sentence = found.sentence or sentence
            clause, rest = _clause(sentence, m)
            context = f"{previous} {clause}" if _BACK_REFERENCE.match(clause) else clause
            other = event.elsewhere(context, kind == "register") if event else None
            found.elsewhere = found.elsewhere or (f"{other}: {quote(sentence)}" if other else "")
            found.ours = found.ours or bool(event and event.names_this(context))
            if _speaks_of_others(clause, m[0], sentence):
                found.others = found.others or sentence
            why = salient(rest, event) if rest.strip() and not (
                _REGISTER.search(rest) or _CANCEL.search(rest)) else ""
            if why not in ("", "Verneinung", "Person"):  # the rule of people covers names
                found.notes.append((why, sentence))
        elif kind == "away":
            found.unexplained.append(sentence)  # part of an out-of-office text
        elif kind not in ("known", "condition"):
            found.unexplained.append(sentence)
            why = salient(sentence, event)
            if why in ("", "Datum") and event and (event.other_event(sentence) or (
                    not why and event.elsewhere(sentence, True))):
                found.mentions.append((why, sentence))  # "nach dem Fachtag im Februar …"
            elif why:
                found.notes.append((why, sentence))
        elif kind == "known" and event and event.other_event(sentence):
            found.mentions.append(("", sentence))  # "Danke für die Einladung zum Fachtag"
        previous = sentence
    _mentioned(found, event)
    if found.avail:  # asked, and no registration came right after it
        found.asks = True
        found.notes.append(("Frage", found.avail))
    return found


def _mentioned(found: _Found, event: EventFacts | None) -> None:
    """Another event named in passing blocks only a registration that names no event."""
    if not found.mentions or event is None:
        return
    if not found.register:
        found.notes += [(why, s) for why, s in found.mentions if why]
    else:
        other = [s for _, s in found.mentions if not found.ours or not event.other_event(s)]
        if other:  # in person ("vor Ort") is never this event
            found.elsewhere = found.elsewhere or f"andere Veranstaltung erwähnt: {quote(other[0])}"


_CLAUSE_BREAK = re.compile(r"\s*(?:[,;:–—]|\s-\s)\s*")


def _clause(sentence: str, m: re.Match) -> tuple[str, str]:
    """(the clause in which the match stands, the rest of the sentence)."""
    start, end = span_around(sentence, m, _CLAUSE_BREAK)
    return sentence[start:end], f"{sentence[:start]} {sentence[end:]}"


_THIRD_VERB = re.compile(r"^(?:kommt|nimmt|ist|wird)\b", F)
_SELF_OBJECT = re.compile(r"\b(?:mich|uns|me|us|myself|ourselves|meine teilnahme|my place)\b", F)


def _speaks_of_others(clause: str, said: str, sentence: str = "") -> bool:
    """The clause registers or cancels somebody else: "Herr Pieper nimmt teil", "ich melde
    Herrn Pieper an", "meine Kollegin kann nicht", "ich sage für a@b.example ab" — not "ich
    melde mich an". An address anywhere in the sentence ("ich sage ab, im Namen von Jan Jung,
    jan@…") is a person spoken of whatever the verb: the rule of evidence then asks that
    people found them (else a human reads it)."""
    if _THIRD_VERB.match(said) or subject_before(sentence, clause) or EVERYONE.search(clause):
        return True
    return bool(_THIRD_PERSON.search(clause) or ADDR_RE.search(sentence or clause)) and not (
        _SELF_OBJECT.search(clause))


def _kind(sentence: str, found: _Found) -> tuple[str, re.Match | None]:
    """What a sentence is — register, cancel, question, hedge, known (explained) or "" —
    and for a registration or cancellation the words that said it."""
    low = sentence.lower()
    away = has_any(low, _AWAY_WORDS) and bool(_AWAY.search(sentence))
    found.away |= away
    found.substitute |= has_any(low, _SUBSTITUTE_WORDS) and bool(_SUBSTITUTE.search(sentence))
    if (sentence.endswith("?") or (has_any(low, QUESTION_WORDS)
                                   and INDIRECT_QUESTION.search(sentence))) \
            and not _POLITE_ACTION.match(sentence) and not is_explained(sentence, found.lone):
        if len(sentence) < 60 and AVAILABILITY.search(sentence) and not found.avail and \
                sentence.endswith("?"):
            found.avail = sentence  # "Sind noch Plätze frei?": a registration answers it
            return "known", None
        found.asks = True
        return "question", None
    cancel = _CANCEL.search(sentence) if has_any(low, _CANCEL_WORDS) else None
    if unsure(low, sentence) or (not cancel and conditional(sentence, low)):
        found.condition = found.condition or sentence  # "ich komme, falls …"
        return "condition", None
    if _CONDITION.search(sentence):  # "falls ich nicht kann, sage ich ab" is a courtesy
        return ("known" if cancel or anyway(sentence) else ""), None
    if cancel and not _EXCUSE.search(sentence):
        found.cancel = True
        return "cancel", cancel
    m = _REGISTER.search(sentence) if has_any(low, _REGISTER_WORDS) else None
    if m and not NEGATION.search(sentence, max(0, m.start() - 30), m.end()):
        if _HEDGE.search(sentence, max(0, m.start() - 15), m.end() + 80) or (
                _THEN.match(sentence) and not firm_then(sentence, found.previous)):
            found.hedge = found.hedge or sentence
            return "hedge", None
        found.register = True
        if found.avail and found.previous == found.avail and _THEN.match(sentence):
            found.avail = ""  # "Sind noch Plätze frei? Dann melde ich mich hiermit an."
        return "register", m
    if (is_explained(sentence, found.lone)
            or (has_any(low, _EXCUSE_WORDS) and _EXCUSE.search(sentence))
            or FIELD_LINE.match(sentence)):
        return "known", None
    if away or (has_any(low, _AWAY_CONTEXT_WORDS) and _AWAY_CONTEXT.search(sentence)):
        return "away", None  # part of an out-of-office text
    return "", None


# the action itself asked politely: "Could you please cancel my registration?",
# "Könnten Sie mich bitte anmelden?" — no question for a human, the request it is
_POLITE_ACTION = re.compile(
    r"^\W*(?:könnten|können|würden|could|would|can|will)\s+(?:sie|you)\s+(?:\w+\s+){0,2}?"
    r"(?:(?:mich|uns)\s+(?:bitte\s+)?(?:\w+\s+){0,4}?(?:anmelden|abmelden|eintragen|streichen)"
    r"|(?:cancel|withdraw)\s+(?:my|our)\s+registration|(?:register|sign\s+up|add)\s+(?:me|us)"
    r"|sign\s+(?:me|us)\s+up|(?:take|remove)\s+(?:me|us)\s+off)\b[^?]{0,60}\?$", F)


_THIRD_PERSON = re.compile(rf"{TITLED.pattern}|\b{RELATIVE}"
                           r"|\b(?:zu zweit|zu dritt|beide|both of us|two of us)\b"
                           r"|(?-i:\b(?:er|ihn|ihm|sie|ihr|he|him|she|her)\b)", F)


_THEN = re.compile(r"^\W*(?:dann|then|in diesem fall|in that case)\b", F)
_BACK_REFERENCE = re.compile(r"^\W*(?:dafür|dazu|hierfür|hierzu|daran|for (?:this|that|it))\b",
                             F)
_GREETING_PREFIX = re.compile(
    r"^\W*(?:hallo|hi|hey|moin|servus|guten (?:morgen|tag|abend)|liebe[rs]?|sehr geehrte[rs]?"
    r"|dear|hello|bonjour|merhaba|salut)\b[^,!.?:]{0,60}[,!:]\s*", F)


def classify(subject: str, text: str, calendar_method: str | None = None, *,
             event: EventFacts | None = None, sender_name: str = "",
             calendar: tuple[str, str | None, str, str] | None = None,
             thread: str = "") -> Reading:
    """The intent of a mail from its subject, the text the person wrote now and the method
    of a calendar part it carries (``REPLY``: an answer from a calendar, not a mail);
    ``thread``: the earlier mails it quotes. ``event`` lets dates, weekdays and titles be
    checked against this event's own."""
    if (calendar_method or "").upper() == "REPLY" or (
            RSVP_SUBJECT.match(subject) and calendar_method):
        comment = calendar_comment(text, calendar)
        inner = classify("", comment, event=event, sender_name=sender_name) if comment else None
        partstat = calendar[0] if calendar else ""
        says_more = inner is not None and bool(  # another date beside a refusal: her reason
            inner.asks or inner.note or inner.others or (inner.elsewhere and partstat != "DECLINED")
            or (inner.intent is Intent.UNKNOWN and (inner.sentence or partstat != "DECLINED")))
        # a condition or a stand-in always; words not understood beside an acceptance too
        return calendar_reading(comment, partstat, says_more)
    body = split_signature(text[:20000], sender_name)[0]
    found = _read(sentences(body), event, "@" not in body)  # the signature's is her own
    sentence = found.sentence
    if found.condition and not found.cancel:
        return Reading(Intent.UNKNOWN, found.asks, reason=f"Anmeldung unter Bedingung – bitte "
                       f"prüfen: {quote(found.condition)}", sentence=found.condition)
    if found.register and event and not (found.ours or found.elsewhere):
        found.elsewhere = event.in_thread(subject, thread) or ""
    if found.away and not (found.register or found.cancel or found.asks or found.notes):
        return Reading(Intent.AUTO, reason="Abwesenheitsnotiz (ohne Kennzeichnung)")
    if found.substitute and found.cancel:
        return Reading(Intent.UNKNOWN, found.asks, reason="Vertretung/Ersatzperson – bitte prüfen",
                       sentence=sentence)
    intent = (Intent.UNKNOWN if found.cancel and found.register else Intent.CANCEL
              if found.cancel else Intent.REGISTER if found.register else Intent.UNKNOWN)
    note = found.note(intent)
    facts: _Facts = {"sentence": sentence, "note": note, "elsewhere": found.elsewhere,
                     "others": found.others}
    if found.cancel and found.register:
        return Reading(Intent.UNKNOWN, found.asks, reason="An- und Abmeldung zugleich – unklar",
                       **facts)
    if found.cancel:
        return Reading(Intent.CANCEL, found.asks, **facts)
    if found.register:
        if found.hedge and not note:
            facts["note"] = f"Vorbehalt: {quote(found.hedge)}"
        return Reading(Intent.REGISTER, found.asks, **facts)
    if found.hedge:
        return Reading(Intent.UNKNOWN, found.asks, reason=f"Anmeldung unter Vorbehalt – bitte "
                       f"prüfen: {quote(found.hedge)}", sentence=found.hedge)
    if found.asks:
        return Reading(Intent.QUESTION, True, reason=note)
    # the subject speaks only for a body that holds nothing a human must read
    by_subject = None if note else from_subject(subject, body)
    if by_subject:
        return by_subject
    if THANKS.search(body) and len(body) < 600 and not note and bare(found.unexplained):
        note = asked(body)
        if not note:
            return Reading(Intent.THANKS, reason="Dank oder Antwort ohne neues Anliegen")
    if note:
        return Reading(Intent.UNKNOWN, reason=f"nicht verstanden – {note}", note=note)
    if found.unexplained:
        return Reading(Intent.UNKNOWN, reason=f"Anliegen nicht erkannt: "
                                              f"{quote(found.unexplained[0])}")
    return Reading(Intent.UNKNOWN)


def read(parsed: ParsedMail, event: EventConfig | None = None) -> Reading:
    """:func:`classify` with everything the parsed mail and the event say."""
    return classify(parsed.subject, parsed.text, parsed.calendar_method,
                    event=EventFacts.of(event) if event else None,
                    sender_name=parsed.sender_name, calendar=parsed.calendar_reply,
                    thread=parsed.quoted)


# each long pattern with the words tested before it (for speed); their test reads this
WORD_HINTS = ((_CANCEL, _CANCEL_WORDS), (_REGISTER, _REGISTER_WORDS), (_AWAY, _AWAY_WORDS),
              (_SUBSTITUTE, _SUBSTITUTE_WORDS), (_EXCUSE, _EXCUSE_WORDS),
              (_AWAY_CONTEXT, _AWAY_CONTEXT_WORDS))
