"""What does the writer want? register / cancel / question / thanks / automatic (pure).

Deliberately cautious: a wrong confirmation is worse than none. The text is read sentence
by sentence. A registration must be said in the first person and as a statement ("ich
melde mich an", "nehme gerne teil", "I would like to attend"); a question ("kann ich auch
online teilnehmen?", "ich möchte wissen, ob …"), a negation ("wir nehmen nicht teil"), a
condition ("falls ich doch nicht kommen kann, sage ich ab") or somebody else's imperative
("Bitte melden Sie sich bis … an") is not one. Anything unclear goes to a human.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from .config import EventConfig
from .models import Intent, ParsedMail
from .people import split_signature

_F = re.IGNORECASE
_END = (r"(?=\s*(?:[.,;:!)–-]|$|\n|\s(?:und|and|&|für|zum|zur|beim|bei|mit|am)\b))")
# the particle ends the clause (or a prepositional phrase follows it: "melde mich an für …")

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
    _F,
)
_REGISTER = re.compile(
    r"\b(?:meld(?:e|en)?\s+(?:mich|uns|hiermit|ich|wir|gerne?|folgende|meine\w*|unsere\w*"
    rf"|frau|herrn?)\b.{{0,160}}\ban{_END}"
    rf"|melden\s+(?:wir|uns)\b.{{0,160}}\ban{_END}"
    rf"|(?:wir|ich)\s+(?:\S+\s+)?melden?\b.{{0,160}}\ban{_END}"
    r"|(?:möchte|möchten|würde|würden|will|wollen|werde|werden)\b.{0,120}"
    r"\b(?:teilnehmen|anmelden|dabei sein|mitmachen|teil ?nehmen)"
    rf"|(?:nehme|nehmen)\b.{{0,120}}\bteil{_END}"
    r"|(?:bin|sind|ist)\s+(?:\S+\s+){0,4}?dabei\b"
    rf"|(?:kommt|kommen)\b.{{0,80}}\bmit{_END}|nimmt\b.{{0,120}}\bteil{_END}"
    r"|wird\b.{0,120}\bteilnehmen"
    r"|(?:setzen|tragen|nehmen|schreiben)\s+sie\s+(?:mich|uns)\b.{0,60}"
    r"\b(?:liste|ein\b|auf\b)|(?:put|add|sign)\s+(?:me|us)\s+(?:down|up|on)\b"
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
    r"|(?:bei|in|an)\s+meiner\s+anmeldung\b.{0,80}\b(?:fehlt|falsch|korrigier|ergänz|änder"
    r"|vergessen|nachreichen|nachgereicht))",
    _F,
)
_THANKS = re.compile(r"\b(?:dank\w*|thanks?|thank you|merci)\b", _F)
# Words without which the patterns above cannot match: a cheap test on the lower-case
# sentence spares most sentences the long patterns (they stay the only rule).
_CANCEL_WORDS = ("absag", "abmeld", "storn", "zurück", "sage", "melde", "streich", "liste",
                 "nicht", "verhindert", "schaffe", "passen", "cancel", "can't", "cannot",
                 "take", "remove", "nimm", "nehm", "unable", "not able", "won't", "withdraw")
_REGISTER_WORDS = ("meld", "teil", "dabei", "mitmach", "komm", "setzen", "tragen", "nehmen",
                   "schreiben", "put", "add", "sign", "inscri", "particip", "katıl", "kayıt",
                   "bestätig", "sag", "regist", "attend", "join", "count")
_QUESTION_WORDS = ("ob", "nachfrag", "erkundig", "frage mich", "wissen", "whether", "wonder",
                   "know")
_AWAY_WORDS = ("büro", "haus", "dienst", "abwesen", "urlaub", "erreichbar", "office", "away",
               "leave", "automati", "dringend")
_SUBSTITUTE_WORDS = ("statt", "stelle", "vertretung", "instead", "place")
_RELATIVE_WORDS = ("mein", "unser", "my ", "our ")
_INSTRUCTION_WORDS = ("liste", "antwort", "reply", "hierhin", "hierher", "address")
_EXCUSE_WORDS = ("pünktlich", "rechtzeitig", "später", "früher", "ganz", "bis", "erst", "on time",
                 "late")
_AWAY_CONTEXT_WORDS = ("dringend", "urgent", "wenden", "contact", "absence", "abwesenheit",
                       "lese meine", "access", "weitergeleitet", "forwarded", "vertr")
_REQUEST_WORDS = ("bitte", "sie", "please", "you", "kindly", "bescheid", "vous", "lütfen")
_NEGATION_WORDS = ("nicht", "kein", "not", "never", "nie", "n't")
_TITLE_WORDS = ("Frau", "Herr", "Mr", "Ms")


def _has(low: str, words: tuple[str, ...]) -> bool:
    for word in words:  # a plain loop: twice as fast as any() over a generator
        if word in low:
            return True
    return False
_INDIRECT_QUESTION = re.compile(
    r"\b(?:(?:wissen|fragen|nachfragen|erfragen|klären|mitteilen|sagen|informieren|bescheid"
    r"|rückmeldung)\W+(?:\w+\W+){0,2}?ob"
    r"|nachfragen|erkundigen|frage mich|würde gerne? wissen|möchte (?:gerne? )?wissen"
    r"|whether|wonder|want to know|would like to know|let me know if)\b", _F)
_NEGATION = re.compile(r"\b(?:nicht|kein\w*|not|never|nie)\b|n't\b", _F)
_CONDITION = re.compile(r"^\W*(?:falls|wenn|sollte|sofern|if|in case|unless)\b", _F)
_EXCUSE = re.compile(r"\b(?:pünktlich|rechtzeitig|später|früher|ganz|bis\s+\d|erst\s+ab"
                     r"|on time|late)\b", _F)
_HEDGE = re.compile(r"\b(?:abklären|klären|abstimmen|noch nicht sicher|weiß noch nicht"
                    r"|vielleicht|eventuell|unter vorbehalt|voraussichtlich|vorläufig"
                    r"|not sure|maybe|tentative\w*|probably)\b", _F)
_SUBSTITUTE = re.compile(r"\b(?:statt meiner|an meiner stelle|in vertretung|stattdessen"
                         r"|instead of me|in my place)\b", _F)
_AWAY = re.compile(
    r"\b(?:(?:bin|ist)\b.{0,60}\b(?:nicht im (?:büro|haus|dienst)|abwesend|im urlaub|außer haus"
    r"|nicht erreichbar)|(?:am|out of (?:the )?)office until|(?:i am|i'm) (?:currently )?"
    r"(?:out of (?:the )?office|away|on (?:annual )?leave)|abwesenheitsnotiz"
    r"|automatische antwort|automatic reply|in dringenden fällen)\b", _F)
_AWAY_CONTEXT = re.compile(
    r"\b(?:in dringenden fällen|for urgent matters|in urgent cases|wenden sie sich|please contact"
    r"|in my absence|während meiner abwesenheit|lese meine (?:e-?)?mails|access to e-?mail"
    r"|nicht weitergeleitet|not (?:be )?forwarded|vertritt mich|vertreten durch)\b", _F)
_RSVP_SUBJECT = re.compile(r"^(?:angenommen|abgelehnt|mit vorbehalt|accepted|declined|"
                           r"tentative(?:ly accepted)?|zugesagt|abgesagt)\s*:", _F)
_SUBJECT_REGISTER = re.compile(r"^\s*(?:anmeldung|registration|teilnahme|register)\b", _F)
_SUBJECT_CANCEL = re.compile(r"^\s*(?:abmeldung|absage|cancel\w*)\b", _F)
_FIELD_LINE = re.compile(r"^\s*[\w -]{2,30}:\s*\S", re.MULTILINE)

_NOT_A_FULL_STOP = re.compile(  # the dot first: the engine jumps from dot to dot
    r"\.(?:(?<=\d\.)|(?<=\b\w\.)|"
    + "|".join(rf"(?<=\b{w}\.)" for w in "Dr Prof bzw ggf ca Nr Str usw etc inkl evtl Hr Fr Min Std"
               .split()) + ")", _F)
_WRAPPED_LINE = re.compile(r"(?m)^(.{50,}[^.!?:;,\s])[ \t]*\n(?=[ \t]*(?!\d+[.)]\s|[-*•]\s)"
                           r"[^\s\n][^:\n]{0,30}(?:[^:\n]|$))")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Reading:
    """The intent, and whether the mail also asks something a human must answer.

    ``sentence``: the sentence that decided the intent. ``note``: the first sentence that no
    rule explained although it holds a question, a request, a negation, a name, an address
    or a date ("Frage: ‚…'"). ``elsewhere``: a sentence that names another date, event or
    place than this event's. ``others``: a registration or cancellation sentence that speaks
    of somebody other than the writer (who then needs an address of their own).
    ``partstat``: a calendar reply's answer (ACCEPTED, DECLINED, TENTATIVE …)."""

    intent: Intent
    asks: bool = False
    rsvp: bool = False
    reason: str = ""
    sentence: str = ""
    note: str = ""
    elsewhere: str = ""
    others: str = ""
    partstat: str = ""


