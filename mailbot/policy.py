"""(parsed mail, intent, current state, arrival time) → what to do (pure).

The decision is a plain value: the action recorded for the mail, a reason a human
understands, and one step per participant (new status, which reply). Nothing here
touches the database or the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from . import guard
from .classify import Reading
from .config import EventConfig, LimitsConfig, ZoomConfig
from .guard import Usage
from .models import Action, Intent, ParsedMail, Participant, Registration, ReplyKind, Status
from .text import ADDR_RE

DAY = dt.timedelta(days=1)


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


@dataclass(frozen=True)
class Situation:
    """What a decision needs to know besides the mail itself."""

    current: Mapping[str, Status]  # the participants' present status, by address
    confirmed_count: int
    received_at: dt.datetime  # when the mail arrived (IMAP INTERNALDATE)
    now: dt.datetime
    max_age: dt.timedelta = dt.timedelta(days=7)
    max_participants: int = 10
    waitlist_head: Registration | None = None  # who moves up when a place becomes free
    deadline_applies: bool = True  # False for an organiser's own additions
    age_applies: bool = True  # False for an organiser's additions and for a preview
    others_get_details: bool = True  # people registered by someone else: details at once


def decide(mail: ParsedMail, reading: Reading, situation: Situation, event: EventConfig,
           robot: str | None = None, suspicious: str | None = None) -> Decision:
    """What to do with one mail. ``robot``: why it must not be answered (guard);
    ``suspicious``: why a human should check the sender (e.g. DMARC failed)."""
    if robot:
        return Decision(Action.IGNORE, robot)
    if situation.age_applies and situation.received_at < situation.now - situation.max_age:
        days = situation.max_age / DAY
        return Decision(Action.IGNORE, f"älter als {days:g} Tage – vor dem Start von mailbot "
                                       f"eingegangen, nicht beantwortet")
    if mail.limit:
        return Decision(Action.REVIEW, mail.limit)
    if mail.sender is None:
        return Decision(Action.REVIEW, "Absender nicht lesbar oder mehrdeutig")
    if suspicious:
        return Decision(Action.REVIEW, suspicious)
    intent = reading.intent
    if intent is Intent.AUTO:
        return Decision(Action.IGNORE, reading.reason or "automatische Nachricht")
    if reading.rsvp:
        return _calendar_reply(mail, reading, situation, event)
    if intent in (Intent.REGISTER, Intent.CANCEL):
        doubt = _doubt(mail, reading)
        if doubt:
            return Decision(Action.REVIEW, doubt)
    if intent is Intent.REGISTER:
        return _noted(_register(mail, situation, event), reading, mail, "Anmeldung")
    if intent is Intent.CANCEL:
        head = None if event.cancelled else situation.waitlist_head
        return _noted(_cancel(mail, situation.current, head), reading, mail, "Abmeldung")
    if intent is Intent.QUESTION:
        return Decision(Action.REVIEW, "; ".join(filter(None, [
            "Frage – bitte persönlich beantworten", reading.reason])))
    if intent is Intent.THANKS:
        return Decision(Action.NOOP, "Dank oder Antwort ohne neues Anliegen")
    return Decision(Action.REVIEW, reading.reason or "Anliegen nicht erkannt")


def _doubt(mail: ParsedMail, reading: Reading) -> str | None:
    """Why a registration or cancellation must not be carried out, or None. The rules of
    evidence: this event only; a person spoken of must come with an address of their own
    (never falls back to the sender); the participants must be readable."""
    if reading.elsewhere:
        return f"nicht diese Veranstaltung – {reading.elsewhere}"
    if mail.participant_issue:
        return mail.participant_issue
    if reading.others and not any(p.email != mail.sender for p in mail.participants):
        return f"Person ohne eigene Adresse: ‚{_cut(reading.others)}‘"
    return None


_TITLED_NAME = re.compile(r"\b(?:Frau|Herrn?|Mr|Mrs|Ms)\.?\s+(?:(?:Dr|Prof)\.\s*)*([\w-]+)")


def _cut(sentence: str, limit: int = 140) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _noted(decision: Decision, reading: Reading, mail: ParsedMail, what: str) -> Decision:
    """The deciding sentence in the reason; flagged as well when a sentence no rule
    explained holds something a human must read (an address of a participant excepted).
    A flagged mail quotes the sentence to read first, then the deciding one."""
    if decision.action not in (Action.REGISTER, Action.CANCEL):
        return decision
    deciding = f"{what}: ‚{_cut(reading.sentence)}‘" if reading.sentence else ""
    note = _to_read(reading.note, mail)
    if note or reading.asks:
        read = f"bitte lesen – {note}" if note else "enthält eine Frage – bitte lesen"
        return replace(decision, attention=True, reason="; ".join(filter(None, [
            decision.reason, read, deciding])))
    return replace(decision, reason="; ".join(filter(None, [decision.reason, deciding])))


def _to_read(note: str, mail: ParsedMail) -> str:
    """The note, unless it only names the participants' own addresses or names."""
    if note.startswith("Adresse:"):
        known = {p.email for p in mail.participants} | {mail.sender}
        if all(a.lower() in known for a in ADDR_RE.findall(note)):
            return ""
    if note.startswith("Person:"):  # "Herr Schulz wird am Vormittag teilnehmen": known
        names = {w for p in mail.participants for w in p.name.split()[-1:]}
        if any(name in names for name in _TITLED_NAME.findall(note)):
            return ""
    return note


