"""The calendar part of a reply (RFC 5545 via ``icalendar``; pure).

REQUEST puts the event in the participant's calendar; CANCEL (same UID, higher SEQUENCE)
takes it out again. Text values are escaped by icalendar, so a name like
``x\\nEND:VEVENT`` stays text and lines are folded at 75 octets.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING

from mailbot.config import Config
from mailbot.core.models import Registration

if TYPE_CHECKING:
    import icalendar

# icalendar is imported where it is used: it is the slowest import of mailbot, and the
# organiser's commands that only read (status, list, review) never need it.

PRODID = "-//mailbot//Anmeldung per E-Mail//DE"
BEGIN = b"BEGIN:VEVENT\r\n"
END = b"END:VEVENT\r\n"


@functools.lru_cache(maxsize=8)
def _vtimezone(tzid: str, first: dt.date, last: dt.date) -> icalendar.Timezone:
    from zoneinfo import ZoneInfo

    import icalendar

    return icalendar.Timezone.from_tzinfo(ZoneInfo(tzid), tzid=tzid, first_date=first,
                                          last_date=last)


def description(config: Config) -> str:
    zoom = config.zoom
    passcode = f"\nKenncode: {zoom.passcode}" if zoom.passcode else ""
    return (f"Zoom: {zoom.url}\nMeeting-ID: {zoom.meeting_id}{passcode}\n\n"
            f"Kontakt: {config.contact.name}, {config.contact.organisation}, "
            f"{config.contact.address}")


class Calendars:
    """Calendars for one configuration. The event's own part is the same for everyone:
    it is serialised once per method, and each person's lines (UID, SEQUENCE, DTSTAMP,
    ATTENDEE, also serialised by icalendar) go in right after BEGIN:VEVENT — property order
    carries no meaning in RFC 5545. Building the whole calendar per reply took a fifth of
    the time mailbot spends on a mail."""

    def __init__(self, config: Config):
        self.config = config
        self._frames: dict[str, tuple[bytes, bytes]] = {}

    def calendar(self, reg: Registration, now: dt.datetime, method: str = "REQUEST") -> bytes:
        import icalendar

        head, tail = self._frame(method)
        person = icalendar.Event()
        person.add("uid", reg.ics_uid)
        person.add("sequence", reg.ics_sequence)
        person.add("dtstamp", now.astimezone(dt.UTC))
        # no RSVP: FALSE is the standard's default, and some calendar libraries read an
        # explicit RSVP=FALSE as true (and then fail writing the entry back)
        attendee = {"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED"}
        if reg.name:
            attendee["CN"] = reg.name
        person.add("attendee", f"mailto:{reg.email}", parameters=attendee)
        lines = person.to_ical()
        if not (lines.startswith(BEGIN) and lines.endswith(END)):
            raise ValueError("unexpected calendar serialisation")
        return head + lines[len(BEGIN):-len(END)] + tail

    def _frame(self, method: str) -> tuple[bytes, bytes]:
        """The calendar without the person, cut after BEGIN:VEVENT."""
        if method not in self._frames:
            whole = self._event(method).to_ical()
            cut = whole.index(BEGIN) + len(BEGIN)
            self._frames[method] = (whole[:cut], whole[cut:])
        return self._frames[method]

    def _event(self, method: str) -> icalendar.Calendar:
        import icalendar

        config = self.config
        event, contact = config.event, config.contact
        cal = icalendar.Calendar()
        cal.add("prodid", PRODID)
        cal.add("version", "2.0")
        cal.add("calscale", "GREGORIAN")
        cal.add("method", method)
        year = dt.timedelta(days=366)
        cal.add_component(_vtimezone(event.timezone, (event.start - year).date(),
                                     (event.end + year).date()))
        vevent = icalendar.Event()
        vevent.add("dtstart", event.start)
        vevent.add("dtend", event.end)
        vevent.add("summary", event.title)
        vevent.add("location", config.zoom.url)
        vevent.add("url", config.zoom.url)
        vevent.add("description", description(config))
        vevent.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
        vevent.add("transp", "OPAQUE")
        vevent.add("organizer", f"mailto:{contact.address}", parameters={"CN": contact.name})
        cal.add_component(vevent)
        return cal
