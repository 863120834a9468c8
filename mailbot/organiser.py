"""An organiser's own changes: add, cancel, resend, approve, dismiss, forget, purge.

They take the same way as a mail: a decision from policy.py, rows and replies from the
Processor, one transaction, the outbox. So a registration added by hand gets the same
calendar entry, the same waitlist rules and the same reply as one that came by mail.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace

from .classify import Reading
from .clock import now_utc
from .daemon import Processor, note_row
from .inbox import Inbox
from .models import Action, Intent, ParsedMail, Participant, ReplyKind, Status
from .parse import parse_mail
from .policy import Decision, decide
from .text import valid_address


class OrganiserError(Exception):
    """Raised for an unknown address or message, or a change that makes no sense (e.g.
    resending to a cancelled registration). The message is one line for the organiser."""


@dataclass(frozen=True)
class Outcome:
    text: str  # one line: what happened
    queued: int = 0  # replies queued


class Desk:
    """Manual changes through the Processor of a configuration."""

    def __init__(self, processor: Processor):
        self.processor = processor
        self.store = processor.store
        self.config = processor.config

    def add(self, email: str, name: str, organisation: str | None, mail: bool) -> Outcome:
        address = valid_address(email)
        if address is None:
            raise OrganiserError(f"not an e-mail address: {email!r}")
        person = Participant(address, name, organisation)
        decision, queued = self._apply(person, Intent.REGISTER,
                                       "von Hand angemeldet (mailbot add)", mail)
        return Outcome(_describe(decision, address), queued)

    def cancel(self, email: str, mail: bool = True) -> Outcome:
        email = email.lower()
        if not self.store.registrations([email]):
            raise OrganiserError(f"{email} is not registered")
        person = Participant(email, "", None)
        decision, queued = self._apply(person, Intent.CANCEL,
                                       "von Hand abgemeldet (mailbot cancel)", mail)
        return Outcome(_describe(decision, email), queued)

    def resend(self, email: str) -> Outcome:
        email = email.lower()
        reg = self.store.registrations([email]).get(email)
        if reg is None:
            raise OrganiserError(f"{email} is not registered")
        kind = {Status.CONFIRMED: ReplyKind.CONFIRMATION,
                Status.WAITLISTED: ReplyKind.WAITLISTED}.get(reg.status)
        if kind is None:
            raise OrganiserError(f"{email} has cancelled; use `mailbot add` to register again")
        now = now_utc()
        person = Participant(reg.email, reg.name, reg.organisation)
        reply = self.processor.composer.reply(kind, person, reg, None, now, lang=reg.language)
        self._record(f"erneut gesendet (mailbot resend): {kind.value}", [], [reply], now)
        return Outcome(f"{kind.value.replace('_', ' ')} sent again to {email} "
                       f"(same calendar entry)", 1)

    def approve(self, key: str, inbox: Inbox | None, email: str | None, name: str | None,
                organisation: str | None) -> Outcome:
        row = self._waiting(key)
        if row["action"] != Action.REVIEW:
            raise OrganiserError("this mail was already answered (it also asks something): "
                                 "answer the question yourself, then `mailbot dismiss` it")
        mail = inbox.find(row["message_id"]) if inbox else None
        parsed = parse_mail(mail.raw, self.processor.own) if mail else None
        people = list(parsed.participants) if parsed else []
        if email or not people:
            address = (email or row["sender"] or "").lower()
            if not address or address.startswith("erased:"):
                raise OrganiserError("no address known for this mail: give --email")
            base = people[0] if people else Participant(address, "", None)
            people = [Participant(address, name or base.name, organisation or base.organisation)]
        elif name or organisation:
            people[0] = replace(people[0], name=name or people[0].name,
                                organisation=organisation or people[0].organisation)
        now = now_utc()
        sender = parsed.sender if parsed and not email else None  # who registered them
        synthetic = self._synthetic(tuple(people), parsed, sender)
        with self.store.immediate():
            situation, existing = self.processor.situation(
                synthetic.participants, now, now, deadline_applies=False, age_applies=False)
            decision = decide(synthetic, Reading(Intent.REGISTER), situation, self.config.event)
            regs, replies = self.processor.realise(decision, existing, synthetic, now, now)
            self.store.resolve(row["message_id"], Action.REGISTER.value,
                               f"von Hand freigegeben: {row['reason'] or ''}", now, regs,
                               replies)
        if mail and inbox:
            inbox.release(mail.ref)
        where = "moved to the processed folder" if mail else "not found in the inbox any more"
        return Outcome(f"{_describe(decision, ', '.join(p.email for p in people))}; "
                       f"the mail was {where}", len(replies))

    def dismiss(self, key: str, inbox: Inbox | None) -> Outcome:
        row = self._waiting(key)
        action = row["action"] if row["action"] != Action.REVIEW else Action.NOOP.value
        self.store.resolve(row["message_id"], action, f"von Hand erledigt: {row['reason'] or ''}",
                           now_utc())
        mail = inbox.find(row["message_id"]) if inbox else None
        if mail and inbox:
            inbox.release(mail.ref)
        where = "moved to the processed folder" if mail else "not found in the inbox any more"
        return Outcome(f"marked as handled without a reply; the mail was {where}")

    def forget(self, email: str) -> Outcome:
        email = email.lower()
        reg = self.store.registrations([email]).get(email)
        known = reg or self.store.db.execute(
            "SELECT 1 FROM messages WHERE sender = ? UNION SELECT 1 FROM outbox "
            "WHERE recipient = ?", [email, email]).fetchone()
        if not known:
            raise OrganiserError(f"nothing stored about {email}")
        counts = self.store.erase_person(email, reg.name if reg else None)
        return Outcome(f"erased {email}: {counts['registrations']} registration, "
                       f"{counts['replies']} replies, sender hidden in {counts['mails']} mails")

    def purge(self, now: dt.datetime, force: bool = False) -> Outcome:
        due = self.processor.purge_due()
        if now < due and not force:
            return Outcome(f"nothing to erase before {due:%d.%m.%Y} "
                           f"([privacy] retain_days_after_event = "
                           f"{self.config.privacy.retain_days})")
        counts = self.store.erase_all()
        total = sum(counts.values())
        return Outcome(f"erased the personal data of {total} registrations "
                       f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items())) or 'none'})")

    # -- the common way ------------------------------------------------------------------

    def _apply(self, person: Participant, intent: Intent, reason: str,
               mail: bool) -> tuple[Decision, int]:
        now = now_utc()
        synthetic = self._synthetic((person,), None)
        with self.store.immediate():  # the service cannot write between our read and rows
            situation, existing = self.processor.situation(
                (person,), now, now, deadline_applies=False, age_applies=False)
            decision = decide(synthetic, Reading(intent), situation, self.config.event)
            regs, replies = self.processor.realise(decision, existing, synthetic, now, now)
            replies = replies if mail else []
            self._record(reason + (f"; {decision.reason}" if decision.reason else ""), regs,
                         replies, now, decision.action)
        return decision, len(replies)

    def _record(self, reason: str, regs: list, replies: list, now: dt.datetime,
                action: Action = Action.NOOP) -> None:
        self.store.record(note_row(f"manual:{uuid.uuid4()}", action, reason, now), regs,
                          replies, now)

    def _synthetic(self, people: tuple[Participant, ...], parsed: ParsedMail | None,
                   sender: str | None = None) -> ParsedMail:
        """A mail-like value for decide(): the organiser speaks for these people, as
        ``sender`` (who wrote the mail) or else the first of them."""
        return ParsedMail(key=parsed.key if parsed else "manual", message_id=(
            parsed.message_id if parsed else None), sender=sender or people[0].email,
            sender_name=parsed.sender_name if sender and parsed else people[0].name,
            subject="", recipients=(), headers={}, text="",
            participants=people, language=parsed.language if parsed else None)

    def _waiting(self, key: str) -> dict:
        """A mail of the review list, by its number there or by its Message-ID."""
        rows = self.store.for_review()
        if key.isdigit() and 1 <= int(key) <= len(rows):
            return rows[int(key) - 1]
        for row in rows:
            if row["message_id"] in (key, f"<{key.strip('<>')}>"):
                return row
        raise OrganiserError(f"no mail waiting for review with number or Message-ID {key!r} "
                             f"(see: mailbot review)")


def _describe(decision: Decision, who: str) -> str:
    states = [f"{s.participant.email}: {s.status.value}" for s in decision.steps
              if s.status is not None]
    if decision.action is Action.REVIEW:
        return f"not done: {decision.reason}"
    return ", ".join(states) or f"{who}: {decision.reason or 'unchanged'}"
