"""Sending within the provider's limits (pure): how many replies may go now, which ones
first, and how long to wait after the server says "slow down" (421, 450, 4.7.x).

Counts are over sliding windows of the replies actually sent (``outbox.sent_at``), so the
limits hold across restarts, cron runs and the organiser's own commands.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from typing import Any

WINDOWS = {"minute": 60.0, "hour": 3600.0, "day": 86400.0}  # seconds
SLACK = 1.0  # sent_at is kept to the second: count a second more, never a message too many
THROTTLE_FIRST = 60.0  # seconds of pause after the first "slow down"; doubles, with jitter
THROTTLE_MOST = 3600.0
BULK = frozenset({"reminder", "update", "event_cancelled"})  # wait behind answers to mail

_THROTTLE = re.compile(r"^(?:421|450)\b|^4\d\d[ -]+4\.7\.\d+|^45[12]\b.*\b(?:limit|rate|too many)"
                       # the day's quota is used up (Exchange Online, Gmail): a 5xx that
                       # means "tomorrow", not "never"
                       r"|^5\d\d\b.*(?:SubmissionQuotaExceeded|sending quota exceeded|"
                       r"sending limit exceeded)", re.IGNORECASE)


def allowed(sent: Sequence[dt.datetime], now: dt.datetime,
            limits: dict[str, int | None]) -> int | None:
    """How many replies may go now; None when no limit is set."""
    room = None
    for name, seconds in WINDOWS.items():
        limit = limits.get(name)
        if limit is None:
            continue
        since = now - dt.timedelta(seconds=seconds + SLACK)
        left = max(limit - sum(1 for t in sent if t > since), 0)
        room = left if room is None else min(room, left)
    return room


def remaining_today(sent: Sequence[dt.datetime], now: dt.datetime,
                    max_per_day: int | None) -> int | None:
    """What is left of the 24-hour budget; None without one."""
    return allowed(sent, now, {"day": max_per_day})


def choose(rows: Sequence[dict[str, Any]], budget: int | None) -> list[dict[str, Any]]:
    """The rows to send now, in their order: all if the budget allows; else answers to
    mail first, then reminders and announcements. A person's replies keep their order (a
    reply waits while an earlier one to the same person waits)."""
    if budget is None or budget >= len(rows):
        return list(rows)
    chosen: set[int] = set()
    for urgent_only in (True, False):
        waiting: set[str] = set()
        for i, row in enumerate(rows):
            if len(chosen) >= budget:
                break
            if i in chosen:
                continue
            if row["recipient"] in waiting or (urgent_only and row["kind"] in BULK):
                waiting.add(row["recipient"])
                continue
            chosen.add(i)
    return [rows[i] for i in sorted(chosen)]


def is_throttle(error: str) -> bool:
    """A server's "you send too fast" (421, 450 "Mail send limit exceeded", 4.7.x; also
    the 5xx of a used-up daily quota): the reply waits, it is not given up."""
    return bool(_THROTTLE.search(error.strip()))


def pause(times: int, rng: random.Random | None = None) -> dt.timedelta:
    """The pause after the n-th "slow down" in a row: doubling, at most an hour, with
    jitter (so several senders do not come back at the same moment)."""
    base = min(THROTTLE_FIRST * 2 ** max(times - 1, 0), THROTTLE_MOST)
    return dt.timedelta(seconds=base * (rng or random).uniform(0.5, 1.0))


_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def refused_address(code: int, message: str) -> str | None:
    """The status to record when an SMTP server refused a recipient for good at RCPT
    ("550 5.1.1 user unknown"), as a bounce would report it; None when the refusal is
    not about the address (a policy or relay answer, 5.7.x: about us, not the person;
    a throttle)."""
    if code < 500 or is_throttle(f"{code} {message}"):
        return None
    status = _STATUS.search(message)
    if status:
        return status[1] if status[1].split(".")[1] in ("1", "2") else None
    return str(code) if code in (550, 551, 553) and "relay" not in message.lower() else None
