"""Readings that need little of the body (pure): a calendar program's answer, a subject
"Anmeldung"/"Abmeldung" over an empty body, a thank-you that also asks something."""

from __future__ import annotations

import re

from mailbot.core.models import Intent, Reading
from mailbot.core.text import quote
from mailbot.reading.hints import is_explained, salient
from mailbot.reading.sentences import F, sentences

RSVP_SUBJECT = re.compile(r"^(?:angenommen|abgelehnt|mit vorbehalt|accepted|declined|"
                           r"tentative(?:ly accepted)?|zugesagt|abgesagt)\s*:", F)
SUBJECT_REGISTER = re.compile(r"^\s*(?:anmeldung|registration|teilnahme|register)\b", F)
SUBJECT_CANCEL = re.compile(r"^\s*(?:abmeldung|absage|cancel\w*)\b", F)
FIELD_LINE = re.compile(r"^\s*[\w -]{2,30}:\s*\S", re.MULTILINE)


def asked(body: str) -> str:
    """A request or question anywhere, also one explained as an instruction for what we send
    anyway ("Schicken Sie mir den Link bitte nochmal"), as a note; a thank-you gets no answer,
    so it must ask for nothing."""
    for sentence in sentences(body):
        why = salient(sentence, None)
        if why in ("Frage", "Bitte"):
            return f"{why}: {quote(sentence)}"
    return ""


def bare(unexplained: list[str]) -> bool:
    """Nothing but an acknowledgement: what no rule explained is a few words at most
    ("Der Termin ist eingetragen.")."""
    return sum(len(s.split()) for s in unexplained) <= 8


def calendar_reading(text: str, calendar: tuple[str, str | None, str, str] | None) -> Reading:
    """A calendar program's answer: its PARTSTAT, and any comment a person typed with it."""
    partstat = calendar[0] if calendar else ""
    comment = (calendar[3] if calendar else "") or " ".join(
        s for s in sentences(text) if not is_explained(s))
    note = f"Kommentar: {quote(comment)}" if comment.strip() else ""
    return Reading(Intent.THANKS, rsvp=True, partstat=partstat, note=note)


def from_subject(subject: str, body: str) -> Reading | None:
    """A subject "Anmeldung" / "Abmeldung" counts only when the body says nothing else:
    empty, or nothing but form fields, greeting and signature (a short mail)."""
    sentences_in_body = [s for s in sentences(FIELD_LINE.sub("", body)) if len(s) > 25]
    if len(sentences_in_body) > 2 or len(body) > 500:
        return None
    if SUBJECT_REGISTER.match(subject):
        return Reading(Intent.REGISTER)
    if SUBJECT_CANCEL.match(subject):
        return Reading(Intent.CANCEL)
    return None
