"""The organiser's daily digest ([digest] to, at): what happened since the last one, the
state of the event, what waits for a human, what does not work — with the full list as an
Excel-ready CSV. Queued in the outbox like every reply, once per day."""

from __future__ import annotations

import datetime as dt
import logging

from mailbot.config import Config
from mailbot.core.models import Reply
from mailbot.mail.deskfolders import BY_APPROVE, BY_SENT, by_folder
from mailbot.replies.compose import digest_mail
from mailbot.replies.report import CSV_COLUMNS, format_review, to_excel_csv
from mailbot.service.health import status_text
from mailbot.store import Store

log = logging.getLogger(__name__)

DAY_KEY = "digest_day"  # state: the local date of the last digest queued


def due_day(config: Config, store: Store, now: dt.datetime) -> str | None:
    """The local date (ISO) whose digest is due now, or None."""
    digest, tz = config.digest, config.event.tz
    if digest.to is None:
        return None
    local = now.astimezone(tz)
    if local.time() < digest.at:
        return None
    today = local.date().isoformat()
    last = store.get_state(DAY_KEY)
    return None if last and last[0] == today else today


def queue_digest(config: Config, store: Store, now: dt.datetime) -> bool:
    """Queue today's digest if it is due; True when one was queued. The day is recorded
    in the same transaction as the outbox row, so a digest is never queued twice."""
    with store.immediate():
        day = due_day(config, store, now)
        if day is None:
            return False
        reply = build(config, store, now)
        store.record_notice(config.digest.to or "", f"digest:{day}", reply, now)
        store.set_state(DAY_KEY, day, now)
    log.info("daily digest queued")
    return True


def build(config: Config, store: Store, now: dt.datetime) -> Reply:
    last = store.get_state(DAY_KEY)
    since = dt.datetime.fromisoformat(last[1]) if last else None
    tz = config.event.tz
    changed = store.changed_since(since)
    review = store.for_review()
    lines = [f"mailbot – daily digest, {now.astimezone(tz):%d.%m.%Y %H:%M}", ""]
    lines += _changes(changed, since, tz)
    lines += decided_lines(config, store.decided_since(since))
    lines += ["", status_text(config, store)[0]]
    lines += ["", format_review(review, tz)]
    if review:
        lines += ["", "Answer them from your mail program, then: mailbot dismiss ID "
                      "(or mailbot approve ID to register the sender)."]
    lines += ["", "The full list of participants is attached (teilnehmer.csv, opens in "
                  "Excel)."]
    rows = store.registration_rows(held=False)  # a held place is not decided yet
    attachment = ("teilnehmer.csv", to_excel_csv(rows, CSV_COLUMNS, CSV_COLUMNS, tz))
    subject = f"mailbot: {_headline(changed, review)} – {config.event.title}"
    return digest_mail(config, subject, "\n".join(lines), attachment, now)


def _changes(changed: list[dict], since: dt.datetime | None, tz: dt.tzinfo) -> list[str]:
    head = (f"Since the last digest ({since.astimezone(tz):%d.%m.%Y %H:%M}):" if since
            else "So far:")
    if not changed:
        return [head, "  no new registrations or cancellations"]
    lines = [head]
    for row in changed:
        who = f"{row['name']} <{row['email']}>" if row["name"] else row["email"]
        org = f" ({row['organisation']})" if row["organisation"] else ""
        lines.append(f"  {row['status']:<10} {who}{org}")
    return lines


def decided_lines(config: Config, rows: list[dict]) -> list[str]:
    """What the organiser decided since the last digest (in her mail program or with a
    command): "Von Hand angemeldet: 2, erledigt: 1, selbst beantwortet: 1"."""
    if not rows:
        return []
    approved = {BY_APPROVE} | ({by_folder(config.imap.approve_folder)} if config.imap else set())
    counts = {"angemeldet": 0, "erledigt": 0, "selbst beantwortet": 0}
    for row in rows:
        word = ("angemeldet" if row["decided_by"] in approved else
                "selbst beantwortet" if row["decided_by"] == BY_SENT else "erledigt")
        counts[word] += 1
    return ["", "Von Hand " + ", ".join(f"{word}: {n}" for word, n in counts.items() if n)]


def _headline(changed: list[dict], review: list[dict]) -> str:
    new = sum(1 for r in changed if r["status"] != "cancelled")
    gone = len(changed) - new
    parts = [f"{new} new", f"{gone} cancelled"]
    if review:
        parts.append(f"{len(review)} waiting for you")
    return ", ".join(parts)
