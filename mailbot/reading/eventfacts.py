"""What a sentence may say about the event (pure): the days, times and kinds of event a
mail names, compared with this event's, so that a mail about another one goes to a human."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from mailbot.config import EventConfig
from mailbot.reading.sentences import F, has_any

_MONTHS = {"jan": 1, "feb": 2, "mär": 3, "mar": 3, "apr": 4, "mai": 5, "may": 5, "jun": 6,
           "jul": 7, "aug": 8, "sep": 9, "okt": 10, "oct": 10, "nov": 11, "dez": 12, "dec": 12}
_MONTH = (r"(?P<{}>jan(?:uar|uary)?|feb(?:ruar|ruary)?|märz|mär|march|mar|apr(?:il)?|mai|may"
          r"|jun[ie]?|jul[iy]?|aug(?:ust)?|sep(?:t|tember)?|okt(?:ober)?|oct(?:ober)?"
          r"|nov(?:ember)?|dez(?:ember)?|dec(?:ember)?)\b\.?")
_WEEKDAYS = ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"]
_WEEKDAYS_EN = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_DIGIT = re.compile(r"\d")
DATE_WORDS = ("jan", "feb", "mär", "mar", "apr", "mai", "may", "jun", "jul", "aug", "sep", "okt",
               "oct", "nov", "dez", "dec", "tag", "day", "woch", "herbst", "sommer", "winter",
               "frühling", "frühjahr", "spring", "summer", "autumn", "fall")
DATE = re.compile(  # every way a mail names a day, in one pass
    r"\b(?P<nd>\d{1,2})\.\s?(?P<nm>\d{1,2})\.(?P<ny>\d{2,4})?"
    r"|\b(?P<iy>20\d\d)-(?P<im>\d\d)-(?P<id>\d\d)\b"
    rf"|\b(?P<md>\d{{1,2}})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?{_MONTH.format('mm')}"
    r"(?:\s*(?P<my>\d{4}))?"
    rf"|\b{_MONTH.format('mm2')}\s+(?P<md2>\d{{1,2}})(?:st|nd|rd|th)?\b"
    r"|\b(?:am|ab|bis|zum|vom|on the|the)\s+(?P<dd>\d{1,2})(?:\.|st|nd|rd|th)(?!\s*\d)"
    rf"|\b(?:im|in|ab|bis|seit|anfang|ende|mitte)\s+{_MONTH.format('om')}(?!\s*\d)"
    r"|\b(?:im|in the|this|next|diesen|nächsten|kommenden)\s+"
    r"(?P<season>frühjahr|frühling|sommer|herbst|winter|spring|summer|autumn|fall)\b"
    r"|\b(?P<wd>" + "|".join(_WEEKDAYS + _WEEKDAYS_EN) + r")\b", F)
_EVENT_KIND = re.compile(
    r"(?:tagung|konferenz|kongress|seminar|workshop|webinar|schulung|messe|sitzung|treffen"
    r"|veranstaltung|fortbildung|versammlung|fachtag|aktionstag|festival|forum|conference"
    r"|summit)\b", F)
_WORD_START = re.compile(r"[\w-]*$")
_OUR_KINDS = re.compile(r"^(?:|online-?|digital\w*-?|zoom-?|video-?|virtuell\w*-?)$", F)
_IN_PERSON = re.compile(r"\bin präsenz\b|\bpräsenz\w*|\bvor ort\b|\bin person\b|\bon site\b",
                        F)


@dataclass(frozen=True)
class EventFacts:
    """What a mail may name and still mean this event: its day, weekday and title."""

    day: dt.date
    title: str

    @classmethod
    def of(cls, event: EventConfig) -> EventFacts:
        return cls(event.start.date(), event.title.casefold())

    def elsewhere(self, text: str, registering: bool = True) -> str | None:
        """Why ``text`` speaks of another date, event or place than this one, or None.
        Event titles and places count only in a registration (``registering``): a
        cancellation may well name the meeting that keeps someone away."""
        if self._other_date(text):
            return "anderes Datum"
        if not registering:
            return None
        for m in _EVENT_KIND.finditer(text):
            start = _WORD_START.search(text, 0, m.start())
            assert start is not None  # [\w-]*$ matches at the end of any text
            prefix = start[0]
            word = prefix + m[0]
            prefix = prefix.casefold().rstrip("-")
            if (word.casefold() not in self.title and not _OUR_KINDS.match(prefix)
                    and not (len(prefix) >= 4 and prefix in self.title)):
                return f"andere Veranstaltung ({word})"
        if _IN_PERSON.search(text):
            return "Präsenz statt online"
        return None

    def _other_date(self, text: str) -> bool:
        if not (_DIGIT.search(text) or has_any(text.lower(), DATE_WORDS)):
            return False  # most sentences name no day at all
        return any(self._differs(m) for m in DATE.finditer(text))

    def _differs(self, m: re.Match) -> bool:
        """Whether a date the mail names is another day than the event's."""
        day = self.day
        if m["wd"]:
            name = m["wd"].casefold()
            index = _WEEKDAYS.index(name) if name in _WEEKDAYS else _WEEKDAYS_EN.index(name)
            return index != day.weekday()
        if m["season"]:
            return True
        if m["om"]:
            return _MONTHS.get(m["om"][:3].casefold()) != day.month
        if m["dd"]:
            return int(m["dd"]) != day.day
        year: int | None
        if m["iy"]:
            number, month, year = int(m["id"]), int(m["im"]), int(m["iy"])
        elif m["nd"]:
            number, month = int(m["nd"]), int(m["nm"])
            year = m["ny"] and int(m["ny"]) + (2000 if len(m["ny"]) == 2 else 0)
        else:
            number = int(m["md"] or m["md2"])
            month = _MONTHS.get((m["mm"] or m["mm2"])[:3].casefold(), 0)
            year = int(m["my"]) if m["my"] else None
        return (number, month) != (day.day, day.month) or year not in (None, day.year)
