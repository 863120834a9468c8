"""What `mailbot check` warns about in a configuration that loads: a valid file can still
describe the wrong event (a copied example, an event long over). Pure: the caller gives
the time and the number of confirmed people."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from .config import Config

EXAMPLE_ZOOM_URL = "https://zoom.us/j/84512345678?pwd=..."
_PLACEHOLDER = re.compile(r"\.\.\.|…|(?<![\w-])example(?![\w-])", re.IGNORECASE)


def warnings(config: Config, now: dt.datetime, confirmed: int | None = None) -> list[str]:
    """One line per thing that is valid but almost certainly not meant."""
    event = config.event
    found = []
    if event.start <= now:
        found.append(f"[event] start: {_local(event.start)} has passed — is this the right "
                     f"event?")
    if event.registration_deadline and event.registration_deadline > event.start:
        found.append(f"[event] registration_deadline: {_local(event.registration_deadline)} "
                     f"is after the start ({_local(event.start)})")
    for before in config.reminders:
        due = event.start - before
        if now < event.start and due < now:
            found.append(f"[reminders] before: the reminder {_duration(before)} before the "
                         f"start was due {_local(due)}, already past: it will not be sent")
    if event.capacity is not None and confirmed is not None and confirmed > event.capacity:
        found.append(f"[event] capacity: {event.capacity}, but {confirmed} people are "
                     f"already confirmed (nobody is moved to the waitlist)")
    found += [f"{key}: {value!r} looks like a placeholder from the example — put in the "
              f"real value" for key, value in placeholders(config)]
    return found


def placeholders(config: Config) -> list[tuple[str, str]]:
    """(``[section] key``, value) for every text that is still the example's filler."""
    return [(key, value) for key, value in _texts(config)
            if value == EXAMPLE_ZOOM_URL or _PLACEHOLDER.search(value)]


def _texts(obj: Any, section: str = "") -> Iterator[tuple[str, str]]:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("password", "source", "database", "templates"):
            continue
        if dataclasses.is_dataclass(value):
            yield from _texts(value, f.name)
        elif isinstance(value, str) and section:
            yield f"[{section}] {f.name}", value


def _local(moment: dt.datetime) -> str:
    return f"{moment:%d.%m.%Y %H:%M}"


def _duration(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g}h" if hours < 48 else f"{hours / 24:g}d"
