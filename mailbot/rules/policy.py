"""(request, current state) → what to do (pure): :func:`plan`.

A request comes from a mail or from an organiser at the desk (models.Request); both take
the same way. The decision is a plain value: the action recorded, a reason a human
understands, and one step per person (new status, which reply); the plan adds the rows it
leaves behind (with language and calendar version) and the replies to compose. Nothing
here touches the database or the network. The rules of time are in lifecycle.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import replace

from mailbot.config import EventConfig, LimitsConfig
from mailbot.core.models import (
    ATTENTION,
    FOREIGN,
    WAITING,
    Action,
    Decision,
    Intent,
    ParsedMail,
    Participant,
    Plan,
    Reading,
    Registration,
    ReplyKind,
    ReplySpec,
    Request,
    Situation,
    Status,
    Step,
)
from mailbot.core.text import quote
from mailbot.rules import guard
from mailbot.rules.budget import asked, within_budget
from mailbot.rules.guard import Usage
from mailbot.rules.holds import still_held, with_hold
from mailbot.rules.lifecycle import (  # noqa: F401  (the rules of time, also reachable from here)
    announcements,
    changed_details,
    due_reminders,
    event_details,
    event_version,
    next_registration,
    purge_due,
    reminder_key,
    reminders_due,
)
from mailbot.rules.notes import noted

DAY = dt.timedelta(days=1)


def as_request(mail: ParsedMail, reading: Reading, arrival: dt.datetime,
               robot: str | None = None, suspicious: str | None = None) -> Request:
    """The request a mail makes: ``reading`` is what classify read in it; ``robot`` why it
    must not be answered (guard); ``suspicious`` why a human should check the sender."""
    attendee, name = (mail.calendar_reply or ("", None, ""))[1:3]
    people = mail.participants
    if attendee and (mail.calendar_method or "").upper() == "REPLY":  # about the attendee
        sender_name = mail.sender_person or mail.sender_name
        people = (Participant(attendee, name or (sender_name if attendee == mail.sender
                                                 else "")),)
    return Request(key=mail.key, people=people, sender=mail.sender,
                   arrival=arrival, evidence=reading,
                   sender_name=mail.sender_person or mail.sender_name,
                   message_id=mail.message_id, reply_to=mail.reply_to, language=mail.language,
                   participant_issue=mail.participant_issue,
                   calendar_reply=mail.calendar_reply, limit=mail.limit, robot=robot,
                   suspicious=suspicious)


def decide(request: Request | ParsedMail, reading: Reading | None, situation: Situation,
           event: EventConfig, robot: str | None = None,
           suspicious: str | None = None) -> Decision:
    """What to do with one request (a mail is read as one: :func:`as_request`)."""
    if isinstance(request, ParsedMail):
        request = as_request(request, reading or Reading(Intent.UNKNOWN),
                             situation.received_at, robot, suspicious)
    return _decide(request, situation, event)


def _decide(request: Request, situation: Situation, event: EventConfig) -> Decision:
    if request.robot:
        return Decision(Action.IGNORE, request.robot)
    # the age rule ([daemon] max_age) is the inbox's: the mail from before mailbot's first
    # start is left there unrecorded (mail.folder.Baseline); any later mail is read
    if request.limit:
        return Decision(Action.REVIEW, request.limit)
    if request.sender is None:
        return Decision(Action.REVIEW, "Absender nicht lesbar oder mehrdeutig")
    if request.suspicious:
        return Decision(Action.REVIEW, request.suspicious)
    reading = request.evidence
    intent = reading.intent
    if intent is Intent.AUTO:
        return Decision(Action.IGNORE, reading.reason or "automatische Nachricht")
    if reading.rsvp:
        return _calendar_reply(request, reading, situation, event)
    if intent in (Intent.REGISTER, Intent.CANCEL):
        doubt = _doubt(request, reading)
        if doubt:
            return with_hold(Decision(Action.REVIEW, doubt), request, situation, event)
    if intent is Intent.REGISTER:
        return noted(still_held(request.people, situation)
                     or _register(request, situation, event), reading, request, "Anmeldung")
    if intent is Intent.CANCEL:
        head = None if event.cancelled else situation.waitlist_head
        return noted(_cancel(request, situation.current, head), reading, request, "Abmeldung")
    if intent is Intent.QUESTION:
        return Decision(Action.REVIEW, "; ".join(filter(None, [
            "Frage – bitte persönlich beantworten", reading.reason])))
    if intent is Intent.THANKS:
        return Decision(Action.NOOP, "Dank oder Antwort ohne neues Anliegen")
    return Decision(Action.REVIEW, reading.reason or "Anliegen nicht erkannt")


def _doubt(mail: Request, reading: Reading) -> str | None:
    """Why a registration or cancellation must not be carried out, or None. The rules of
    evidence: this event only; a person spoken of must come with an address of their own
    (never falls back to the sender); the participants must be readable."""
    if reading.elsewhere:
        return f"nicht diese Veranstaltung – {reading.elsewhere}"
    if mail.participant_issue:
        return mail.participant_issue
    unnamed = reading.intent is Intent.CANCEL and reading.others and not all(
        p.email in reading.others.lower() or (p.name and p.name.split()[-1] in reading.others)
        for p in mail.people)  # a cancellation acts only on whom its sentence names
    if unnamed or (reading.others and not any(p.email != mail.sender for p in mail.people)):
        if reading.intent is Intent.CANCEL:  # never the sender in place of whom it names
            return f"Abmeldung für andere, ohne deren Adresse – bitte prüfen: " \
                   f"{quote(reading.others)}"
        return f"Person ohne eigene Adresse: {quote(reading.others)}"
    if reading.intent is Intent.CANCEL and not reading.others and mail.sender and \
            mail.sender not in {p.email for p in mail.people}:
        return "Abmeldung: unklar, für wen"  # she cancels herself, but others are listed
    return None


def _calendar_reply(mail: Request, reading: Reading, situation: Situation,
                    event: EventConfig) -> Decision:
    """A calendar program's answer, by what the person did. ACCEPTED without comment:
    nothing to do for a registered attendee; an attendee not registered (a forwarded
    invitation) is registered when the sender is she or writes from her domain, else a
    human looks. DECLINED: a cancellation of that attendee (flagged when a comment comes
    with it). Anything else (TENTATIVE, a comment with an acceptance, no readable
    attendee): a human."""
    partstat, attendee, name = (mail.calendar_reply or ("", None, ""))[:3]
    if partstat == "ACCEPTED" and not reading.note:
        return _accepted(mail, attendee, name, situation, event)
    if partstat == "DECLINED" and attendee:
        if situation.current.get(attendee) not in (Status.CONFIRMED, Status.WAITLISTED):
            # nothing to cancel and no notice for a button press — but her registration may
            # wait for a human, or not have been understood: she looks (no reply)
            return Decision(Action.REVIEW, "Absage über den Kalender, nicht angemeldet – "
                                           "bitte prüfen, ob eine Anmeldung von ihr wartet")
        person = Participant(attendee, name or mail.sender_name)
        head = None if event.cancelled else situation.waitlist_head
        decision = _cancel(replace(mail, people=(person,)), situation.current, head)
        decision = replace(decision, reason="; ".join(filter(None, [
            decision.reason, "Absage über den Kalender (DECLINED)"])))
        return _flag(decision, f"bitte lesen – {reading.note}") if reading.note else decision
    what = {"TENTATIVE": "Zusage unter Vorbehalt (TENTATIVE)", "ACCEPTED": "Zusage mit Kommentar",
            "DECLINED": "Absage ohne lesbaren Teilnehmer"}.get(partstat, "Kalenderantwort")
    return Decision(Action.REVIEW, "; ".join(filter(None, [what, reading.note])))


def _accepted(mail: Request, attendee: str | None, name: str, situation: Situation,
              event: EventConfig) -> Decision:
    if attendee and situation.current.get(attendee) in (Status.CONFIRMED, Status.WAITLISTED):
        return Decision(Action.NOOP, "Zusage eines Kalenderprogramms ohne Kommentar")
    if not attendee or not mail.sender or not guard.may_cancel_for(mail.sender, attendee):
        return Decision(Action.REVIEW, f"Zusage über den Kalender für {attendee or '?'}, "
                                       f"nicht angemeldet – bitte prüfen")
    own = attendee == mail.sender
    person = Participant(attendee, name or (mail.sender_name if own else ""))
    decision = _register(replace(mail, people=(person,)), situation, event)
    return replace(decision, reason="; ".join(filter(None, [
        decision.reason, "Zusage über den Kalender (ACCEPTED), bisher nicht angemeldet"])))


def _flag(decision: Decision, note: str) -> Decision:
    reason = "; ".join(filter(None, [decision.reason, note]))
    return replace(decision, reason=reason, attention=True)


def _register(mail: Request, situation: Situation, event: EventConfig) -> Decision:
    """Each person listed: confirmed, waitlisted or told they are registered already.
    Somebody registered by another person (anybody but the sender) is *asked*: their mail
    names who registered them (ReplyKind.THIRD_PARTY); without ``others_get_details`` no
    row is made until they answer themselves."""
    people = mail.people
    if not people:
        return Decision(Action.REVIEW, "Anmeldung ohne erkennbare Person")
    if len(people) > situation.max_participants:
        return Decision(Action.REVIEW,
                        f"mehr als {situation.max_participants} Personen in einer Mail")
    late = situation.deadline_applies and situation.received_at > event.deadline
    if late or event.cancelled:
        closed = tuple(Step(p, None, ReplyKind.CLOSED, _by(mail, p)) for p in people)
        reason = ("Veranstaltung abgesagt" if event.cancelled
                  else "nach dem Anmeldeschluss eingegangen")
        return Decision(Action.REGISTER, reason, closed)
    steps: list[Step] = []
    confirmed = situation.confirmed_count
    for person in people:
        by = _by(mail, person)
        held = situation.current.get(person.email) is Status.HELD  # approved: her place
        if situation.current.get(person.email) in (Status.CONFIRMED, Status.WAITLISTED):
            steps.append(Step(person, None, ReplyKind.DUPLICATE, by))
        elif by and not situation.others_get_details:
            steps.append(Step(person, None, ReplyKind.THIRD_PARTY, by))  # asked only
        elif not held and event.capacity is not None and (
                confirmed >= event.capacity or situation.waitlist_head is not None):
            # full, or people wait already: nobody jumps the queue
            kind = ReplyKind.THIRD_PARTY if by else ReplyKind.WAITLISTED
            steps.append(Step(person, Status.WAITLISTED, kind, by))
        else:
            confirmed += not held  # a held place was counted as taken already
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


def _by(mail: Request, person: Participant) -> str | None:
    """Who registered ``person`` when it was not she herself: the sender."""
    return mail.sender if mail.sender and person.email != mail.sender else None


def _cancel(mail: Request, current: Mapping[str, Status],
            waitlist_head: Registration | None) -> Decision:
    people = mail.people or ()
    if len(people) != 1:
        return Decision(Action.REVIEW, "Abmeldung: unklar, für wen")
    person = people[0]
    if mail.sender and not guard.may_cancel_for(mail.sender, person.email):
        return Decision(Action.REVIEW, f"Abmeldung für {person.email}, geschrieben von "
                                       f"{mail.sender} – bitte mit der Person klären")
    if current.get(person.email) in (Status.CONFIRMED, Status.WAITLISTED):
        steps = [Step(person, Status.CANCELLED, ReplyKind.CANCELLATION)]
        if current[person.email] is Status.CONFIRMED and waitlist_head is not None:
            steps.append(moved_up(waitlist_head))  # a place is free: the first moves up
            return Decision(Action.CANCEL, _place_free(waitlist_head), tuple(steps))
        return Decision(Action.CANCEL, "", tuple(steps))
    if mail.evidence.asks:  # a notice "you were not registered" would pass her question by
        return Decision(Action.REVIEW, "Abmeldung, war nicht angemeldet; "
                                       "Frage – bitte persönlich beantworten")
    return Decision(Action.CANCEL, "war nicht angemeldet",
                    (Step(person, None, ReplyKind.NOT_REGISTERED),))


# -- the waitlist ------------------------------------------------------------------------

def moved_up(head: Registration) -> Step:
    """The first on the waitlist gets a place: confirmed, with the full confirmation."""
    return Step(Participant(head.email, head.name, head.organisation), Status.CONFIRMED,
                ReplyKind.CONFIRMATION)


def _place_free(head: Registration) -> str:
    return f"Platz frei: {head.email} von der Warteliste bestätigt"


def promotion(head: Registration | None, confirmed: int, event: EventConfig
              ) -> Decision | None:
    """A free place (capacity raised, a confirmed person erased) for the first on the
    waitlist, first come first served; None when nobody moves up."""
    if event.capacity is None or event.cancelled or head is None or confirmed >= event.capacity:
        return None
    return Decision(Action.NOOP, _place_free(head), (moved_up(head),))


# -- the plan: decision, rows, replies ---------------------------------------------------

def plan(request: Request, situation: Situation, event: EventConfig,
         existing: Mapping[str, Registration], version: str, new_uid: Callable[[], str],
         usage: Usage | None = None, limits: LimitsConfig | None = None) -> Plan:
    """Everything a request leads to. ``existing``: the rows of its people (and of the first
    on the waitlist); ``usage``: the abuse budgets used so far for
    :func:`budget_addresses` (None: an organiser's change, no budget)."""
    decision = _decide(request, situation, event)
    if usage is not None and limits is not None and decision.steps:
        decision = within_budget(decision, request, usage, limits)
    return realise(decision, existing, version, new_uid, request)


def realise(decision: Decision, existing: Mapping[str, Registration], version: str,
            new_uid: Callable[[], str], request: Request | None = None) -> Plan:
    """The rows and replies a decision stands for. A confirmed row shows ``version`` in its
    calendar; a person who wrote herself keeps the language of her mail. Without a
    request (a place became free), only existing rows change."""
    registrations, replies = [], []
    names = tuple(s.participant.name or s.participant.email for s in decision.steps
                  if s.reply is not ReplyKind.ON_BEHALF)
    writers = {*(p.email for p in request.people), request.sender} if request else set()
    key, arrival = (request.key, request.arrival) if request else ("", None)
    language = request.language if request else None
    for step in decision.steps:
        old = existing.get(step.participant.email)
        new = next_registration(step, old, key, arrival, new_uid())
        mine = step.participant.email in writers  # not someone moved up the waitlist
        if new is not None and mine and language:
            new = replace(new, language=language)
        if new is not None and new.status is Status.CONFIRMED:
            new = replace(new, event_version=version)  # what their calendar shows
        if new is not None:
            registrations.append(new)
        reg = new or old
        if step.reply is not None:
            moved = (not mine and old is not None and old.status is Status.WAITLISTED
                     and step.reply is ReplyKind.CONFIRMATION)
            replies.append(ReplySpec(
                step.reply, step.participant, reg,
                request.message_id if mine and request else None,
                (language if mine else None) or (reg.language if reg else None), names,
                moved, _who(request) if step.registered_by and request else None))
    return Plan(decision, tuple(registrations), tuple(replies), tuple(asked(decision)))


def _who(request: Request) -> str:
    """The sender as named to a person they registered: the address, with the name only
    when it cannot pass for a link or another address."""
    name = request.sender_name.strip()
    if not name or len(name) > 60 or re.search(r"[/:@<>]|www\.|\.[a-z]{2,}\b", name, re.I):
        return request.sender or ""
    return f"{name} ({request.sender})"


def inbox_verdict(outcome: str) -> str:
    """What becomes of a mail in the inbox: "flag" when a human must read it (for review,
    answered but asking something, still waiting — flagged again each time, as a crash may
    come between recording and flagging), "leave" when it is not ours, else "move"."""
    if outcome in (Action.REVIEW, ATTENTION, WAITING):
        return "flag"
    return "leave" if outcome == FOREIGN else "move"