def sentences(text: str) -> list[str]:
    """The text as sentences: dots that end no sentence ("31.05.2021", "31. Mai", "e.V.",
    "Dr.") and hard line wraps do not split it."""
    joined = _NOT_A_FULL_STOP.sub(_DOT, _WRAPPED_LINE.sub(r"\1 ", text))
    return [s.strip().replace(_DOT, ".") for s in _SENTENCE_END.split(joined) if s.strip()]


_DOT = "\u2024"  # stands for a dot that ends no sentence while the text is split



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

    def note(self, intent: Intent) -> str:
        """The first sentence a human must read, given what the mail was taken for: in a
        cancellation, a negation only agrees ("es geht an dem Tag nicht")."""
        for what, sentence in self.notes:
            if not (intent is Intent.CANCEL and what == "Verneinung"):
                return f"{what}: ‚{_short(sentence)}‘"
        return ""


def _read(parts: list[str], event: EventFacts | None = None) -> _Found:
    found = _Found()
    previous = ""
    for sentence in parts:
        sentence = _GREETING_PREFIX.sub("", sentence, count=1).strip() or sentence
        kind, m = _kind(sentence, found)
        if m is not None:  # a registration or cancellation: its clause decides
            found.sentence = found.sentence or sentence
            clause, rest = _clause(sentence, m)
            context = f"{previous} {clause}" if _BACK_REFERENCE.match(clause) else clause
            other = event.elsewhere(context, kind == "register") if event else None
            found.elsewhere = found.elsewhere or (other and f"{other}: ‚{_short(sentence)}‘")
            if _speaks_of_others(clause, m[0]):
                found.others = found.others or sentence
            why = salient(rest, event) if rest.strip() and not (
                _REGISTER.search(rest) or _CANCEL.search(rest)) else ""
            if why not in ("", "Verneinung", "Person"):  # the rule of people covers names
                found.notes.append((why, sentence))
        elif kind == "away":
            found.unexplained.append(sentence)  # part of an out-of-office text
        elif kind != "known":
            found.unexplained.append(sentence)
            why = salient(sentence, event)
            if why:
                found.notes.append((why, sentence))
        previous = sentence
    return found