def _calendar_reply(mail: ParsedMail, reading: Reading, situation: Situation,
                    event: EventConfig) -> Decision:
    """A calendar program's answer. ACCEPTED without comment: nothing to do. DECLINED: a
    cancellation of that attendee (flagged when a comment comes with it). Anything else
    (TENTATIVE, a comment with an acceptance, no readable attendee): a human."""
    partstat, attendee, name = (mail.calendar_reply or ("", None, ""))[:3]
    if partstat == "ACCEPTED" and not reading.note:
        return Decision(Action.NOOP, "Zusage eines Kalenderprogramms ohne Kommentar")
    if partstat == "DECLINED" and attendee:
        person = Participant(attendee, name or mail.sender_name)
        head = None if event.cancelled else situation.waitlist_head
        decision = _cancel(replace(mail, participants=(person,)), situation.current, head)
        decision = replace(decision, reason="; ".join(filter(None, [
            decision.reason, "Absage über den Kalender (DECLINED)"])))
        return _flag(decision, f"bitte lesen – {reading.note}") if reading.note else decision
    what = {"TENTATIVE": "Zusage unter Vorbehalt (TENTATIVE)", "ACCEPTED": "Zusage mit Kommentar",
            "DECLINED": "Absage ohne lesbaren Teilnehmer"}.get(partstat, "Kalenderantwort")
    return Decision(Action.REVIEW, "; ".join(filter(None, [what, reading.note])))


def _flag(decision: Decision, note: str) -> Decision:
    reason = "; ".join(filter(None, [decision.reason, note]))
    return replace(decision, reason=reason, attention=True)


def _register(mail: ParsedMail, situation: Situation, event: EventConfig) -> Decision:
    """Each person listed: confirmed, waitlisted or told they are registered already.
    Somebody registered by another person (anybody but the sender) is *asked*: their mail
    names who registered them (ReplyKind.THIRD_PARTY); without ``others_get_details`` no
    row is made until they answer themselves."""
    people = mail.participants
    if not people:
        return Decision(Action.REVIEW, "Anmeldung ohne erkennbare Person")
    if len(people) > situation.max_participants:
        return Decision(Action.REVIEW,
                        f"mehr als {situation.max_participants} Personen in einer Mail")
    late = situation.deadline_applies and situation.received_at > event.deadline
    if late or event.cancelled:
        steps = tuple(Step(p, None, ReplyKind.CLOSED, _by(mail, p)) for p in people)
        reason = ("Veranstaltung abgesagt" if event.cancelled
                  else "nach dem Anmeldeschluss eingegangen")
        return Decision(Action.REGISTER, reason, steps)
    steps = []
    confirmed = situation.confirmed_count
    for person in people:
        by = _by(mail, person)
        if situation.current.get(person.email) in (Status.CONFIRMED, Status.WAITLISTED):
            steps.append(Step(person, None, ReplyKind.DUPLICATE, by))
        elif by and not situation.others_get_details:
            steps.append(Step(person, None, ReplyKind.THIRD_PARTY, by))  # asked only
        elif event.capacity is not None and (confirmed >= event.capacity
                                             or situation.waitlist_head is not None):
            # full, or people wait already: nobody jumps the queue
            kind = ReplyKind.THIRD_PARTY if by else ReplyKind.WAITLISTED
            steps.append(Step(person, Status.WAITLISTED, kind, by))
        else:
            confirmed += 1
            kind = ReplyKind.THIRD_PARTY if by else ReplyKind.CONFIRMATION
            steps.append(Step(person, Status.CONFIRMED, kind, by))
    others = [s.participant.email for s in steps if s.registered_by]
    if others and mail.sender and mail.sender not in {p.email for p in people}:
        steps.append(Step(Participant(mail.sender, mail.sender_name), None,
                          ReplyKind.ON_BEHALF))
    notes = []
    if all(s.status is None for s in steps):
        asked = any(s.reply is ReplyKind.THIRD_PARTY for s in steps)
        notes.append("gefragt, noch nicht angemeldet" if asked else "bereits angemeldet")
    if others:
        notes.append(f"angemeldet von {mail.sender}")
    if mail.reply_to:
        notes.append(f"Reply-To weicht ab ({mail.reply_to}); Antwort an From")
    return Decision(Action.REGISTER, "; ".join(notes), tuple(steps))


