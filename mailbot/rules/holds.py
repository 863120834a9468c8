"""A place held while a human reads (pure): a registration that waits for review keeps
its sender's place in arrival order (status HELD, "vorgemerkt") until the organiser
decides — approve confirms into it, dismiss releases it."""

from __future__ import annotations

import re
from dataclasses import replace

from mailbot.config import EventConfig
from mailbot.core.models import (
    Action,
    Decision,
    Intent,
    Participant,
    Request,
    Situation,
    Status,
    Step,
)

# the deciding sentence registers its writer herself ("melde mich … an", "register myself";
# not "wir melden uns" before a list): only narrows when a place is held, decides nothing else
_FOR_HERSELF = re.compile(r"\b(?:melde|melden)\s+(?:\S+\s+){0,3}?mich\b|\bmyself\b"
                          r"|\bI(?:'d| would)? like to (?:register|attend|join)", re.IGNORECASE)


def hold(request: Request, situation: Situation, event: EventConfig) -> tuple[Step, ...]:
    """A place held while a human reads a registration (status HELD, no reply): for the
    sender — the one person with evidence when the doubt is someone named without an
    address or a list not fully read, and whom `approve` registers — if a place is free
    and nobody waits before her. Not for another event's mail."""
    reading, sender = request.evidence, request.sender
    if not _FOR_HERSELF.search(reading.sentence or ""):
        return ()  # she does not register herself in the deciding sentence: nothing held
    if reading.elsewhere or sender is None or event.cancelled:
        return ()
    if situation.deadline_applies and situation.received_at > event.deadline:
        return ()
    people = [p for p in request.people if p.email == sender]
    if not people or situation.current.get(sender) in (
            Status.CONFIRMED, Status.WAITLISTED, Status.HELD):
        return ()
    if event.capacity is not None and (situation.confirmed_count >= event.capacity
                                       or situation.waitlist_head is not None):
        return ()  # no free place to hold: the organiser's decision puts her on the waitlist
    return (Step(people[0], Status.HELD, None),)


def with_hold(review: Decision, request: Request, situation: Situation,
              event: EventConfig) -> Decision:
    """A review of a registration, with the place of its sender held (:func:`hold`)."""
    held = hold(request, situation, event) if request.evidence.intent is Intent.REGISTER \
        else ()
    if not held:
        return review
    return replace(review, steps=held,
                   reason=f"{review.reason}; Platz vorgemerkt für {held[0].participant.email}")


def still_held(people: tuple[Participant, ...], situation: Situation) -> Decision | None:
    """A new mail of someone whose place is held while the organiser has not decided: for
    her too (no mail goes to a held person before a human decided); None otherwise."""
    held = [p.email for p in people if situation.current.get(p.email) is Status.HELD]
    if not held or situation.decided:
        return None
    return Decision(Action.REVIEW, f"Platz vorgemerkt für {held[0]} – eine frühere Mail "
                                   f"wartet noch auf Ihre Entscheidung")