_CLAUSE_BREAK = re.compile(r"\s*(?:[,;:–—]|\s-\s)\s*")


def _clause(sentence: str, m: re.Match) -> tuple[str, str]:
    """(the clause in which the match stands, the rest of the sentence)."""
    start, end = 0, len(sentence)
    for brk in _CLAUSE_BREAK.finditer(sentence):
        if brk.end() <= m.start():
            start = brk.end()
        elif brk.start() >= m.end():
            end = brk.start()
            break
    return sentence[start:end], f"{sentence[:start]} {sentence[end:]}"


_THIRD_VERB = re.compile(r"^(?:kommt|nimmt|ist|wird)\b", _F)
_SELF_OBJECT = re.compile(r"\b(?:mich|uns|me|us|myself|ourselves|meine teilnahme|my place)\b", _F)


def _speaks_of_others(clause: str, said: str) -> bool:
    """The clause registers or cancels somebody else: "Herr Pieper nimmt teil", "ich melde
    Herrn Pieper an", "meine Kollegin kann nicht" — not "ich melde mich an"."""
    if _THIRD_VERB.match(said):
        return True
    return bool(_THIRD_PERSON.search(clause)) and not _SELF_OBJECT.search(clause)


def _kind(sentence: str, found: _Found) -> tuple[str, re.Match | None]:
    """What a sentence is — register, cancel, question, hedge, known (explained) or "" —
    and for a registration or cancellation the words that said it."""
    low = sentence.lower()
    away = _has(low, _AWAY_WORDS) and bool(_AWAY.search(sentence))
    found.away |= away
    found.substitute |= _has(low, _SUBSTITUTE_WORDS) and bool(_SUBSTITUTE.search(sentence))
    if sentence.endswith("?") or (_has(low, _QUESTION_WORDS)
                                  and _INDIRECT_QUESTION.search(sentence)):
        found.asks = True
        return "question", None
    cancel = _CANCEL.search(sentence) if _has(low, _CANCEL_WORDS) else None
    if _CONDITION.search(sentence):  # "falls ich nicht kann, sage ich ab" is a courtesy
        return ("known" if cancel else ""), None
    if cancel and not _EXCUSE.search(sentence):
        found.cancel = True
        return "cancel", cancel
    m = _REGISTER.search(sentence) if _has(low, _REGISTER_WORDS) else None
    if m and not _NEGATION.search(sentence, max(0, m.start() - 30), m.end()):
        if _HEDGE.search(sentence, max(0, m.start() - 15), m.end() + 80) or _THEN.match(
                sentence):
            found.hedge = found.hedge or sentence
            return "hedge", None
        found.register = True
        return "register", m
    if (_explained(sentence) or (_has(low, _EXCUSE_WORDS) and _EXCUSE.search(sentence))
            or _FIELD_LINE.match(sentence)):
        return "known", None
    if away or (_has(low, _AWAY_CONTEXT_WORDS) and _AWAY_CONTEXT.search(sentence)):
        return "away", None  # part of an out-of-office text
    return "", None


