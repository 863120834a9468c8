"""The organiser's daily digest ([digest] to, at): what happened since the last one, the
state of the event, what waits for a human, what does not work — with the full list as an
Excel-ready CSV when [digest] attach_list says so. Queued in the outbox like every reply,
once per day."""

from __future__ import annotations

import datetime as dt
import logging

from mailbot.config import Config
from mailbot.core.i18n import speaking
from mailbot.core.i18n import tr as _
from mailbot.core.models import Reply
from mailbot.mail.deskfolders import BY_APPROVE, BY_SENT, by_folder
from mailbot.replies.compose import digest_mail
from mailbot.replies.report import (
    CSV_COLUMNS,
    csv_header,
    format_review,
    status_word,
    to_excel_csv,
)
from mailbot.service.health import status_text
from mailbot.store import Store

log = logging.getLogger(__name__)

DAY_KEY = "digest_day"  # state: the local date of the last digest queued
SINCE_KEY = "digest_since"  # state: where the changes of the last digest queued began
LIST_FILE = "teilnehmer.csv"


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
    """The digest in the organiser's language ([event] organiser_language): the changes
    since ``since`` (None: all so far), the state, the review."""
    with speaking(config.event.organiser_language):
        return _build(config, store, now, since)


def _build(config: Config, store: Store, now: dt.datetime,
           since: dt.datetime | None) -> Reply:
    tz = config.event.tz
    changed = store.changed_since(since)
    review = store.for_review()
    lines = [_("mailbot – daily digest, {when}").format(
        when=f"{now.astimezone(tz):%d.%m.%Y %H:%M}"), ""]
    lines += _changes(changed, since, tz)
    lines += decided_lines(config, store.decided_since(since))
    lines += ["", status_text(config, store)[0]]
    lines += ["", format_review(review, tz)]
    if review:
        lines += ["", *what_to_do(config)]
    attachment = None
    if config.digest.attach_list:
        lines += ["", _("The full list of participants is attached ({file}, opens in "
                        "Excel).").format(file=LIST_FILE)]
        rows = store.registration_rows(held=False)  # a held place is not decided yet
        attachment = (LIST_FILE, to_excel_csv(rows, CSV_COLUMNS, csv_header(), tz))
    subject = f"mailbot: {_headline(changed, review)} – {config.event.title}"
    return digest_mail(config, subject, "\n".join(lines), attachment, now)


def what_to_do(config: Config) -> list[str]:
    """What the organiser does with the mails waiting for her, in her mail program: the
    folders to move them into when the configuration has them, else the two commands."""
    approve = getattr(config.imap, "approve_folder", None)
    settle = getattr(config.imap, "settle_folder", None)
    lines = [_("Mails waiting for you are flagged in the inbox.")]
    if approve and settle:
        lines.append(_("Answer them yourself, or move one into the folder {approve} (mailbot "
                       "registers the sender and replies) or into {settle} (handled, no "
                       "reply).").format(approve=approve, settle=settle))
    else:
        lines.append(_("Answer them yourself, then: mailbot dismiss NUMBER (or mailbot "
                       "approve NUMBER to register the sender)."))
    return lines


def _changes(changed: list[dict], since: dt.datetime | None, tz: dt.tzinfo) -> list[str]:
    head = (_("Since the last digest ({when}):").format(
        when=f"{since.astimezone(tz):%d.%m.%Y %H:%M}") if since else _("So far:"))
    if not changed:
        return [head, "  " + _("no new registrations or cancellations")]
    lines = [head]
    for row in changed:
        who = f"{row['name']} <{row['email']}>" if row["name"] else row["email"]
        org = f" ({row['organisation']})" if row["organisation"] else ""
        lines.append(f"  {status_word(row['status']):<10} {who}{org}")
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
    parts = [_("{n} new").format(n=new), _("{n} cancelled").format(n=gone)]
    if review:
        parts.append(_("{n} waiting for you").format(n=len(review)))
    return ", ".join(parts)
