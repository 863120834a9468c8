"""The rules of time (pure): which reminders are due, which calendar version the event
details make, who must hear of a change, when the retention period ends."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace

from mailbot.config import EventConfig, ZoomConfig
from mailbot.core.i18n import N_
from mailbot.core.models import Registration, ReplyKind, Status, Step


def next_registration(step: Step, existing: Registration | None, mail_key: str,
                      now: dt.datetime | None, new_uid: str) -> Registration | None:
    """The row a step leaves behind, or None when the row stays as it is. ``now`` is when
    the mail arrived: it orders registrations (and a waitlist) by arrival.

    The calendar UID never changes once given; SEQUENCE rises with every change a calendar
    must see (cancelled, confirmed again) so that clients replace the older entry.
    """
    person = step.participant
    if step.status is None:
        if (existing is not None and step.reply is ReplyKind.DUPLICATE and person.organisation
                and person.organisation != existing.organisation and not step.registered_by):
            return replace(existing, organisation=person.organisation)  # her own correction
        return None  # a stranger's mail about her changes nothing of her row
    if existing is not None and step.status is Status.CANCELLED:
        return replace(existing, status=Status.CANCELLED,
                       ics_sequence=existing.ics_sequence + 1)
    if existing is not None and existing.status is Status.WAITLISTED and \
            step.status is Status.CONFIRMED:
        return replace(existing, status=Status.CONFIRMED)  # moved up: keeps its place in time
    if now is None:  # only a change of an existing row is made without a mail (a promotion)
        raise ValueError("a new registration needs the time its mail arrived")
    if existing is None:
        return Registration(email=person.email, name=person.name,
                            organisation=person.organisation, status=step.status,
                            ics_uid=new_uid, ics_sequence=0, registered_at=now,
                            message_id=mail_key, registered_by=step.registered_by)
    if existing.status is Status.HELD and step.status is Status.CONFIRMED:
        return replace(existing, status=Status.CONFIRMED, name=person.name or existing.name,
                       organisation=person.organisation or existing.organisation,
                       registered_by=step.registered_by)  # approved: the place kept for her
    own = not step.registered_by  # her name and organisation: only her own word changes them
    return Registration(email=person.email, name=person.name if own and person.name
                        else existing.name,
                        organisation=person.organisation if own and person.organisation
                        else existing.organisation,
                        status=step.status, ics_uid=existing.ics_uid,
                        ics_sequence=existing.ics_sequence + 1, registered_at=now,
                        message_id=mail_key, registered_by=step.registered_by,
                        language=existing.language)


def reminder_key(before: dt.timedelta) -> str:
    return f"reminder:{int(before.total_seconds())}s"


def due_reminders(confirmed: list[Registration], before: tuple[dt.timedelta, ...],
                  start: dt.datetime, now: dt.datetime, done: set[tuple[str, str]],
                  cancelled: bool = False) -> list[tuple[Registration, str, bool]]:
    """Which reminders to give now: (registration, key, send?). Each person gets each
    reminder once. When several are due (mailbot was down), only the one nearest the start
    is sent and the older ones are marked as given; a reminder whose time came before the
    person registered is marked as given too (their confirmation is fresher)."""
    due = reminders_due(before, start, now, cancelled)
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


def reminders_due(before: tuple[dt.timedelta, ...], start: dt.datetime, now: dt.datetime,
                  cancelled: bool = False) -> list[dt.timedelta]:
    """Which of the reminders (time before the start) are due now: none after the start or
    for a cancelled event."""
    if now >= start or cancelled:
        return []
    return [b for b in before if start - b <= now]


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


def purge_due(event: EventConfig, retain_days: int) -> dt.datetime:
    """When the retention period ends: the event's end + retain_days_after_event."""
    return event.end + dt.timedelta(days=retain_days)


def status_reply(status: Status) -> ReplyKind | None:
    """The reply that tells a person her current state: the confirmation with the
    details, or the waitlist notice; None for a cancelled row (nothing to resend)."""
    return {Status.CONFIRMED: ReplyKind.CONFIRMATION,
            Status.WAITLISTED: ReplyKind.WAITLISTED}.get(status)


PURGE_NOTICE = dt.timedelta(days=1)  # a due purge is announced this long before it is done


@dataclass(frozen=True)
class PurgeFacts:
    """What the automatic purge looks at besides the clock."""

    due: dt.datetime  # the end of the retention period by the configuration
    start: dt.datetime  # [event] start as configured now
    start_then: dt.datetime | None  # the start the registrations were made under
    first_row: dt.datetime | None  # when the earliest registration came
    newest_row: dt.datetime | None  # the newest change written to the database
    announced: dt.datetime | None  # when this purge was first announced


def purge_verdict(facts: PurgeFacts, now: dt.datetime) -> tuple[str, str]:
    """The automatic purge: ("wait" | "refuse" | "announce" | "erase", one line why).
    Nothing is erased on a guess: not when [event] start moved since the registrations
    were made or lies before the first of them (a wrong year), not when the clock is
    before the newest row (a clock far off); and a due purge is announced first and done
    PURGE_NOTICE after that at the earliest."""
    day = "%d.%m.%Y"
    if now < facts.due:
        return "wait", ""
    if facts.start_then is not None and facts.start_then != facts.start:
        return "refuse", MOVED.format(start=f"{facts.start:{day}}",
                                      then=f"{facts.start_then:{day}}")
    if facts.first_row is not None and facts.first_row > facts.start:
        return "refuse", WRONG_YEAR.format(first=f"{facts.first_row:{day}}",
                                           start=f"{facts.start:{day}}")
    if facts.newest_row is not None and now < facts.newest_row:
        return "refuse", CLOCK.format(now=f"{now:{day} %H:%M}",
                                      newest=f"{facts.newest_row:{day} %H:%M}")
    since = facts.announced if facts.announced is not None and facts.announced <= now else now
    if now < since + PURGE_NOTICE:
        return "announce", ANNOUNCED.format(day=f"{since + PURGE_NOTICE:{day}}")
    return "erase", ERASED


# the reasons purge_verdict gives, in English (the log, the state row); shown translated
# (i18n.translated with PURGE_REASONS)
MOVED = N_("not erased automatically: [event] start is {start} now, the registrations were "
           "made for {then}; check the date, or erase by hand with: mailbot purge")
WRONG_YEAR = N_("not erased automatically: the first registration came on {first}, after "
                "the event's start ({start}) – a wrong year in [event] start? Check it, or "
                "erase by hand with: mailbot purge")
CLOCK = N_("not erased automatically: the clock ({now} UTC) is before the newest entry in "
           "the database ({newest} UTC); check the system clock")
ANNOUNCED = N_("the retention period is over: all personal data will be erased on {day} at "
               "the earliest (mailbot purge erases it now)")
ERASED = N_("the retention period is over: personal data erased")
PURGE_REASONS = (MOVED, WRONG_YEAR, CLOCK, ANNOUNCED, ERASED)
