"""What does the writer want? register / cancel / question / thanks (pure).

Deliberately cautious: a wrong confirmation is worse than none. A registration must say so
in the first person ("ich melde mich an", "nehme gerne teil", "I would like to attend");
a mere mention ("Anmeldungen sind bis 28.05. möglich", "ich kann erst ab 13 Uhr dabei
sein") is not one. Anything unclear becomes a question for a human.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import Intent

_F = re.IGNORECASE | re.DOTALL

_CANCEL = re.compile(
    r"\b(?:absagen|sage\b[^.!?\n]{0,60}\bab\b|abmelden|melde\b[^.!?\n]{0,60}\bab\b"
    r"|abmeldung|stornier\w*|streich\w*[^.!?\n]{0,40}\bliste|von der (?:teilnehmer)?liste"
    r"|(?:nicht|doch nicht) (?:mehr )?(?:teilnehmen|dabei sein|kommen)"
    r"|schaffe (?:es|ich)\b[^.!?\n]{0,30}\bnicht|klappt\b[^.!?\n]{0,30}\bnicht"
    r"|(?:muss|müssen)\b[^.!?\n]{0,40}\bpassen"
    r"|cancel\w*|can(?:'|no)t (?:make it|attend|come|join)|(?:unable|not able) to "
    r"(?:attend|make it|join)|withdraw\w*|won't be able to)",
    _F,
)
_REGISTER = re.compile(
    r"\b(?:(?:melde|melden)\b[^.!?\n]{0,160}\ban\b"
    r"|(?:möchte|möchten|würde|würden|will|wollen|werde|werden)\b[^.!?\n]{0,160}"
    r"\b(?:teilnehmen|anmelden|dabei sein|mitmachen|teil ?nehmen)"
    r"|(?:nehme|nehmen)\b[^.!?\n]{0,160}\bteil\b"
    r"|(?:bin|sind)\s+(?:gerne?\s+|auch\s+|sehr\s+gerne?\s+)?dabei\b"
    r"|(?:bin|sind)\s+(?:ich|wir)\b[^.!?\n]{0,60}\bdabei\b"
    r"|(?:bestätige|bestätigen)\b[^.!?\n]{0,40}\bteilnahme"
    r"|(?:sage|sagen)\s+(?:ich\s+|wir\s+)?(?:hiermit\s+|gerne?\s+|sehr\s+gerne?\s+)?"
    r"(?:meine\s+|unsere\s+)?(?:teilnahme\s+)?zu\b"
    r"|(?:anmeldung|teilnahme)\s+(?:für|von)\b[^.!?\n]{0,160}\b(?:mich|uns|frau|herrn?|kolleg\w*)\b"
    r"|hiermit\b[^.!?\n]{0,40}\banmeldung"
    r"|(?:i|we)(?:'d| would| want to| wish to| will)?\s+(?:like\s+to\s+|love\s+to\s+)?"
    r"(?:register|attend|join|participate|sign\s+up)"
    r"|please\s+(?:register|sign\s+up|add)\s+(?:me|us)|count\s+(?:me|us)\s+in"
    r"|registration\s+for\s+(?:me|us|my))",
    _F,
)
_THANKS = re.compile(r"\b(?:dank\w*|thanks?|thank you|merci)\b", re.IGNORECASE)
_QUESTION = re.compile(r"\?\s*(?:$|\n|[A-ZÄÖÜ])", re.MULTILINE)
_RSVP_SUBJECT = re.compile(r"^(?:angenommen|abgelehnt|mit vorbehalt|accepted|declined|"
                           r"tentative(?:ly accepted)?|zugesagt|abgesagt)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """The intent, and whether the mail also asks something a human must answer."""

    intent: Intent
    asks: bool = False
    rsvp: bool = False
    reason: str = ""


_NOT_A_FULL_STOP = re.compile(
    r"(?<=\d)\.|(?<=\b\w)\.|\b(?:Dr|Prof|bzw|ggf|ca|Nr|Str|usw|etc|inkl|evtl|Hr|Fr)\.",
    re.IGNORECASE)
_WRAPPED_LINE = re.compile(r"(?<=\S)[ \t]*\n(?=[ \t]*[^\s\d*•-])")


def sentences(text: str) -> str:
    """The text with dots that end no sentence ("31.05.2021", "31. Mai", "e.V.", "Dr.")
    and hard line wraps taken out, so that one sentence stays on one line."""
    return _WRAPPED_LINE.sub(" ", _NOT_A_FULL_STOP.sub(" ", text))


def classify(subject: str, text: str, calendar_method: str | None = None) -> Reading:
    """The intent of a mail from its subject, the text the person wrote now and the method
    of a calendar part it carries (``REPLY``: an answer from a calendar, not a mail)."""
    body = sentences(text[:20000])
    if (calendar_method or "").upper() == "REPLY" or (
            _RSVP_SUBJECT.match(subject) and calendar_method):
        return Reading(Intent.THANKS, rsvp=True)
    asks = bool(_QUESTION.search(body + "\n"))
    cancel = bool(_CANCEL.search(body))
    register = bool(_REGISTER.search(body))
    if cancel and register:
        return Reading(Intent.UNKNOWN, asks, reason="An- und Abmeldung zugleich – unklar")
    if cancel:
        return Reading(Intent.CANCEL, asks)
    if register:
        return Reading(Intent.REGISTER, asks)
    if asks:
        return Reading(Intent.QUESTION, True)
    if not body.strip() and _REGISTER.search(subject):
        return Reading(Intent.REGISTER)
    if _THANKS.search(body) and len(body) < 600:
        return Reading(Intent.THANKS)
    if _CANCEL.search(subject) and len(body) < 400:
        return Reading(Intent.CANCEL)
    if re.search(r"\banmeldung\b|\bregistration\b", subject, re.IGNORECASE) and len(body) < 400:
        return Reading(Intent.REGISTER)
    return Reading(Intent.UNKNOWN)
