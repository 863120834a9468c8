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
from dataclasses import dataclass

from .models import Intent

_F = re.IGNORECASE
_END = r"(?=\s*(?:[.,;:!)–-]|$|\n|\s(?:und|and|&)\b))"  # the particle ends the clause

_CANCEL = re.compile(
    r"\b(?:absagen|abmelden|abmeldung|stornier\w*|zurückziehen|ziehe\b.{0,40}\bzurück"
    rf"|sage\s+(?:ich\s+|wir\s+)?(?:\S+\s+){{0,10}}ab{_END}"
    rf"|melde\s+(?:mich|uns)\s+(?:\S+\s+){{0,10}}ab{_END}"
    r"|streich\w*.{0,40}\bliste|von der (?:teilnehmer)?liste"
    r"|nicht\s+(?:mehr\s+)?(?:teilnehmen|dabei)|nicht\b.{0,30}\bkommen\b|nicht\s+teil" + _END +
    r"|kann\s+(?:\w+\s+){0,2}nicht\W*$"
    r"|verhindert|schaffe (?:es|ich)\b.{0,30}\bnicht|(?:muss|müssen)\b.{0,40}\bpassen"
    r"|cancel\w*|can(?:'|no)t (?:make it|attend|come|join|participate)"
    r"|(?:unable|not able|won't be able) to (?:attend|make it|join|come|participate)"
    r"|withdraw\w*)",
    _F,
)
_REGISTER = re.compile(
    r"\b(?:melde\s+(?:mich|uns|hiermit|ich|wir|gerne?|folgende|meine\w*|unsere\w*|frau|herrn?)"
    rf"\b.{{0,160}}\ban{_END}"
    rf"|melden\s+(?:wir|uns)\b.{{0,160}}\ban{_END}"
    rf"|(?:wir|ich)\s+(?:\S+\s+)?melden?\b.{{0,160}}\ban{_END}"
    r"|(?:möchte|möchten|würde|würden|will|wollen|werde|werden)\b.{0,120}"
    r"\b(?:teilnehmen|anmelden|dabei sein|mitmachen|teil ?nehmen)"
    rf"|(?:nehme|nehmen)\b.{{0,120}}\bteil{_END}"
    r"|(?:bin|sind)\s+(?:gerne?\s+|auch\s+|sehr\s+gerne?\s+)?dabei\b"
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
_INDIRECT_QUESTION = re.compile(
    r"\b(?:(?:wissen|fragen|nachfragen|erfragen|klären|mitteilen|sagen|informieren)\W+ob"
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
_RSVP_SUBJECT = re.compile(r"^(?:angenommen|abgelehnt|mit vorbehalt|accepted|declined|"
                           r"tentative(?:ly accepted)?|zugesagt|abgesagt)\s*:", _F)
_SUBJECT_REGISTER = re.compile(r"^\s*(?:anmeldung|registration|teilnahme|register)\b", _F)
_SUBJECT_CANCEL = re.compile(r"^\s*(?:abmeldung|absage|cancel\w*)\b", _F)
_FIELD_LINE = re.compile(r"^\s*[\w -]{2,30}:\s*\S", re.MULTILINE)

_NOT_A_FULL_STOP = re.compile(
    r"(?<=\d)\.|(?<=\b\w)\.|\b(?:Dr|Prof|bzw|ggf|ca|Nr|Str|usw|etc|inkl|evtl|Hr|Fr|Min|Std)\.",
    _F)
_WRAPPED_LINE = re.compile(r"(?m)^(.{50,}[^.!?:;,\s])[ \t]*\n(?=[ \t]*(?!\d+[.)]\s|[-*•]\s)"
                           r"[^\s\n][^:\n]{0,30}(?:[^:\n]|$))")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Reading:
    """The intent, and whether the mail also asks something a human must answer."""

    intent: Intent
    asks: bool = False
    rsvp: bool = False
    reason: str = ""


def sentences(text: str) -> list[str]:
    """The text as sentences: dots that end no sentence ("31.05.2021", "31. Mai", "e.V.",
    "Dr.") and hard line wraps do not split it."""
    joined = _NOT_A_FULL_STOP.sub(" ", _WRAPPED_LINE.sub(r"\1 ", text))
    return [s.strip() for s in _SENTENCE_END.split(joined) if s.strip()]


@dataclass
class _Found:
    register: bool = False
    cancel: bool = False
    asks: bool = False
    hedged: bool = False
    substitute: bool = False
    away: bool = False


def _read(parts: list[str]) -> _Found:
    found = _Found()
    for sentence in parts:
        found.away |= bool(_AWAY.search(sentence))
        found.substitute |= bool(_SUBSTITUTE.search(sentence))
        if sentence.endswith("?") or _INDIRECT_QUESTION.search(sentence):
            found.asks = True
            continue
        if _CONDITION.search(sentence):
            continue
        if _CANCEL.search(sentence) and not _EXCUSE.search(sentence):
            found.cancel = True
            continue
        m = _REGISTER.search(sentence)
        if m and not _NEGATION.search(sentence, max(0, m.start() - 30), m.end()):
            found.register = True
            found.hedged |= bool(_HEDGE.search(sentence, max(0, m.start() - 15), m.end() + 80))
    return found


def classify(subject: str, text: str, calendar_method: str | None = None) -> Reading:
    """The intent of a mail from its subject, the text the person wrote now and the method
    of a calendar part it carries (``REPLY``: an answer from a calendar, not a mail)."""
    if (calendar_method or "").upper() == "REPLY" or (
            _RSVP_SUBJECT.match(subject) and calendar_method):
        return Reading(Intent.THANKS, rsvp=True)
    body = text[:20000]
    found = _read(sentences(body))
    if found.away and not found.register:
        return Reading(Intent.AUTO, reason="Abwesenheitsnotiz (ohne Kennzeichnung)")
    if found.substitute:
        return Reading(Intent.UNKNOWN, found.asks, reason="Vertretung/Ersatzperson – bitte prüfen")
    if found.cancel and found.register:
        return Reading(Intent.UNKNOWN, found.asks, reason="An- und Abmeldung zugleich – unklar")
    if found.cancel:
        return Reading(Intent.CANCEL, found.asks)
    if found.register and found.hedged:
        return Reading(Intent.UNKNOWN, found.asks,
                       reason="Anmeldung unter Vorbehalt – bitte prüfen")
    if found.register:
        return Reading(Intent.REGISTER, found.asks)
    if found.asks:
        return Reading(Intent.QUESTION, True)
    return _from_subject(subject, body) or (
        Reading(Intent.THANKS) if _THANKS.search(body) and len(body) < 600
        else Reading(Intent.UNKNOWN))


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