def _short(sentence: str, limit: int = 140) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


_REQUEST = re.compile(
    r"\b(?:bitte|bitten|können sie|könnten sie|würden sie|wären sie|möchten sie|please|could you"
    r"|would you|can you|kindly|bescheid|schicken sie|senden sie|teilen sie|s'il vous pla[iî]t"
    r"|lütfen)\b", _F)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_TITLED = re.compile(r"\b(?:Frau|Herrn?|Mr|Mrs|Ms)\.?\s+(?:(?:Dr|Prof)\.\s*)*(?-i:[A-ZÄÖÜ])\w+")
_RELATIVE = (r"(?:mein|meine|meinen|meinem|meiner|unser|unsere|unseren|unserem|unserer|my|our)"
             r"\s+(?:\w+\s+)?(?:Kolleg\w*|Mitarbeiter\w*|Chef\w*|Vorsitzende\w*|Vorstand\w*"
             r"|Mann|Frau|Ehemann|Ehefrau|Partner\w*|Sohn|Tochter|Vertret\w*|Nachfolger\w*"
             r"|Praktikant\w*|Leiter\w*|colleague\w*|husband|wife|partner|boss)\b")
_THIRD_PERSON = re.compile(rf"{_TITLED.pattern}|\b{_RELATIVE}"
                           r"|\b(?:zu zweit|zu dritt|beide|both of us|two of us)\b"
                           r"|(?-i:\b(?:er|ihn|ihm|sie|ihr|he|him|she|her)\b)", _F)
