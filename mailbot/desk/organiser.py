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
from mailbot.core.i18n import ngettext
from mailbot.core.i18n import tr as _
from mailbot.core.models import (
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
from mailbot.mail.deskfolders import BY_APPROVE, BY_DISMISS
from mailbot.mail.inbox import Inbox
from mailbot.mail.smtp import open_transport
from mailbot.replies.compose import body_forms
from mailbot.replies.report import kind_word, status_word
from mailbot.rules import guard
from mailbot.rules.lifecycle import status_reply
from mailbot.rules.policy import event_version, moved_up, realise
from mailbot.service import deskround
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
        raise TaskError(_("the running service still has the old event details: restart it "
                          "first (systemctl restart mailbot), then run announce again"))


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


class LeaveInPlace:
    """The inbox while the service runs: a mail is read (for its names) but not moved —
    the service finds it settled in the database and moves it at its next round, so two
    processes never move mail in the same folder."""

    moves_later = True

    def __init__(self, inbox):
        self.inbox = inbox

    def find(self, message_id: str, fingerprint: str | None = None):
        return self.inbox.find(message_id, fingerprint)

    def release(self, ref: str) -> None:
        self.inbox.unflag([ref])  # settled: not flagged for a human any more


class Desk:
    """Manual changes through the Processor of a configuration."""

    def __init__(self, processor: Processor):
        self.processor = processor
        self.store = processor.store
        self.config = processor.config
        processor.jobs.remember_details()  # what the calendar entries made here will show

    def add(self, email: str, name: str, organisation: str | None, mail: bool,
            lang: str | None = None) -> Outcome:
        address = self._participant_address(email)
        person = Participant(address, name, organisation)
        decision, queued = self._apply(person, Intent.REGISTER,
                                       "von Hand angemeldet (mailbot add)", mail,
                                       lang or self.config.event.language)
        return Outcome(_describe(decision, address), queued)

    def _participant_address(self, value: str) -> str:
        """The address a participant may have (add, edit --email), or OrganiserError."""
        address = valid_address(value)
        if address is None:
            raise OrganiserError(_("not an e-mail address: {value}").format(value=repr(value)))
        refused = guard.not_a_participant(address, self.processor.own)
        if refused:
            raise OrganiserError(refused)
        return address

    def cancel(self, email: str, mail: bool = True) -> Outcome:
        email = email.lower()
        if not self.store.registrations([email]):
            raise OrganiserError(_("{email} is not registered").format(email=email))
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
            raise OrganiserError(_("{email} is not registered").format(email=email))
        if name is None and organisation is None and new_email is None:
            raise OrganiserError(_("nothing to change: give --name, --organisation or --email"))
        new = replace(reg, name=name.strip() if name else reg.name,
                      organisation=(organisation.strip() or None) if organisation is not None
                      else reg.organisation)
        changes = [f"{what}: {old!r} → {value!r}" for what, old, value in (
            (_("name"), reg.name, new.name),
            (_("organisation"), reg.organisation, new.organisation)) if old != value]
        now = now_utc()
        new, replies = (new, []) if new_email else self._name_replies(reg, new, now)
        if new_email:
            address = self._participant_address(new_email)
            if address != email and self.store.registrations([address]):
                raise OrganiserError(_("{email} is registered already").format(email=address))
            if address != email:
                new = replace(new, email=address)
                changes.append(_("address: {old} → {new}").format(old=email, new=address))
                replies = self._address_replies(reg, new, now)
        if not changes:
            return Outcome(_("{email}: nothing changed").format(email=email))
        with self.store.immediate():
            if new.email != email:
                self.store.change_address(email, new.email)
            self._record(f"von Hand geändert (mailbot edit): {'; '.join(changes)}", [new],
                         replies, now)
        sent = (_("; {kind} sent again with the corrected name").format(
            kind=kind_word(replies[0].kind.value)) if replies and not new_email else "")
        return Outcome(f"{email}: " + ", ".join(changes) + sent, len(replies))

    def _name_replies(self, old: Registration, new: Registration,
                      now: dt.datetime) -> tuple[Registration, list]:
        """A corrected name: the confirmation or waitlist notice again (calendar updated)."""
        kind = status_reply(new.status)
        if kind is None or old.name == new.name:
            return new, []
        if new.status is Status.CONFIRMED:
            new = replace(new, ics_sequence=new.ics_sequence + 1)
        return new, [self.processor.composer.reply(
            kind, Participant(new.email, new.name, new.organisation), new, None, now,
            lang=new.language)]

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
                state = status_word(reg.status.value) if reg else _("not registered")
                raise OrganiserError(_("{email} is not on the waitlist ({state})").format(
                    email=email, state=state))
            plan = realise(Decision(Action.NOOP, "", (moved_up(reg),)), {email: reg},
                           self.processor.version, self.processor.new_uid)
            self._record(f"von Hand von der Warteliste bestätigt (mailbot move-up): {email}",
                         list(plan.registrations), self.processor.compose(plan.replies, now),
                         now)
        capacity = self.config.event.capacity
        confirmed = self.store.confirmed_count()
        over = (_(" ({n} confirmed, {more} more than [event] capacity)").format(
            n=confirmed, more=confirmed - (capacity or 0))
            if capacity is not None and confirmed > capacity else "")
        return Outcome(f"{email}: {status_word('confirmed')}{over}", 1)

    def resend(self, email: str) -> Outcome:
        email = email.lower()
        reg = self.store.registrations([email]).get(email)
        if reg is None:
            raise OrganiserError(_("{email} is not registered").format(email=email))
        if reg.status is Status.HELD:
            raise OrganiserError(_("{email}: a place is held while the mail waits for review; "
                                   "approve or dismiss it first (see: mailbot review)").format(
                                       email=email))
        kind = status_reply(reg.status)
        if kind is None:
            raise OrganiserError(_("{email} has cancelled; use `mailbot add` to register "
                                   "again").format(email=email))
        now = now_utc()
        person = Participant(reg.email, reg.name, reg.organisation)
        reply = self.processor.composer.reply(kind, person, reg, None, now, lang=reg.language)
        self._record(f"erneut gesendet (mailbot resend): {kind.value}", [], [reply], now)
        return Outcome(_("{kind} sent again to {email} (same calendar entry)").format(
            kind=kind_word(kind.value), email=email), 1)

    def approve(self, key: str, inbox: Inbox | None, email: str | None, name: str | None,
                organisation: str | None) -> Outcome:
        row = self._waiting(key)
        mail = inbox.find(row["message_id"], row["fingerprint"]) if inbox else None
        try:
            done = deskround.approve(self.processor, row, mail.raw if mail else None,
                                     BY_APPROVE, email, name, organisation)
        except deskround.DecisionError as exc:
            raise OrganiserError(str(exc)) from None
        if mail and inbox:
            inbox.release(mail.ref)
        where = _where(mail, inbox)
        return Outcome(_("{outcome}; the mail was {where}").format(
            outcome=_describe(done.decision, ", ".join(p.email for p in done.people)),
            where=where), done.replies)

    def dismiss(self, key: str, inbox: Inbox | None) -> Outcome:
        row = self._waiting(key)
        deskround.dismiss(self.processor, row, BY_DISMISS)
        mail = inbox.find(row["message_id"], row["fingerprint"]) if inbox else None
        if mail and inbox:
            inbox.release(mail.ref)
        where = _where(mail, inbox)
        return Outcome(_("marked as handled without a reply; the mail was {where}").format(
            where=where))

    def forget(self, email: str) -> Outcome:
        email = email.lower()
        reg = self.store.registrations([email]).get(email)
        if not reg and not self.store.knows_address(email):
            raise OrganiserError(_("nothing stored about {email}").format(email=email))
        name = reg.name if reg else None
        counts = self.store.erase_person(email, name, body_forms(name))
        regs, replies, mails = counts["registrations"], counts["replies"], counts["mails"]
        return Outcome(_("erased {email}: {registrations}, {replies}, sender hidden in "
                         "{mails}").format(
            email=email,
            registrations=ngettext("{n} registration", "{n} registrations", regs).format(n=regs),
            replies=ngettext("{n} reply", "{n} replies", replies).format(n=replies),
            mails=ngettext("{n} mail", "{n} mails", mails).format(n=mails)))

    def purge(self, now: dt.datetime, force: bool = False) -> Outcome:
        due = self.processor.jobs.purge_due()
        if now < due and not force:
            return Outcome(_("nothing to erase before {due} ([privacy] "
                             "retain_days_after_event = {days})").format(
                due=f"{due:%d.%m.%Y}", days=self.config.privacy.retain_days))
        counts = self.store.erase_all(now)
        total = sum(counts.values())
        listed = ", ".join(f"{n} {status_word(s)}" for s, n in sorted(counts.items()))
        return Outcome(_("erased the personal data of {registrations} ({listed})").format(
            registrations=ngettext("{n} registration", "{n} registrations",
                                   total).format(n=total),
            listed=listed or _("none")))

    # -- the common way ------------------------------------------------------------------

    def _apply(self, person: Participant, intent: Intent, reason: str,
               mail: bool, lang: str | None = None) -> tuple[Decision, int]:
        now = now_utc()
        request = Request(key="manual", people=(person,), sender=person.email, arrival=now,
                          evidence=Reading(intent), sender_name=person.name, language=lang)
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
        raise OrganiserError(_("no mail waiting for review with number or Message-ID {key} "
                               "(see: mailbot review)").format(key=repr(key)))


def _where(mail: object, inbox: object) -> str:
    if mail is None:
        return _("not found in the inbox any more")
    if getattr(inbox, "moves_later", False):
        return _("left for the running service, which moves it at its next round")
    return _("moved to the processed folder")


def _describe(decision: Decision, who: str) -> str:
    states = [f"{s.participant.email}: {status_word(s.status.value)}" for s in decision.steps
              if s.status is not None]
    if decision.action is Action.REVIEW:
        return _("not done: {reason}").format(reason=decision.reason)
    return ", ".join(states) or f"{who}: {decision.reason or _('unchanged')}"
