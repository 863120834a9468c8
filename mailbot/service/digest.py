"""The organiser's daily digest ([digest] to, at): what happened since the last one, the
state of the event, what waits for a human, what does not work — with the full list as an
Excel-ready CSV. Queued in the outbox like every reply, once per day."""

from __future__ import annotations

import datetime as dt
import logging

from mailbot.config import Config
from mailbot.core.models import Reply
from mailbot.replies.compose import digest_mail
from mailbot.replies.report import CSV_COLUMNS, format_review, to_excel_csv
from mailbot.service.health import status_text
from mailbot.store import Store

log = logging.getLogger(__name__)

DAY_KEY = "digest_day"  # state: the local date of the last digest queued
SINCE_KEY = "digest_since"  # state: where the changes of the last digest queued began


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
    in the same transaction as the outbox row, so a digest is never queued twice. A
    digest of an earlier day that has not gone out yet (no SMTP for a day) is replaced:
    the new one covers its changes too, and the organiser gets one, not two."""
    with store.immediate():
        day = due_day(config, store, now)
        if day is None:
            return False
        last = store.get_state(DAY_KEY)
        since = dt.datetime.fromisoformat(last[1]) if last else None
        waiting = store.queued_of("digest")
        if waiting:  # its changes go into this one
            kept = store.get_state(SINCE_KEY)
            since = dt.datetime.fromisoformat(kept[0]) if kept and kept[0] else None
        reply = build(config, store, now, since)
        if not store.record_notice(config.digest.to or "", f"digest:{day}", reply, now):
            return False
        if waiting and store.drop_queued("digest", keep=reply.message_id):
            log.info("the digest of %s was not sent yet: replaced by today's",
                     last[0] if last else "an earlier day")
        store.set_state(DAY_KEY, day, now)
        store.set_state(SINCE_KEY, since.isoformat() if since else "", now)
    log.info("daily digest queued")
    return True


def build(config: Config, store: Store, now: dt.datetime,
          since: dt.datetime | None = None) -> Reply:
    """The digest: the changes since ``since`` (None: all so far), the state, the review."""
    tz = config.event.tz
    changed = store.changed_since(since)
    review = store.for_review()
    lines = [f"mailbot – daily digest, {now.astimezone(tz):%d.%m.%Y %H:%M}", ""]
    lines += _changes(changed, since, tz)
    lines += ["", status_text(config, store)[0]]
    lines += ["", format_review(review, tz)]
    if review:
        lines += ["", "Answer them from your mail program, then: mailbot dismiss ID "
                      "(or mailbot approve ID to register the sender)."]
    lines += ["", "The full list of participants is attached (teilnehmer.csv, opens in "
                  "Excel)."]
    rows = store.registration_rows()
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


def _headline(changed: list[dict], review: list[dict]) -> str:
    new = sum(1 for r in changed if r["status"] != "cancelled")
    gone = len(changed) - new
    parts = [f"{new} new", f"{gone} cancelled"]
    if review:
        parts.append(f"{len(review)} waiting for you")
    return ", ".join(parts)