_NAMED_RELATIVE = re.compile(rf"\b{_RELATIVE}\s+(?-i:[A-ZÄÖÜ])\w+", _F)
_THEN = re.compile(r"^\W*(?:dann|then|in diesem fall|in that case)\b", _F)
_BACK_REFERENCE = re.compile(r"^\W*(?:dafür|dazu|hierfür|hierzu|daran|for (?:this|that|it))\b",
                             _F)
_GREETING_PREFIX = re.compile(
    r"^\W*(?:hallo|hi|hey|moin|servus|guten (?:morgen|tag|abend)|liebe[rs]?|sehr geehrte[rs]?"
    r"|dear|hello|bonjour|merhaba|salut)\b[^,!.?:]{0,60}[,!:]\s*", _F)
_DELIVERY = (r"\b(?:link\w*|zugangsdaten|einwahldaten|zoom[\w-]*|bestätigung|anmeldebestätigung"
             r"|einladung|unterlagen|details|access data)\b")
_SEND = r"\b(?:schick|send|zusend|zukommen|weiterleit|forward|mail)\w*"
_GREETING_LINE = re.compile(
    r"^\W*(?:hallo|hi|hey|moin|servus|guten (?:morgen|tag|abend)|liebe[rs]?|sehr geehrte[rs]?"
    r"|dear|hello|bonjour|merhaba|salut)\b[^.?]{0,60}$"  # a greeting alone
    r"|^\W*(?:Frau|Herr|Ms|Mr|Mrs)\.?\s+[\w-]+\W*$", _F)
_PLEASANTRY = re.compile(  # matched at the start of the sentence
    r"\W*(?:(?:mit )?(?:freundlich|best|herzlich|lieb|viel|schön|sonnig|sportlich)\w* )?"
    r"(?:grüße|grüßen|gruß|grüsse|gruss|regards|wishes)\b.{0,40}$"  # a closing
    r"|\W*(?:\S+\s+){0,4}(?:grüße|grüßen|gruß|grüsse|regards)\W*$"
    r"|\W*(?:mfg|lg|vg|cheers|ciao|tschüss|bis (?:dann|bald)|best)\b.{0,30}$"
    r"|\W*(?:von meinem|sent from my|gesendet (?:von|mit)|envoyé de mon)\b.{0,40}$"
    r"|\W*(?:super|prima|toll|perfekt|passt|alles klar|ok(?:ay)?|gut|great|perfect|wunderbar)"
    r"\W*$", _F)
_KIND_WORDS = re.compile(r"\bfreuen? (?:mich|uns)\b|looking forward"
                         r"|schönen? (?:tag|wochenende|abend)|bleiben sie gesund", _F)
_DELIVERY_RE = re.compile(_DELIVERY, _F)
_SEND_RE = re.compile(_SEND, _F)
_INSTRUCTION = re.compile(  # a note for the list; "reply here"
    r"(?:ergänz|korrigier|änder|eintrag|trag)\w*.{0,40}(?:teilnehmerliste|liste)"
    r"|(?:teilnehmerliste|liste).{0,40}(?:ergänz|korrigier|änder|eintrag|trag)\w*"
    r"|\b(?:antworten|reply)\b.{0,30}\b(?:hierhin|hierher|diese adresse|this address)"
    r"|\b(?:hierhin|hierher|an diese adresse|to this address)\s+(?:antworten|reply)", _F)
_PROVENANCE = re.compile(  # where the invitation came from
    r"\b(?:einladung|invitation)\b.{0,60}\b(?:weitergeleitet|bekommen|erhalten|forwarded"
    r"|received|got)\b|\b(?:weitergeleitet|bekommen|erhalten|forwarded|forwarding|received"
    r"|got)\b.{0,40}\b(?:einladung|invitation)\b", _F)


