"""(parsed mail, intent, current state, arrival time) → what to do (pure).

The decision is a plain value: the action recorded for the mail, a reason a human
understands, and one step per participant (new status, which reply). Nothing here
touches the database or the network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .classify import Reading
from .config import EventConfig
from .models import Action, Intent, ParsedMail, Participant, Registration, ReplyKind, Status

MAX_PARTICIPANTS = 10


@dataclass(frozen=True)
class Step:
    participant: Participant
    status: Status | None  # the status to record; None leaves the row as it is
    reply: ReplyKind | None
    registered_by: str | None = None  # the sender, when registering someone else


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    steps: tuple[Step, ...] = ()
    attention: bool = False  # answered, but a human should read it too (left flagged)


def decide(
    mail: ParsedMail,
    robot_reason: str | None,
    reading: Reading,
    current: Mapping[str, Status],
    confirmed_count: int,
    received_at: dt.datetime,
    event: EventConfig,
) -> Decision:
    """What to do with one mail; ``current`` maps the participants' addresses to their
    present status, ``confirmed_count`` is the number of confirmed registrations."""
    if robot_reason:
        return Decision(Action.IGNORE, robot_reason)
    if mail.limit:
        return Decision(Action.REVIEW, mail.limit)
    if mail.sender is None:
        return Decision(Action.REVIEW, "Absender nicht lesbar oder mehrdeutig")
    intent = reading.intent
    if reading.rsvp:
        return Decision(Action.NOOP, "Antwort eines Kalenderprogramms (Zusage/Absage)")
    if intent in (Intent.REGISTER, Intent.CANCEL) and mail.participant_issue:
        return Decision(Action.REVIEW, mail.participant_issue)
    if intent is Intent.REGISTER:
        decision = _register(mail, current, confirmed_count, received_at, event)
        if reading.asks and decision.action is Action.REGISTER:
            reason = "; ".join(filter(None, [decision.reason, "enthält eine Frage – bitte lesen"]))
            return replace(decision, reason=reason, attention=True)
        return decision
    if intent is Intent.CANCEL:
        return _cancel(mail, current)
    if intent is Intent.QUESTION:
        return Decision(Action.REVIEW, "Frage – bitte persönlich beantworten")
    if intent is Intent.THANKS:
        return Decision(Action.NOOP, "Dank oder Antwort ohne neues Anliegen")
    return Decision(Action.REVIEW, reading.reason or "Anliegen nicht erkannt")


def _register(
    mail: ParsedMail,
    current: Mapping[str, Status],
    confirmed_count: int,
    received_at: dt.datetime,
    event: EventConfig,
) -> Decision:
    people = mail.participants
    if not people:
        return Decision(Action.REVIEW, "Anmeldung ohne erkennbare Person")
    if len(people) > MAX_PARTICIPANTS:
        return Decision(Action.REVIEW, f"mehr als {MAX_PARTICIPANTS} Personen in einer Mail")
    if received_at > event.deadline:
        steps = tuple(Step(p, None, ReplyKind.CLOSED) for p in people)
        return Decision(Action.REGISTER, "nach dem Anmeldeschluss eingegangen", steps)
    steps = []
    by = mail.registered_by
    for person in people:
        if current.get(person.email) in (Status.CONFIRMED, Status.WAITLISTED):
            steps.append(Step(person, None, ReplyKind.DUPLICATE, by))
        elif event.capacity is not None and confirmed_count >= event.capacity:
            steps.append(Step(person, Status.WAITLISTED, ReplyKind.WAITLISTED, by))
        else:
            confirmed_count += 1
            steps.append(Step(person, Status.CONFIRMED, ReplyKind.CONFIRMATION, by))
    if by and mail.sender:
        steps.append(Step(Participant(mail.sender, mail.sender_name), None,
                          ReplyKind.ON_BEHALF))
    notes = []
    if all(s.status is None for s in steps):
        notes.append("bereits angemeldet")
    if mail.registered_by:
        notes.append(f"angemeldet von {mail.registered_by}")
    if mail.reply_to:
        notes.append(f"Reply-To weicht ab ({mail.reply_to}); Antwort an From")
    return Decision(Action.REGISTER, "; ".join(notes), tuple(steps))


def _cancel(mail: ParsedMail, current: Mapping[str, Status]) -> Decision:
    people = mail.participants or ()
    if len(people) != 1:
        return Decision(Action.REVIEW, "Abmeldung: unklar, für wen")
    person = people[0]
    if current.get(person.email) in (Status.CONFIRMED, Status.WAITLISTED):
        return Decision(Action.CANCEL, "", (Step(person, Status.CANCELLED,
                                                 ReplyKind.CANCELLATION),))
    return Decision(Action.CANCEL, "war nicht angemeldet",
                    (Step(person, None, ReplyKind.NOT_REGISTERED),))


def next_registration(step: Step, existing: Registration | None, mail_key: str,
                      now: dt.datetime, new_uid: str) -> Registration | None:
    """The row a step leaves behind, or None when the row stays as it is. ``now`` is when
    the mail arrived: it orders registrations (and a waitlist) by arrival.

    The calendar UID never changes once given; SEQUENCE rises with every change a calendar
    must see (cancelled, confirmed again) so that clients replace the older entry.
    """
    person = step.participant
    if step.status is None:
        if (existing is not None and step.reply is ReplyKind.DUPLICATE and person.organisation
                and person.organisation != existing.organisation):
            return replace(existing, organisation=person.organisation)  # a correction
        return None
    if existing is None:
        return Registration(email=person.email, name=person.name,
                            organisation=person.organisation, status=step.status,
                            ics_uid=new_uid, ics_sequence=0, registered_at=now,
                            message_id=mail_key, registered_by=step.registered_by)
    if step.status is Status.CANCELLED:
        return replace(existing, status=Status.CANCELLED,
                       ics_sequence=existing.ics_sequence + 1)
    return Registration(email=person.email, name=person.name or existing.name,
                        organisation=person.organisation or existing.organisation,
                        status=step.status, ics_uid=existing.ics_uid,
                        ics_sequence=existing.ics_sequence + 1, registered_at=now,
                        message_id=mail_key, registered_by=step.registered_by)
