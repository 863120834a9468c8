"""The clock, in one place: whole seconds in UTC, and the ISO form the database stores."""

from __future__ import annotations

import datetime as dt


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat() if value else None