def _explained(sentence: str) -> bool:
    """A greeting, or a pleasantry with nothing a human must read in it, or an instruction
    for what we send anyway, or where the invitation came from (no question, no request)."""
    if _GREETING_LINE.search(sentence):
        return True
    if (_PLEASANTRY.match(sentence) or _KIND_WORDS.search(sentence)
            or _THANKS.search(sentence)):
        return not salient(sentence, None)
    if sentence.endswith("?"):
        return False
    if _DELIVERY_RE.search(sentence) and _SEND_RE.search(sentence):
        return True  # how to send what we send anyway
    low = sentence.lower()
    return bool((_has(low, _INSTRUCTION_WORDS) and _INSTRUCTION.search(sentence)) or (
        _has(low, ("einladung", "invitation")) and _PROVENANCE.search(sentence)
        and not (_has(low, _REQUEST_WORDS) and _REQUEST.search(sentence))))


def salient(sentence: str, event: EventFacts | None) -> str:
    """What in a sentence a human must read, when no rule explained it: a question, a
    request, a negation, an address, a name, a date (not the event's own) — or ""."""
    low = sentence.lower()
    if "@" in sentence and _ADDRESS.search(sentence):
        return "Adresse"
    if sentence.endswith("?") or (_has(low, _QUESTION_WORDS)
                                  and _INDIRECT_QUESTION.search(sentence)):
        return "Frage"
    if _has(low, _REQUEST_WORDS) and _REQUEST.search(sentence):
        return "Bitte"
    if _has(low, _NEGATION_WORDS) and _NEGATION.search(sentence):
        return "Verneinung"
    if (_has(sentence, _TITLE_WORDS) and _TITLED.search(sentence)) or (_has(low, _RELATIVE_WORDS)
                                    and _NAMED_RELATIVE.search(sentence)):
        return "Person"
    if event is not None and event.elsewhere(sentence, False):
        return "Datum"
    return ""


def classify(subject: str, text: str, calendar_method: str | None = None, *,
             event: EventFacts | None = None, sender_name: str = "",
             calendar: tuple[str, str | None, str, str] | None = None) -> Reading:
    """The intent of a mail from its subject, the text the person wrote now and the method
    of a calendar part it carries (``REPLY``: an answer from a calendar, not a mail).
    ``event`` lets dates, weekdays and titles be checked against this event's own."""
    if (calendar_method or "").upper() == "REPLY" or (
            _RSVP_SUBJECT.match(subject) and calendar_method):
        return _calendar_reply(text, calendar)
    body = split_signature(text[:20000], sender_name)[0]
    found = _read(sentences(body), event)
    sentence = found.sentence
    if found.away and not (found.register or found.cancel or found.asks or found.notes):
        return Reading(Intent.AUTO, reason="Abwesenheitsnotiz (ohne Kennzeichnung)")
    if found.substitute and found.cancel:
        return Reading(Intent.UNKNOWN, found.asks, reason="Vertretung/Ersatzperson – bitte prüfen",
                       sentence=sentence)
    intent = (Intent.UNKNOWN if found.cancel and found.register else Intent.CANCEL
              if found.cancel else Intent.REGISTER if found.register else Intent.UNKNOWN)
    note = found.note(intent)
    facts = {"sentence": sentence, "note": note, "elsewhere": found.elsewhere or "",
             "others": found.others}
    if found.cancel and found.register:
        return Reading(Intent.UNKNOWN, found.asks, reason="An- und Abmeldung zugleich – unklar",
                       **facts)
    if found.cancel:
        return Reading(Intent.CANCEL, found.asks, **facts)
    if found.register:
        if found.hedge and not note:
            facts["note"] = f"Vorbehalt: ‚{_short(found.hedge)}‘"
        return Reading(Intent.REGISTER, found.asks, **facts)
    if found.hedge:
        return Reading(Intent.UNKNOWN, found.asks, reason=f"Anmeldung unter Vorbehalt – bitte "
                       f"prüfen: ‚{_short(found.hedge)}‘", sentence=found.hedge)
    if found.asks:
        return Reading(Intent.QUESTION, True, reason=note)
    by_subject = _from_subject(subject, body)
    if by_subject:
        return by_subject
    if _THANKS.search(body) and len(body) < 600 and not note and _bare(found.unexplained):
        return Reading(Intent.THANKS, reason="Dank oder Antwort ohne neues Anliegen")
    if note:
        return Reading(Intent.UNKNOWN, reason=f"nicht verstanden – {note}", note=note)
    if found.unexplained:
        return Reading(Intent.UNKNOWN, reason=f"Anliegen nicht erkannt: "
                                              f"‚{_short(found.unexplained[0])}‘")
    return Reading(Intent.UNKNOWN)