def _by(mail: ParsedMail, person: Participant) -> str | None:
    """Who registered ``person`` when it was not she herself: the sender."""
    return mail.sender if mail.sender and person.email != mail.sender else None


def _may_cancel_for(sender: str, email: str) -> bool:
    """Whether ``sender``'s word cancels ``email``: her own address, or a colleague's at
    the same organisation (one domain, not a freemail one). Anybody else's word that a
    person cannot come goes to a human: a stranger must not free a place that is not hers."""
    if sender == email:
        return True
    domain = email.rpartition("@")[2]
    return sender.rpartition("@")[2] == domain and domain not in guard.FREEMAIL


def _cancel(mail: ParsedMail, current: Mapping[str, Status],
            waitlist_head: Registration | None) -> Decision:
    people = mail.participants or ()
    if len(people) != 1:
        return Decision(Action.REVIEW, "Abmeldung: unklar, für wen")
    person = people[0]
    if mail.sender and not _may_cancel_for(mail.sender, person.email):
        return Decision(Action.REVIEW, f"Abmeldung für {person.email}, geschrieben von "
                                       f"{mail.sender} – bitte mit der Person klären")
    if current.get(person.email) in (Status.CONFIRMED, Status.WAITLISTED):
        steps = [Step(person, Status.CANCELLED, ReplyKind.CANCELLATION)]
        if current[person.email] is Status.CONFIRMED and waitlist_head is not None:
            head = waitlist_head  # a place is free: the first on the waitlist moves up
            steps.append(Step(Participant(head.email, head.name, head.organisation),
                              Status.CONFIRMED, ReplyKind.CONFIRMATION))
            return Decision(Action.CANCEL, f"Platz frei: {head.email} von der Warteliste "
                                           f"bestätigt", tuple(steps))
        return Decision(Action.CANCEL, "", tuple(steps))
    return Decision(Action.CANCEL, "war nicht angemeldet",
                    (Step(person, None, ReplyKind.NOT_REGISTERED),))


def within_budget(decision: Decision, mail: ParsedMail, usage: Usage,
                  limits: LimitsConfig) -> Decision:
    """Registrations and replies share one budget: a mail that would go beyond any of the
    abuse limits goes to a human whole — never a row without its reply, never a mail to
    strangers beyond the small budget for people registered by someone else."""
    if not decision.steps:
        return decision
    recipients = [s.participant.email for s in decision.steps if s.reply is not None]
    others = [s.participant.email for s in decision.steps
              if s.registered_by and s.reply is not None]
    listed = mail.sender in {p.email for p in mail.participants}
    new = [s.participant.email for s in decision.steps
           if decision.action is Action.REGISTER
           and s.status in (Status.CONFIRMED, Status.WAITLISTED)]
    reason = (guard.reply_cap(recipients, usage, limits.replies_per_recipient_per_day,
                              limits.replies_per_domain_per_day)
              or guard.unlisted_sender(others, listed)
              or guard.others_per_sender(others, usage, limits.max_others_per_sender_per_day)
              or guard.others_per_hour(others, usage, limits.max_others_per_hour)
              or guard.domain_burst(new, usage, limits.max_new_per_domain_per_hour))
    return Decision(Action.REVIEW, reason) if reason else decision


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
    if existing.status is Status.WAITLISTED and step.status is Status.CONFIRMED:
        return replace(existing, status=Status.CONFIRMED)  # moved up: keeps its place in time
    return Registration(email=person.email, name=person.name or existing.name,
                        organisation=person.organisation or existing.organisation,
                        status=step.status, ics_uid=existing.ics_uid,
                        ics_sequence=existing.ics_sequence + 1, registered_at=now,
                        message_id=mail_key, registered_by=step.registered_by,
                        language=existing.language)


