"""Texts for organisers: the status overview and the review list (pure)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from .config import Config


def local(value: str | None, tz: dt.tzinfo) -> str:
    if not value:
        return "never"
    return f"{dt.datetime.fromisoformat(value).astimezone(tz):%d.%m.%Y %H:%M:%S}"


def format_status(config: Config, registrations: dict[str, int], review: int,
                  outbox: dict[str, int], failed: list[dict[str, Any]],
                  last_poll: tuple[str, str] | None, last_error: tuple[str, str] | None) -> str:
    event, tz = config.event, config.event.tz
    confirmed = registrations.get("confirmed", 0)
    places = (f" of {event.capacity} places ({max(event.capacity - confirmed, 0)} free)"
              if event.capacity else " (no capacity limit)")
    lines = [
        event.title,
        f"  {event.start:%d.%m.%Y %H:%M}–{event.end:%H:%M} ({event.timezone}), "
        f"registration until {event.deadline:%d.%m.%Y %H:%M}",
        f"Registrations: {confirmed} confirmed{places}, "
        f"{registrations.get('waitlisted', 0)} waitlisted, "
        f"{registrations.get('cancelled', 0)} cancelled",
        f"Waiting for a human: {review}" + (" (see: mailbot review)" if review else ""),
        f"Outbox: {outbox.get('queued', 0) + outbox.get('sending', 0)} queued, "
        f"{outbox.get('sent', 0)} sent, {outbox.get('failed', 0)} failed",
    ]
    for row in failed:
        lines.append(f"  failed: {row['kind']} to {row['recipient']}: {row['last_error']}")
    lines.append(f"Last poll: {local(last_poll[1] if last_poll else None, tz)}")
    if last_error:
        lines.append(f"Last error: {local(last_error[1], tz)} {last_error[0]}")
    return "\n".join(lines)


def format_review(rows: list[dict[str, Any]], tz: dt.tzinfo) -> str:
    if not rows:
        return "Nothing waits for review."
    lines = [f"{len(rows)} {'mail waits' if len(rows) == 1 else 'mails wait'} for a human "
             f"(flagged in the inbox):"]
    for number, row in enumerate(rows, 1):
        when = dt.datetime.fromisoformat(row["received_at"]).astimezone(tz)
        answered = " (registered and answered)" if row["action"] != "review" else ""
        lines += ["", f"[{number}] {when:%d.%m.%Y %H:%M}  "
                      f"{row['sender'] or '(unreadable sender)'}",
                  f"    Subject: {row['subject'] or '–'}",
                  f"    Reason:  {row['reason'] or '–'}{answered}"]
        lines += [f"    | {line}" for line in (row["excerpt"] or "").split("\n") if line]
    return "\n".join(lines)


LIST_COLUMNS = ("email", "name", "organisation", "status", "registered_at")
CSV_COLUMNS = ("email", "name", "organisation", "status", "registered_at", "updated_at",
               "registered_by", "language")


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...], tz: dt.tzinfo) -> str:
    """An aligned text table (umlauts count as one character, as they show)."""
    cells = [[_cell(row.get(c), c, tz) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def _cell(value: Any, column: str, tz: dt.tzinfo) -> str:
    if value is None:
        return ""
    if column.endswith("_at"):
        return f"{dt.datetime.fromisoformat(value).astimezone(tz):%d.%m.%Y %H:%M}"
    return str(value)


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], header: tuple[str, ...],
           bom: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return ("\ufeff" if bom else "") + out.getvalue()


_PARTICLE = {"von", "van", "de", "der", "den", "zu", "da", "di", "du", "le", "la", "ten",
             "ter", "vom", "zum"}


def split_first_last(name: str) -> tuple[str, str]:
    """ "Jan van der Berg" → ("Jan", "van der Berg"): what Zoom wants as first/last name."""
    words = name.split()
    if len(words) < 2:
        return name, ""
    i = len(words) - 1
    while i > 1 and words[i - 1].lower() in _PARTICLE:
        i -= 1
    return " ".join(words[:i]), " ".join(words[i:])


def zoom_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Confirmed participants in the columns of Zoom's registrant import."""
    out = []
    for row in rows:
        first, last = split_first_last(row.get("name") or "")
        out.append({"email": row["email"], "first": first, "last": last,
                    "org": row.get("organisation") or ""})
    return out