def _bare(unexplained: list[str]) -> bool:
    """Nothing but an acknowledgement: what no rule explained is a few words at most
    ("Der Termin ist eingetragen.")."""
    return sum(len(s.split()) for s in unexplained) <= 8


def _calendar_reply(text: str, calendar: tuple[str, str | None, str, str] | None) -> Reading:
    """A calendar program's answer: its PARTSTAT, and any comment a person typed with it."""
    partstat = calendar[0] if calendar else ""
    comment = (calendar[3] if calendar else "") or " ".join(
        s for s in sentences(text) if not _explained(s))
    note = f"Kommentar: ‚{_short(comment)}‘" if comment.strip() else ""
    return Reading(Intent.THANKS, rsvp=True, partstat=partstat, note=note)


def read(parsed: ParsedMail, event: EventConfig | None = None) -> Reading:
    """:func:`classify` with everything the parsed mail and the event say."""
    return classify(parsed.subject, parsed.text, parsed.calendar_method,
                    event=EventFacts.of(event) if event else None,
                    sender_name=parsed.sender_name, calendar=parsed.calendar_reply)


_MONTHS = {"jan": 1, "feb": 2, "mär": 3, "mar": 3, "apr": 4, "mai": 5, "may": 5, "jun": 6,
           "jul": 7, "aug": 8, "sep": 9, "okt": 10, "oct": 10, "nov": 11, "dez": 12, "dec": 12}
_MONTH = (r"(?P<{}>jan(?:uar|uary)?|feb(?:ruar|ruary)?|märz|mär|march|mar|apr(?:il)?|mai|may"
          r"|jun[ie]?|jul[iy]?|aug(?:ust)?|sep(?:t|tember)?|okt(?:ober)?|oct(?:ober)?"
          r"|nov(?:ember)?|dez(?:ember)?|dec(?:ember)?)\b\.?")
_WEEKDAYS = ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"]
_WEEKDAYS_EN = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_DIGIT = re.compile(r"\d")
_DATE_WORDS = ("jan", "feb", "mär", "mar", "apr", "mai", "may", "jun", "jul", "aug", "sep", "okt",
               "oct", "nov", "dez", "dec", "tag", "day", "woch", "herbst", "sommer", "winter",
               "frühling", "frühjahr", "spring", "summer", "autumn", "fall")
_DATE = re.compile(  # every way a mail names a day, in one pass
    r"\b(?P<nd>\d{1,2})\.\s?(?P<nm>\d{1,2})\.(?P<ny>\d{2,4})?"
    r"|\b(?P<iy>20\d\d)-(?P<im>\d\d)-(?P<id>\d\d)\b"
    rf"|\b(?P<md>\d{{1,2}})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?{_MONTH.format('mm')}"
    r"(?:\s*(?P<my>\d{4}))?"
    rf"|\b{_MONTH.format('mm2')}\s+(?P<md2>\d{{1,2}})(?:st|nd|rd|th)?\b"
    r"|\b(?:am|ab|bis|zum|vom|on the|the)\s+(?P<dd>\d{1,2})(?:\.|st|nd|rd|th)(?!\s*\d)"
    rf"|\b(?:im|in|ab|bis|seit|anfang|ende|mitte)\s+{_MONTH.format('om')}(?!\s*\d)"
    r"|\b(?:im|in the|this|next|diesen|nächsten|kommenden)\s+"
    r"(?P<season>frühjahr|frühling|sommer|herbst|winter|spring|summer|autumn|fall)\b"
    r"|\b(?P<wd>" + "|".join(_WEEKDAYS + _WEEKDAYS_EN) + r")\b", _F)