ASKED = "asked:"  # notice key prefix: a person registered by someone else was mailed
HOUR = dt.timedelta(hours=1)


def asked_key(sender: str) -> str:
    """The notice key for people registered by ``sender`` (a hash: no address in keys)."""
    return ASKED + hashlib.sha256(sender.lower().encode()).hexdigest()[:16]


def asked(decision: Decision) -> list[tuple[str, str]]:
    """(email, notice key) of each person registered by someone else and mailed now."""
    return [(s.participant.email, asked_key(s.registered_by)) for s in decision.steps
            if s.registered_by and s.reply is not None]


def reminder_key(before: dt.timedelta) -> str:
    return f"reminder:{int(before.total_seconds())}s"


def due_reminders(confirmed: list[Registration], before: tuple[dt.timedelta, ...],
                  start: dt.datetime, now: dt.datetime, done: set[tuple[str, str]],
                  cancelled: bool = False) -> list[tuple[Registration, str, bool]]:
    """Which reminders to give now: (registration, key, send?). Each person gets each
    reminder once. When several are due (mailbot was down), only the one nearest the start
    is sent and the older ones are marked as given; a reminder whose time came before the
    person registered is marked as given too (their confirmation is fresher)."""
    if now >= start or cancelled:
        return []
    due = [b for b in before if start - b <= now]
    if not due:
        return []
    nearest = min(due)
    plan = []
    for reg in confirmed:
        for b in due:
            key = reminder_key(b)
            if (reg.email, key) not in done:
                plan.append((reg, key, b == nearest and reg.registered_at < start - b))
    return plan


def event_version(event: EventConfig, zoom: ZoomConfig) -> str:
    """A short fingerprint of what a calendar entry shows: time, title, Zoom details."""
    fields = [event.title, event.start.isoformat(), event.end.isoformat(), event.timezone,
              zoom.url, zoom.meeting_id, zoom.passcode or ""]
    return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()[:12]


def event_details(event: EventConfig, zoom: ZoomConfig) -> dict[str, str]:
    """What a calendar entry of this version shows, as text (to say later what changed)."""
    local = event.start.astimezone(event.tz)
    return {"title": event.title, "date": f"{local:%d.%m.%Y}", "start": f"{local:%H:%M}",
            "end": f"{event.end.astimezone(event.tz):%H:%M}", "url": zoom.url,
            "meeting_id": zoom.meeting_id, "passcode": zoom.passcode or "–"}


def changed_details(old: dict[str, str] | None, new: dict[str, str]
                    ) -> list[tuple[str, str, str]]:
    """(field, old, new) for each detail that differs; none when the old ones are unknown."""
    if not old:
        return []
    return [(key, old.get(key, "–"), value) for key, value in new.items()
            if old.get(key) != value]


def announcements(registrations: list[Registration], version: str, cancelled: bool,
                  done: set[tuple[str, str]]) -> list[tuple[Registration, ReplyKind, str]]:
    """Who must hear of a change: (updated registration, reply kind, notice key).

    Changed details: every confirmed person whose calendar shows another version gets an
    update with a higher SEQUENCE. A cancelled event: every confirmed and waitlisted
    person hears it once; confirmed ones get METHOD:CANCEL (SEQUENCE higher again)."""
    plan = []
    for reg in registrations:
        if cancelled:
            key = "event-cancelled"
            if (reg.email, key) in done or reg.status is Status.CANCELLED:
                continue
            seq = reg.ics_sequence + (1 if reg.status is Status.CONFIRMED else 0)
            plan.append((replace(reg, ics_sequence=seq), ReplyKind.EVENT_CANCELLED, key))
        elif reg.status is Status.CONFIRMED and reg.event_version != version:
            key = f"update:{version}:{reg.ics_sequence + 1}"  # back and forth: new each time
            updated = replace(reg, ics_sequence=reg.ics_sequence + 1, event_version=version)
            plan.append((updated, ReplyKind.UPDATE, key))
    return plan
