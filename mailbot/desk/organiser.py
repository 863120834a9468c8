"""An organiser's own changes: add, cancel, resend, approve, dismiss, forget, purge; and
the tasks `remind` and `announce`.

They take the same way as a mail: a Request, one plan from policy.py, composed and
recorded by the service (service.Processor), one transaction, the outbox. So a
registration added by hand gets the same calendar entry, the same waitlist rules and the
same reply as one that came by mail. Every command that must not race the running service
goes through :func:`locked_or_queued`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from mailbot.config import Config
from mailbot.core.clock import now_utc
from mailbot.core.models import (
    ALREADY,
    FOREIGN,
    WAITING,
    Action,
    Decision,
    Intent,
    Participant,
    Reading,
    Registration,
    ReplyKind,
    Request,
    Status,
    Summary,
)
from mailbot.core.text import valid_address
from mailbot.host.lock import AlreadyRunning, exclusive
from mailbot.mail.inbox import Inbox
from mailbot.mail.smtp import open_transport
from mailbot.reading.parse import parse_mail
from mailbot.replies.compose import body_forms
from mailbot.replies.report import outcome_words
from mailbot.rules import guard
from mailbot.rules.lifecycle import status_reply
from mailbot.rules.policy import event_version, moved_up, realise
from mailbot.service.processor import Processor, note_row
from mailbot.store import Store, no_database

T = TypeVar("T")


class TaskError(Exception):
    """Raised when a command cannot run at all (no database yet; `announce` while the
    service still has the old details); the message is one line."""


def locked_or_queued(config: Config, work: Callable[[bool], T]) -> T:
    """Run ``work(alone)`` for a command that must not race the service: holding the lock
    (``alone``: it may send and move mail itself) or, while the service holds it, beside
    it (not ``alone``: what it queues, the service sends at its next round, and the
    service moves the mail). Raises TaskError when mailbot has no database yet."""
    if not config.database.exists():
        raise TaskError(no_database(config.database))
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive(config.database))
            alone = True
        except AlreadyRunning:
            alone = False
        return work(alone)


def run_task(config: Config, task: str) -> tuple[int, Summary | None]:
    """``remind`` or ``announce`` now; (how many mails were queued, what sending them did).
    When the service is running (it holds the lock), the mails are only queued: the
    service sends them at its next round (summary None)."""
    def work(alone: bool) -> tuple[int, Summary | None]:
        if not alone and task == "announce":
            _same_version_as_service(config)
        return _task(config, task, send=alone)

    return locked_or_queued(config, work)


def _same_version_as_service(config: Config) -> None:
    with Store(config.database) as store:
        running = store.get_state("running_version")
    if running and running[0] != event_version(config.event, config.zoom):
        raise TaskError("the running service still has the old event details: restart it "
                        "first (systemctl restart mailbot), then run announce again")


def _task(config: Config, task: str, send: bool) -> tuple[int, Summary | None]:
    with Store(config.database) as store:
        processor = Processor(config, store, open_transport(config.smtp, config.contact.address))
        queued = processor.jobs.remind() if task == "remind" else processor.jobs.announce()
        if not send:
            return queued, None
        summary = Summary()
        processor.sending.flush(summary)
        return queued, summary


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
        processor.jobs.remember_details()  # what the calendar entries made here will show

    def add(self, email: str, name: str, organisation: str | None, mail: bool) -> Outcome:
        address = self._participant_address(email)
        person = Participant(address, name, organisation)
        decision, queued = self._apply(person, Intent.REGISTER,
                                       "von Hand angemeldet (mailbot add)", mail)
        return Outcome(_describe(decision, address), queued)

    def _participant_address(self, value: str) -> str:
        """The address a participant may have (add, edit --email), or OrganiserError."""
        address = valid_address(value)
        if address is None:
            raise OrganiserError(f"not an e-mail address: {value!r}")
        refused = guard.not_a_participant(address, self.processor.own)
        if refused:
            raise OrganiserError(refused)
        return address

    def cancel(self, email: str, mail: bool = True) -> Outcome:
        email = email.lower()
        if not self.store.registrations([email]):
            raise OrganiserError(f"{email} is not registered")
        person = Participant(email, "", None)
        decision, queued = self._apply(person, Intent.CANCEL,
                                       "von Hand abgemeldet (mailbot cancel)", mail)
        return Outcome(_describe(decision, email), queued)

    def edit(self, email: str, name: str | None, organisation: str | None,
             new_email: str | None) -> Outcome:
        """Correct a registration: name, organisation, address. A new address gets the
        confirmation (or waitlist notice) again with the same calendar entry; the old one a
        short note where the registration went."""
        email = email.strip().lower()
        reg = self.store.registrations([email]).get(email)
        if reg is None:
            raise OrganiserError(f"{email} is not registered")
        if name is None and organisation is None and new_email is None:
            raise OrganiserError("nothing to change: give --name, --organisation or --email")
        new = replace(reg, name=name.strip() if name else reg.name,
                      organisation=(organisation.strip() or None) if organisation is not None
                      else reg.organisation)
        changes = [f"{what}: {old!r} → {value!r}" for what, old, value in (
            ("name", reg.name, new.name), ("organisation", reg.organisation, new.organisation))
            if old != value]
        now = now_utc()
        replies = []
        if new_email:
            address = self._participant_address(new_email)
            if address != email and self.store.registrations([address]):
                raise OrganiserError(f"{address} is registered already")
            if address != email:
                new = replace(new, email=address)
                changes.append(f"address: {email} → {address}")
                replies = self._address_replies(reg, new, now)
        if not changes:
            return Outcome(f"{email}: nothing changed")
        with self.store.immediate():
            if new.email != email:
                self.store.change_address(email, new.email)
            self._record(f"von Hand geändert (mailbot edit): {'; '.join(changes)}", [new],
                         replies, now)
        return Outcome(f"{email}: " + ", ".join(changes), len(replies))

    def _address_replies(self, old: Registration, new: Registration,
                         now: dt.datetime) -> list:
        kind = status_reply(new.status)
        if kind is None:
            return []
        compose = self.processor.composer.reply
        person = Participant(new.email, new.name, new.organisation)
        return [compose(kind, person, new, None, now, lang=new.language),
                compose(ReplyKind.ADDRESS_CHANGED, Participant(old.email, old.name, None), old,
                        None, now, lang=old.language, others=[new.email])]

    def move_up(self, email: str) -> Outcome:
        """Give a waitlisted person a place by hand (even when the event is full): the
        confirmation with the calendar entry, as when a place becomes free."""
        email = email.strip().lower()
        now = now_utc()
        with self.store.immediate():
            reg = self.store.registrations([email]).get(email)
            if reg is None or reg.status is not Status.WAITLISTED:
                state = reg.status.value if reg else "not registered"
                raise OrganiserError(f"{email} is not on the waitlist ({state})")
            plan = realise(Decision(Action.NOOP, "", (moved_up(reg),)), {email: reg},
                           self.processor.version, self.processor.new_uid)
            self._record(f"von Hand von der Warteliste bestätigt (mailbot move-up): {email}",
                         list(plan.registrations), self.processor.compose(plan.replies, now),
                         now)
        capacity = self.config.event.capacity
        confirmed = self.store.confirmed_count()
        over = (f" ({confirmed} confirmed, {confirmed - capacity} more than [event] capacity)"
                if capacity is not None and confirmed > capacity else "")
        return Outcome(f"{email}: confirmed{over}", 1)

    def resend(self, email: str) -> Outcome:
        email = email.lower()
        reg = self.store.registrations([email]).get(email)
        if reg is None:
            raise OrganiserError(f"{email} is not registered")
        kind = status_reply(reg.status)
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
        mail = inbox.find(row["message_id"], row["fingerprint"]) if inbox else None
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
        request = Request(
            key=parsed.key if parsed else "manual", people=tuple(people),
            sender=sender or people[0].email, arrival=now, evidence=Reading(Intent.REGISTER),
            sender_name=parsed.sender_name if sender and parsed else people[0].name,
            message_id=parsed.message_id if parsed else None,
            language=parsed.language if parsed else None)
        with self.store.immediate():  # a human looked: the limits per mail are waived
            plan = self.processor.plan(request, budget=False, deadline_applies=False,
                                       age_applies=False, max_participants=len(people))
            decision, regs = plan.decision, list(plan.registrations)
            if decision.action is Action.REVIEW:  # nothing done: the mail keeps waiting
                raise OrganiserError(f"not approved: {decision.reason}; the mail still "
                                     f"waits for review (answer it yourself, then "
                                     f"`mailbot dismiss` it)")
            replies = self.processor.compose(plan.replies, now)
            self.store.resolve(row["message_id"], Action.REGISTER.value,
                               f"von Hand freigegeben: {row['reason'] or ''}", now, regs,
                               replies)
        if mail and inbox:
            inbox.release(mail.ref)
        where = _where(mail, inbox)
        return Outcome(f"{_describe(decision, ', '.join(p.email for p in people))}; "
                       f"the mail was {where}", len(replies))

    def dismiss(self, key: str, inbox: Inbox | None) -> Outcome:
        row = self._waiting(key)
        action = row["action"] if row["action"] != Action.REVIEW else Action.NOOP.value
        self.store.resolve(row["message_id"], action, f"von Hand erledigt: {row['reason'] or ''}",
                           now_utc())
        mail = inbox.find(row["message_id"], row["fingerprint"]) if inbox else None
        if mail and inbox:
            inbox.release(mail.ref)
        where = _where(mail, inbox)
        return Outcome(f"marked as handled without a reply; the mail was {where}")

    def forget(self, email: str) -> Outcome:
        email = email.lower()
        reg = self.store.registrations([email]).get(email)
        if not reg and not self.store.knows_address(email):
            raise OrganiserError(f"nothing stored about {email}")
        name = reg.name if reg else None
        counts = self.store.erase_person(email, name, body_forms(name))
        return Outcome(f"erased {email}: {_n(counts['registrations'], 'registration')}, "
                       f"{_n(counts['replies'], 'reply', 'replies')}, sender hidden in "
                       f"{_n(counts['mails'], 'mail')}")

    def purge(self, now: dt.datetime, force: bool = False) -> Outcome:
        due = self.processor.jobs.purge_due()
        if now < due and not force:
            return Outcome(f"nothing to erase before {due:%d.%m.%Y} "
                           f"([privacy] retain_days_after_event = "
                           f"{self.config.privacy.retain_days})")
        counts = self.store.erase_all(now)
        total = sum(counts.values())
        return Outcome(f"erased the personal data of {_n(total, 'registration')} "
                       f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items())) or 'none'})")

    # -- the common way ------------------------------------------------------------------

    def _apply(self, person: Participant, intent: Intent, reason: str,
               mail: bool) -> tuple[Decision, int]:
        now = now_utc()
        request = Request(key="manual", people=(person,), sender=person.email, arrival=now,
                          evidence=Reading(intent), sender_name=person.name)
        with self.store.immediate():  # the service cannot write between our read and rows
            plan = self.processor.plan(request, budget=False, deadline_applies=False,
                                       age_applies=False)
            decision = plan.decision
            replies = self.processor.compose(plan.replies, now) if mail else []
            self._record(reason + (f"; {decision.reason}" if decision.reason else ""),
                         list(plan.registrations), replies, now, decision.action)
        return decision, len(replies)

    def _record(self, reason: str, regs: list, replies: list, now: dt.datetime,
                action: Action = Action.NOOP) -> None:
        self.store.record(note_row(f"manual:{uuid.uuid4()}", action, reason, now), regs,
                          replies, now)

    def _waiting(self, key: str) -> dict:
        """A mail of the review list, by its number there (the message row's id: it stays
        the same after other mails are approved or dismissed) or by its Message-ID."""
        rows = self.store.for_review()
        for row in rows:
            if key.strip("[]") == str(row["id"]) or row["message_id"] in (
                    key, f"<{key.strip('<>')}>"):
                return row
        raise OrganiserError(f"no mail waiting for review with number or Message-ID {key!r} "
                             f"(see: mailbot review)")


def inbox_preview(processor: Processor, inbox: Inbox) -> list[str]:
    """What `run` would do with each mail in the inbox now — decided and recorded in the
    processor's store, which must be a private copy (nothing is sent, moved or flagged)."""
    store, lines, summary = processor.store, [], Summary()
    last = max([r["id"] for r in store.replies_after(0)] or [0])
    tz = processor.config.event.tz
    for batch in inbox.batches():
        for mail in batch:
            outcome = processor.handle(mail, summary)
            summary.mails[outcome] += 1
            parsed = parse_mail(mail.raw, processor.own)
            row = store.message(parsed.key)
            reason = f" – {row['reason']}" if row and row["reason"] and outcome not in (
                FOREIGN, ALREADY, WAITING) else ""
            lines += ["", f"{mail.received_at.astimezone(tz):%d.%m.%Y %H:%M}  "
                          f"{parsed.sender or '(unreadable sender)'}: {parsed.subject or '–'}",
                      f"  → {outcome_words(outcome)}{reason}"]
            for reply in store.replies_after(last):
                lines.append(f"  → would send: {reply['kind']} to {reply['recipient']}")
                last = reply["id"]
    return lines


def _n(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def _where(mail: object, inbox: object) -> str:
    if mail is None:
        return "not found in the inbox any more"
    if getattr(inbox, "moves_later", False):
        return "left for the running service, which moves it at its next round"
    return "moved to the processed folder"


def _describe(decision: Decision, who: str) -> str:
    states = [f"{s.participant.email}: {s.status.value}" for s in decision.steps
              if s.status is not None]
    if decision.action is Action.REVIEW:
        return f"not done: {decision.reason}"
    return ", ".join(states) or f"{who}: {decision.reason or 'unchanged'}"