_EVENT_KIND = re.compile(
    r"(?:tagung|konferenz|kongress|seminar|workshop|webinar|schulung|messe|sitzung|treffen"
    r"|veranstaltung|fortbildung|versammlung|fachtag|aktionstag|festival|forum|conference"
    r"|summit)\b", _F)
_WORD_START = re.compile(r"[\w-]*$")
_OUR_KINDS = re.compile(r"^(?:|online-?|digital\w*-?|zoom-?|video-?|virtuell\w*-?)$", _F)
_IN_PERSON = re.compile(r"\bin präsenz\b|\bpräsenz\w*|\bvor ort\b|\bin person\b|\bon site\b",
                        _F)


@dataclass(frozen=True)
class EventFacts:
    """What a mail may name and still mean this event: its day, weekday and title."""

    day: dt.date
    title: str

    @classmethod
    def of(cls, event: EventConfig) -> EventFacts:
        return cls(event.start.date(), event.title.casefold())

    def elsewhere(self, text: str, registering: bool = True) -> str | None:
        """Why ``text`` speaks of another date, event or place than this one, or None.
        Event titles and places count only in a registration (``registering``): a
        cancellation may well name the meeting that keeps someone away."""
        if self._other_date(text):
            return "anderes Datum"
        if not registering:
            return None
        for m in _EVENT_KIND.finditer(text):
            prefix = _WORD_START.search(text, 0, m.start())[0]
            word = prefix + m[0]
            prefix = prefix.casefold().rstrip("-")
            if (word.casefold() not in self.title and not _OUR_KINDS.match(prefix)
                    and not (len(prefix) >= 4 and prefix in self.title)):
                return f"andere Veranstaltung ({word})"
        if _IN_PERSON.search(text):
            return "Präsenz statt online"
        return None

    def _other_date(self, text: str) -> bool:
        if not (_DIGIT.search(text) or _has(text.lower(), _DATE_WORDS)):
            return False  # most sentences name no day at all
        return any(self._differs(m) for m in _DATE.finditer(text))

    def _differs(self, m: re.Match) -> bool:
        """Whether a date the mail names is another day than the event's."""
        day = self.day
        if m["wd"]:
            name = m["wd"].casefold()
            index = _WEEKDAYS.index(name) if name in _WEEKDAYS else _WEEKDAYS_EN.index(name)
            return index != day.weekday()
        if m["season"]:
            return True
        if m["om"]:
            return _MONTHS.get(m["om"][:3].casefold()) != day.month
        if m["dd"]:
            return int(m["dd"]) != day.day
        if m["iy"]:
            number, month, year = int(m["id"]), int(m["im"]), int(m["iy"])
        elif m["nd"]:
            number, month = int(m["nd"]), int(m["nm"])
            year = m["ny"] and int(m["ny"]) + (2000 if len(m["ny"]) == 2 else 0)
        else:
            number = int(m["md"] or m["md2"])
            month = _MONTHS.get((m["mm"] or m["mm2"])[:3].casefold(), 0)
            year = int(m["my"]) if m["my"] else None
        return (number, month) != (day.day, day.month) or year not in (None, day.year)


def _from_subject(subject: str, body: str) -> Reading | None:
    """A subject "Anmeldung" / "Abmeldung" counts only when the body says nothing else:
    empty, or nothing but form fields, greeting and signature (a short mail)."""
    sentences_in_body = [s for s in sentences(_FIELD_LINE.sub("", body)) if len(s) > 25]
    if len(sentences_in_body) > 2 or len(body) > 500:
        return None
    if _SUBJECT_REGISTER.match(subject):
        return Reading(Intent.REGISTER)
    if _SUBJECT_CANCEL.match(subject):
        return Reading(Intent.CANCEL)
    return None
