"""What does the writer want? register / cancel / question / thanks (pure).

Deliberately cautious: a wrong confirmation is worse than none, so anything that is not
clearly a registration, cancellation or thank-you becomes a question for a human.
"""

from __future__ import annotations

import re

from .models import Intent

_CANCEL = re.compile(
    r"\b(?:absagen|sage\b.{0,40}\bab\b|abmelden|abmeldung|melde\b.{0,40}\bab\b|stornier\w*"
    r"|streich\w*.{0,40}liste|nicht (?:mehr )?teilnehmen|kann (?:leider )?nicht teilnehmen"
    r"|schaffe es (?:doch )?nicht|schaffe ich (?:es )?(?:doch )?nicht"
    r"|kann (?:leider )?doch nicht|cancel\w*|can(?:'|no)t make it|unable to attend"
    r"|withdraw\w*)",
    re.IGNORECASE | re.DOTALL,
)
_REGISTER = re.compile(
    r"\b(?:anmelden|anmeldung|melde\b.{0,60}\ban\b|melden\b.{0,60}\ban\b|teilnehmen|teilnahme"
    r"|nehme\b.{0,40}\bteil|nehmen\b.{0,40}\bteil|bin dabei|sind dabei|dabei sein"
    r"|register\w*|sign (?:me|us) up|attend|participate|join)",
    re.IGNORECASE | re.DOTALL,
)
_THANKS = re.compile(r"\b(?:dank\w*|thanks?|thank you)\b", re.IGNORECASE)
_QUESTION = re.compile(r"\?|\b(?:frage|question)\b", re.IGNORECASE)


def classify(subject: str, text: str) -> Intent:
    """The intent of a mail from its subject and the text the person wrote now."""
    body = text[:5000]
    if _CANCEL.search(body) or (_CANCEL.search(subject) and not _REGISTER.search(body)):
        return Intent.CANCEL
    if _QUESTION.search(body):
        return Intent.QUESTION
    if _REGISTER.search(body):
        return Intent.REGISTER
    if _THANKS.search(body):
        return Intent.THANKS
    if _REGISTER.search(subject) and len(body) < 300:
        return Intent.REGISTER
    return Intent.UNKNOWN
