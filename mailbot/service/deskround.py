"""An organiser's decision on a mail for review — `mailbot approve` / `dismiss`, a move
into the desk folders of her mail program, her own reply in Sent — carried out one way.

``approve`` registers the people mailbot read in the mail (the limits waived: a human
looked) and queues the replies; ``dismiss`` settles it without a reply. Both record who
decided (``messages.decided_by``) and when (``resolved_at``), and release the places held
for the mail (a confirmed one stays). :func:`desk_round` looks into the desk folders each
round (IMAP only: a Maildir has none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from mailbot.core.clock import now_utc
from mailbot.core.i18n import tr as _
from mailbot.core.models import (
    Action,
    Decision,
    InboundMail,
    Intent,
    Participant,
    Reading,
    Request,
    Summary,
)
from mailbot.mail.deskfolders import (
    APPROVE,
    BY_SENT,
    DeskFolders,
    by_folder,
)
from mailbot.mail.inbox import Inbox, InboxError
from mailbot.reading.parse import content_key, parse_mail
from mailbot.replies.compose import ComposeError
from mailbot.service.processor import Processor, excerpt
from mailbot.store import DATABASE_ERRORS, iso

log = logging.getLogger(__name__)

class DecisionError(Exception):
    """Raised when a mail cannot be approved as asked (answered already, no address known,
    or mailbot would still register nobody); the message is one line."""


@dataclass(frozen=True)
class Approval:
    decision: Decision
    people: list[Participant]
    replies: int  # queued


def waiting(processor: Processor, key: str) -> dict | None:
    """The review row of the mail with this key, while it waits for a human."""
    return next((r for r in processor.store.for_review() if r["message_id"] == key), None)


def approve(processor: Processor, row: dict, raw: bytes | None, by: str,
            email: str | None = None, name: str | None = None,
            organisation: str | None = None) -> Approval:
    """Register the people of a mail for review (``raw``: the mail, when it is at hand;
    ``email``, ``name``, ``organisation``: the organiser's corrections); the limits per
    mail are waived (a human looked). When the plan still registers nobody: DecisionError,
    nothing written, the mail keeps waiting."""
    if row["action"] != Action.REVIEW:
        raise DecisionError(_("this mail was already answered (it also asks something): "
                              "answer the question yourself, then `mailbot dismiss` it"))
    parsed = processor.own_key(parse_mail(raw, processor.own)) if raw else None
    people = list(parsed.participants) if parsed else []
    if email or not people:
        address = (email or row["sender"] or "").lower()
        if not address or address.startswith("erased:"):
            raise DecisionError(_("no address known for this mail: give --email"))
        base = people[0] if people else Participant(address, "", None)
        people = [Participant(address, name or base.name, organisation or base.organisation)]
    elif name or organisation:
        people[0] = replace(people[0], name=name or people[0].name,
                            organisation=organisation or people[0].organisation)
    now = now_utc()
    sender = parsed.sender if parsed and not email else None  # who registered them
    request = Request(
        key=parsed.key if parsed else "manual", people=tuple(people),
        sender=sender or people[0].email, arrival=now, evidence=Reading(Intent.REGISTER),
        sender_name=parsed.sender_name if sender and parsed else people[0].name,
        message_id=parsed.message_id if parsed else None,
        language=parsed.language if parsed else None)
    store = processor.store
    with store.immediate():
        plan = processor.plan(request, budget=False, deadline_applies=False,
                              age_applies=False, decided=True, max_participants=len(people))
        if plan.decision.action is Action.REVIEW:  # nothing done: the mail keeps waiting
            raise DecisionError(_("not approved: {reason}; the mail still waits for review "
                                  "(answer it yourself, then `mailbot dismiss` it)").format(
                                      reason=plan.decision.reason))
        replies = processor.compose(plan.replies, now)
        store.resolve(row["message_id"], Action.REGISTER.value,
                      f"von Hand freigegeben: {row['reason'] or ''}", now,
                      list(plan.registrations), replies, by=by)
    return Approval(plan.decision, people, len(replies))


def dismiss(processor: Processor, row: dict, by: str, words: str = "von Hand erledigt") -> None:
    """Settle a mail for review without a reply; a place held for it is released and the
    waitlist moves up."""
    action = row["action"] if row["action"] != Action.REVIEW else Action.NOOP.value
    processor.store.resolve(row["message_id"], action, f"{words}: {row['reason'] or ''}",
                            now_utc(), by=by)
    processor.jobs.fill_places()


def desk_round(processor: Processor, inbox: Inbox, summary: Summary) -> None:
    """Carry out what the organiser did in her mail program since the last round: mails
    moved into the approve or settle folder, and her own replies in Sent."""
    desk = inbox.desk
    if desk is None:
        return
    for which, mail in desk.mails():
        try:
            _one(processor, desk, which, mail, summary)
        except (InboxError, *DATABASE_ERRORS):
            raise  # the server or the database, not this mail: the round stops, retried
        except Exception:  # noqa: BLE001 - one mail must not stop every round after it
            log.exception("internal error with a mail moved into a desk folder")
            desk.move_on(which, [mail.ref], back=True)  # back to the inbox, flagged
    _answered_by_hand(processor, desk, inbox)


def _one(processor: Processor, desk: DeskFolders, which: str, mail: InboundMail,
         summary: Summary) -> None:
    try:  # the key the mail was recorded under (its own one beside a reused Message-ID)
        key = processor.own_key(parse_mail(mail.raw, processor.own)).key
    except Exception:  # noqa: BLE001 - an unreadable mail is known by its bytes
        key = content_key(mail.raw)
    folder = desk.cfg.approve_folder if which == APPROVE else desk.cfg.settle_folder
    row = waiting(processor, key)
    if row is None:
        if processor.store.handled(key) is None:
            _unknown(processor, mail, key, folder)
            desk.move_on(which, [mail.ref], back=True)
            return
        log.info("%s: moved into %s, settled already: only moved on", key, folder)
    elif which == APPROVE and row["action"] == Action.REVIEW:
        try:
            done = approve(processor, row, mail.raw, by_folder(folder))
        except DecisionError as exc:
            _refused(processor, row, folder, str(exc))
            desk.move_on(which, [mail.ref], back=True)
            return
        except ComposeError as exc:  # nothing written: the mail waits, the round goes on
            log.error("%s: approved from %s, but the reply cannot be made: %s", key, folder,
                      exc)
            _refused(processor, row, folder, f"Antwort nicht erstellbar ({exc})")
            desk.move_on(which, [mail.ref], back=True)
            return
        log.info("%s: approved (moved into %s), %d replies", key, folder, done.replies)
        processor.sending.flush(summary)
    else:  # settled; or answered already and moved into the approve folder: settled too
        dismiss(processor, row, by_folder(folder))
        log.info("%s: settled (moved into %s)", key, folder)
        processor.sending.flush(summary)
    desk.move_on(which, [mail.ref])


def _unknown(processor: Processor, mail: InboundMail, key: str, folder: str) -> None:
    """A mail mailbot never read, moved into a desk folder: not acted on blindly (mailbot
    has not shown what it reads in it) but recorded for review and sent back to the inbox,
    flagged — moved into the folder again, it is decided as any mail for review."""
    sender: str | None = None
    subject: str | None = None
    text: str | None = None
    try:
        parsed = parse_mail(mail.raw, processor.own)
        sender, subject, text = parsed.sender, parsed.subject, excerpt(parsed.text)
    except Exception:  # noqa: BLE001 - unreadable: known by its bytes
        pass
    reason = (f"in den Ordner {folder} gezogen, bevor mailbot die Mail gelesen hatte – bitte "
              f"prüfen und erneut in den Ordner ziehen")
    now = now_utc()
    processor.store.record({"message_id": key, "sender": sender, "subject": subject,
                            "received_at": iso(mail.received_at), "action": Action.REVIEW.value,
                            "reason": reason, "needs_attention": 0, "excerpt": text}, [], [], now)
    log.info("%s: moved into %s before mailbot read it: back to the inbox, flagged", key,
             folder)


def _refused(processor: Processor, row: dict, folder: str, why: str) -> None:
    """Approval from the folder registered nobody: the mail waits again, with the reason."""
    processor.store.set_reason(row["message_id"],
                               f"aus {folder} zurück – nicht angemeldet: {why}")
    log.info("%s: not approved from %s: back to the inbox, flagged", row["message_id"], folder)


def _answered_by_hand(processor: Processor, desk: DeskFolders, inbox: Inbox) -> None:
    """A mail for review the organiser answered herself (her reply in Sent): settled, and
    moved from the inbox to the processed folder."""
    rows = processor.store.for_review()
    if not rows:
        return
    answered = desk.answered((r["message_id"] for r in rows), processor.store.knows_reply)
    for row in rows:
        if row["message_id"] in answered:
            dismiss(processor, row, BY_SENT, "von Hand beantwortet")
            mail = inbox.find(row["message_id"])
            if mail is not None:
                inbox.release(mail.ref)
            log.info("%s: answered by hand (a reply in Sent)", row["message_id"])
