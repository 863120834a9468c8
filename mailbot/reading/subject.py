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


# where a calendar program's own text begins ("X has accepted this invitation.",
# "X hat diese Einladung angenommen.", "Einladung von Google Kalender") — and where the
# note a person typed with her answer stands in it ("… with a note: "…"")
_PROGRAM_LINE = re.compile(
    r"^.{0,80}\b(?:(?:has|have)\s+(?:tentatively\s+)?(?:accepted|declined)\s+(?:this|the|your)"
    r"\s+invitation|hat\s+(?:diese|die|Ihre)\s+Einladung\b|invitation from google calendar"
    r"|einladung von google kalender)", F | re.MULTILINE)
_NOTE = re.compile(r"(?:with a note|mit (?:folgender|einer) Notiz)\b[^:\n]{0,40}:\s*[\"„“”]?"
                   r"(?P<note>[^\"„“”]{1,1000})", F)


def calendar_comment(text: str, calendar: tuple[str, str | None, str, str] | None) -> str:
    """What a person typed with her calendar answer: the answer's COMMENT, the note the
    program quotes, or the words she wrote above the program's own text — never that
    text itself (the event's title, its time, the Zoom link, "Einladung von Google …")."""
    if calendar and calendar[3].strip():
        return calendar[3].strip()
    if m := _NOTE.search(text):
        return m["note"].strip()
    start = _PROGRAM_LINE.search(text)
    own = text[:start.start()] if start else text
    return " ".join(s for s in sentences(own) if not is_explained(s))


def calendar_reading(comment: str, partstat: str, says_more: bool) -> Reading:
    """A calendar program's answer: its PARTSTAT, and the comment a person typed with it as
    a note when it says more than the answer (a question, a request, another person)."""
    note = f"Kommentar: {quote(comment)}" if comment.strip() and says_more else ""
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
