"""The scheduled jobs of the service: free places to the waitlist, reminders, announcements
of changed details, the end of the retention period. The Processor holds one (``jobs``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterable

from mailbot.config import Config
from mailbot.core.models import Action, Decision, Participant, Registration, Reply, ReplyKind
from mailbot.mail.inbox import Inbox, InboxError
from mailbot.replies.compose import ComposeError, Composer
from mailbot.rules.lifecycle import PurgeFacts, purge_verdict
from mailbot.rules.policy import (
    ReplySpec,
    announcements,
    changed_details,
    due_reminders,
    event_details,
    promotion,
    purge_due,
    realise,
    reminders_due,
)
from mailbot.store import Store, now_utc, prune_backups
from mailbot.store.messages import note_row

log = logging.getLogger(__name__)

START_KEY = "registrations_start"  # the [event] start the registrations were made under
ANNOUNCED_KEY = "purge_announced"  # when the due purge was first announced
PURGE_KEY = "purge"  # why the automatic purge waits or was refused (for `status`)


class Jobs:
    """The scheduled jobs, on the Processor's configuration, store and composer.

    ``compose`` turns a plan's reply specs into replies and ``new_uid`` makes a calendar
    UID: both are the Processor's, handed over so that a promotion's reply is composed
    exactly like a mail's."""

    def __init__(self, config: Config, store: Store, composer: Composer, version: str,
                 compose: Callable[[Iterable[ReplySpec], dt.datetime], list[Reply]],
                 new_uid: Callable[[], str]):
        self.config = config
        self.store = store
        self.composer = composer
        self.version = version
        self.compose = compose
        self.new_uid = new_uid

    def fill_places(self) -> int:
        """Free places (capacity raised, a confirmed person erased) go to the waitlist, first
        come first served (policy.promotion); each person moved up gets the confirmation."""
        moved = 0
        while self._promotion() is not None:  # a look first, without the write lock
            with self.store.immediate():
                found = self._promotion()
                if found is None:
                    break
                decision, head = found
                now = now_utc()
                plan = realise(decision, {head.email: head}, self.version, self.new_uid)
                try:
                    replies = self.compose(plan.replies, now)
                except ComposeError as exc:
                    self._template_broken(ReplyKind.CONFIRMATION, head.email, exc, now)
                    break
                row = note_row(f"promotion:{uuid.uuid4()}", Action.NOOP, decision.reason, now)
                self.store.record(row, list(plan.registrations), replies, now)
            moved += 1
        return moved

    def _promotion(self) -> tuple[Decision, Registration] | None:
        head = self.store.first_waitlisted()
        decision = promotion(head, self.store.places_taken() if head else 0,
                             self.config.event)
        return (decision, head) if decision is not None and head is not None else None

    def remind(self) -> int:
        """Queue the reminders that are due (each person, each reminder once)."""
        now, event = now_utc(), self.config.event
        if not reminders_due(self.config.reminders, event.start, now, event.cancelled):
            return 0  # nothing due: no need to read every registration on each poll
        plan = due_reminders(self.store.with_status("confirmed", reachable=True),
                             self.config.reminders, event.start, now,
                             self.store.notices("reminder:"), event.cancelled)
        queued = 0
        for reg, key, send in plan:
            reply = self._compose(ReplyKind.REMINDER, reg, now) if send else None
            if send and reply is None:
                continue  # a broken template: logged, tried again next round
            queued += self.store.record_notice(reg.email, key, reply, now) and send
        return queued

    def _compose(self, kind: ReplyKind, reg: Registration, now: dt.datetime,
                 moved_up: bool = False, changes: list | None = None) -> Reply | None:
        """A notice for one person; None (logged, in `status` as last error) when the
        template cannot be rendered, so one broken template does not stop the service."""
        person = Participant(reg.email, reg.name, reg.organisation)
        try:
            return self.composer.reply(kind, person, reg, None, now, lang=reg.language,
                                       moved_up=moved_up, changes=changes)
        except ComposeError as exc:
            self._template_broken(kind, reg.email, exc, now)
            return None

    def _template_broken(self, kind: ReplyKind, email: str, exc: ComposeError,
                         now: dt.datetime) -> None:
        log.error("cannot compose %s: %s", kind.value, exc)  # no address in the log
        self.store.set_state("last_error", f"template {kind.value}: {exc}", now)

    def announce(self) -> int:
        """Queue an update (or, for a cancelled event, a cancellation) to everyone whose
        calendar entry shows older details; running it again sends nothing new."""
        now = now_utc()
        current = {r.email: r for r in self.store.with_status("confirmed", "waitlisted",
                                                               reachable=True)}
        plan = self.announcement_plan(list(current.values()))
        self.remember_details()
        queued = 0
        for reg, kind, key in plan:
            changes = self.changes_since(current[reg.email].event_version)
            reply = self._compose(kind, reg, now, changes=changes)
            if reply is not None:
                queued += self.store.record_notice(reg.email, key, reply, now,
                                                   before=current[reg.email], after=reg)
        return queued

    def remember_details(self) -> None:
        """Keep what this version of the event shows, so that a later announcement can say
        what changed (state ``details:<version>``; written once per version)."""
        key = f"details:{self.version}"
        if self.store.get_state(key) is None:
            details = event_details(self.config.event, self.config.zoom)
            self.store.set_state(key, json.dumps(details, ensure_ascii=False), now_utc())

    def changes_since(self, version: str | None) -> list[tuple[str, str, str]]:
        """(field, old, new) between the details of ``version`` and the current ones."""
        old = self.store.get_state(f"details:{version}") if version else None
        return changed_details(json.loads(old[0]) if old else None,
                               event_details(self.config.event, self.config.zoom))

    def announcement_plan(self, current: list | None = None) -> list:
        """Who would get an announcement now: (registration, kind, notice key)."""
        if current is None:
            current = self.store.with_status("confirmed", "waitlisted", reachable=True)
        return announcements(current, self.version, self.config.event.cancelled,
                             self.store.notices(""))

    def purge_due(self) -> dt.datetime:
        """When the retention period ends (lifecycle.purge_due)."""
        return purge_due(self.config.event, self.config.privacy.retain_days)

    def remember_start(self) -> None:
        """Keep the [event] start the registrations are made under (state
        ``registrations_start``), so that a date changed later is not taken as the end of
        the retention period; forgotten when no registration is left."""
        state = self.store.get_state(START_KEY)
        if state and state[0]:
            if not self.store.counts("registrations", "status"):
                self.store.set_state(START_KEY, "", now_utc())
        elif self.store.counts("registrations", "status"):
            self.store.set_state(START_KEY, self.config.event.start.isoformat(), now_utc())

    def purge_facts(self) -> PurgeFacts:
        def when(key: str) -> dt.datetime | None:
            state = self.store.get_state(key)
            return dt.datetime.fromisoformat(state[0]) if state and state[0] else None

        first, newest = self.store.row_times()
        return PurgeFacts(due=self.purge_due(), start=self.config.event.start,
                          start_then=when(START_KEY), first_row=first, newest_row=newest,
                          announced=when(ANNOUNCED_KEY))

    def say_retention(self, now: dt.datetime) -> None:
        """At the service's start and after a reload: whether the configuration read makes
        the automatic purge refuse — in the log and in `status` at once, not only at the
        next daily check. Erases nothing."""
        self.remember_start()
        if not self.store.counts("registrations", "status"):
            return
        facts = self.purge_facts()
        verdict, why = purge_verdict(facts, now)
        if verdict == "refuse":
            log.warning("retention: %s", why)
            self.store.set_state(PURGE_KEY, why, now)

    def purge_if_due(self, now: dt.datetime, inbox: Inbox | None = None
                     ) -> dict[str, int] | None:
        """Once a day: erase the event's personal data when its retention period is over
        (lifecycle.purge_verdict: announced a day before, refused on a doubtful date or
        clock — said in the log and in `status` as state ``purge``); with [privacy]
        mailbox = "delete", first the mails in ``inbox``."""
        self.remember_start()  # each round: a date changed later is told apart
        last = self.store.get_state("last_purge_check")
        if last and last[1][:10] == now.isoformat()[:10]:
            return None
        self.store.set_state("last_purge_check", "", now)
        rows = self.store.counts("registrations", "status")
        lost = not rows and not self.store.get_state("purged_counts")  # a new, empty file
        prune_backups(self.store.backup_folder, self.config.privacy.backup_days, now,
                      keep_newest=lost)  # then the last backup may be all that is left
        if not rows:
            self.store.set_state(PURGE_KEY, "", now)
            return None
        facts = self.purge_facts()
        verdict, why = purge_verdict(facts, now)
        self.store.set_state(PURGE_KEY, why, now)
        if verdict == "announce" and (facts.announced is None or facts.announced > now):
            self.store.set_state(ANNOUNCED_KEY, now.isoformat(), now)
        elif verdict == "wait" and facts.announced is not None:
            # not due after all (a clock that ran ahead, a longer retention period): the
            # announcement is void; when the purge is due again, it is announced anew
            self.store.set_state(ANNOUNCED_KEY, "", now)
        if verdict in ("refuse", "announce"):
            log.warning("retention: %s", why)
        if verdict != "erase":
            return None
        if not self._erase_mails(inbox):
            return None
        counts = self.store.erase_all(now)
        prune_backups(self.store.backup_folder, 0, now, everything=True)
        for key in (ANNOUNCED_KEY, START_KEY):
            self.store.set_state(key, "", now)
        log.info("retention period over: personal data of %d registrations erased",
                 sum(counts.values()))
        return counts

    def _erase_mails(self, inbox: Inbox | None) -> bool:
        """The mails of the event (as `purge` deletes them) before the database: False when
        that fails (the database stays whole; tried again the next day)."""
        if inbox is None or self.config.privacy.mailbox != "delete":
            return True
        try:
            removed = inbox.erase(self.store.message_keys() | self.store.own_mail_keys())
        except InboxError as exc:
            log.warning("retention period over, but %s: nothing erased, tried again "
                        "tomorrow", exc)
            return False
        log.info("retention period over: %d mails deleted from the mailbox", removed)
        return True
