"""The deciding sentence in a decision's reason, and what else in the mail a human must
read (pure): a registration or cancellation that leaves a sentence unexplained is flagged."""

from __future__ import annotations

import re
from dataclasses import replace

from mailbot.core.models import Action, Decision, Reading, Request
from mailbot.core.text import ADDR_RE, quote

_TITLED_NAME = re.compile(r"\b(?:Frau|Herrn?|Mr|Mrs|Ms)\.?\s+(?:(?:Dr|Prof)\.\s*)*([\w-]+)")


def noted(decision: Decision, reading: Reading, mail: Request, what: str) -> Decision:
    """The deciding sentence in the reason; flagged as well when a sentence no rule
    explained holds something a human must read (an address of a participant excepted).
    A flagged mail quotes the sentence to read first, then the deciding one."""
    if decision.action not in (Action.REGISTER, Action.CANCEL):
        return decision
    deciding = f"{what}: {quote(reading.sentence)}" if reading.sentence else ""
    note = _to_read(reading.note, mail)
    if note or reading.asks:
        read = f"bitte lesen – {note}" if note else "enthält eine Frage – bitte lesen"
        return replace(decision, attention=True, reason="; ".join(filter(None, [
            decision.reason, read, deciding])))
    return replace(decision, reason="; ".join(filter(None, [decision.reason, deciding])))


def _to_read(note: str, mail: Request) -> str:
    """The note, unless it only names the participants' own addresses or names."""
    if note.startswith("Adresse:"):
        known = {p.email for p in mail.people} | {mail.sender}
        if all(a.lower() in known for a in ADDR_RE.findall(note)):
            return ""
    if note.startswith("Person:"):  # "Herr Schulz wird am Vormittag teilnehmen": known
        names = {w for p in mail.people for w in p.name.split()[-1:]}
        named = _TITLED_NAME.findall(note)  # every person named must be a participant
        if named and all(name in names for name in named):
            return ""
    return note
