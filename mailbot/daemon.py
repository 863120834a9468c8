"""The loop: wires the inbox, the pure core, the store and the transport together.

One mail's path: parse → is it ours? → already handled? → loop guard → classify → decide →
compose → record (each mail's rows together; one commit per batch) ; then per batch: send
the outbox → move or flag.
A mail that was recorded but not yet moved (a crash, a lost connection) is recognised by
its key on the next run and only moved: never answered twice.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from . import guard
from .classify import read
from .compose import ComposeError, Composer, restamp
from .config import Config
from .digest import queue_digest
from .inbox import Inbox, InboxError, open_inbox
from .lock import AlreadyRunning, exclusive
from .models import (
    Action,
    InboundMail,
    ParsedMail,
    Participant,
    Registration,
    Reply,
    ReplyKind,
    Status,
)
from .notify import notify, wait
from .outbox import Outgoing, Transport, TransportError, open_transport
from .parse import content_key, parse_mail
from .policy import (
    ASKED,
    DAY,
    HOUR,
    Decision,
    Situation,
    announcements,
    asked,
    asked_key,
    changed_details,
    decide,
    due_reminders,
    event_details,
    event_version,
    next_registration,
    within_budget,
)
from .store import Store, iso, now_utc, prune_backups

log = logging.getLogger(__name__)

FOREIGN = "foreign"  # not addressed to the contact address: left exactly as it was
ALREADY = "already"  # recorded by an earlier run but still in the folder: only moved
WAITING = "waiting"  # recorded for review by an earlier run: still waiting for a human
ATTENTION = "attention"  # answered, and left flagged: it also asks something
HOLD = 2.0  # seconds a batch may keep the database locked before it commits in between


def note_row(key: str, action: Action, reason: str, at: dt.datetime) -> dict:
    """The ``messages`` row for something that is not a mail of the inbox as read (a
    promotion, an organiser's change, an unreadable mail): no sender, subject or excerpt."""
    return {"message_id": key, "sender": None, "subject": None, "received_at": iso(at),
            "action": action.value, "reason": reason, "needs_attention": 0, "excerpt": None}


def excerpt(text: str, lines: int = 8, limit: int = 600) -> str:
    """The first lines of what a person wrote, for the review list."""
    kept = [line for line in text.split("\n") if line.strip()][:lines]
    return "\n".join(kept)[:limit]


@dataclass
class Summary:
    """What one run did, for the closing line and for tests."""

    mails: Counter[str] = field(default_factory=Counter)  # action, foreign, already
    replies: Counter[str] = field(default_factory=Counter)  # reply kind
    sent: int = 0
    send_errors: int = 0  # replies not sent in this run (each counted once: len(unsent))
    unsent: set[int] = field(default_factory=set)  # their outbox ids

    def not_sent(self, reply_ids: Iterable[int]) -> None:
        self.unsent.update(reply_ids)
        self.send_errors = len(self.unsent)

    @property
    def read(self) -> int:
        return sum(self.mails.values())

    @property
    def news(self) -> bool:
        """Whether the run did anything worth a line: new mail handled, a reply sent or a
        send failed. Mail still waiting for review and foreign mail, seen again on every
        poll, are not news (cron would mail the organiser every few minutes)."""
        new = sum(n for kind, n in self.mails.items() if kind not in (FOREIGN, WAITING))
        return bool(new or self.sent or self.send_errors)


class Processor:
    """Handles mail for one configuration; build once, call :meth:`run_once` per poll."""

    def __init__(self, config: Config, store: Store, transport: Transport):
        self.config = config
        self.store = store
        self.transport = transport
        self.composer = Composer(config)
        self.own = config.contact.address
        self.smtp_failing = False
        self.version = event_version(config.event, config.zoom)
        store.use_time_zone(config.event.timezone)  # the organisers' views show local time

    # -- one mail ---------------------------------------------------------------------

    def handle(self, mail: InboundMail, summary: Summary) -> str:
        """Record what to do with one mail; returns its action, FOREIGN, ALREADY or WAITING."""
        too_large = (f"zu groß ({mail.oversize / 1e6:.1f} MB), nicht gelesen"
                     if mail.oversize else None)
        try:
            parsed = parse_mail(mail.raw, self.own, too_large)
        except Exception as exc:  # noqa: BLE001 - any input must end as a visible outcome
            log.warning("cannot parse mail %s: %s", mail.ref, type(exc).__name__)
            return self._unreadable(mail, exc)
        if self.own not in parsed.recipients:
            return FOREIGN
        with self.store.immediate():  # nobody else writes between our reads and our rows
            done = self.store.handled(parsed.key)
            if done is not None:
                action, attention = done
                return WAITING if action == Action.REVIEW or attention else ALREADY
            try:
                decision, registrations, replies = self.plan(parsed, mail.received_at)
            except ComposeError as exc:
                log.error("cannot compose reply to %s: %s", parsed.key, exc)
                decision = Decision(Action.REVIEW, f"Antwort nicht erstellbar ({exc})"[:200])
                registrations, replies = [], []
            self.store.record(self._message_row(parsed, mail, decision), registrations,
                              replies, now_utc(), notices=asked(decision))
        for reply in replies:
            summary.replies[reply.kind.value] += 1
        log.info("%s %s: %s%s", parsed.key, parsed.sender, decision.action.value,
                 f" ({decision.reason})" if decision.reason else "")
        if decision.attention:
            return ATTENTION
        return decision.action.value

    def situation(self, people: tuple[Participant, ...], received_at: dt.datetime,
                  now: dt.datetime, **extra: object) -> tuple[Situation, dict]:
        """What decide() must know about these people now, and their current rows (the
        first on the waitlist included, who may move up)."""
        existing = self.store.registrations(p.email for p in people)
        head = self.store.first_waitlisted()
        counted = self.config.event.capacity is not None  # only a capacity needs the count
        situation = Situation(
            current={e: r.status for e, r in existing.items()},
            confirmed_count=self.store.confirmed_count() if counted else 0,
            received_at=received_at, now=now,
            max_age=self.config.daemon.max_age,
            max_participants=self.config.limits.max_participants, waitlist_head=head,
            others_get_details=self.config.limits.others_get_details, **extra)
        if head is not None:
            existing.setdefault(head.email, head)
        return situation, existing

    def plan(self, parsed: ParsedMail, received_at: dt.datetime,
             **extra: object) -> tuple[Decision, list, list]:
        """Decision, rows and replies for one mail (nothing is written)."""
        now = now_utc()
        situation, existing = self.situation(parsed.participants, received_at, now, **extra)
        authserv = self.config.imap.authserv_id if self.config.imap else None
        decision = decide(parsed, read(parsed, self.config.event),
                          situation, self.config.event, robot=guard.check(parsed, self.own),
                          suspicious=guard.spoofed(parsed, authserv))
        if decision.steps:
            decision = within_budget(decision, parsed,
                                     self.usage(decision, parsed, received_at, now),
                                     self.config.limits)
        registrations, replies = self.realise(decision, existing, parsed, received_at, now)
        return decision, registrations, replies

    def usage(self, decision: Decision, parsed: ParsedMail, received_at: dt.datetime,
              now: dt.datetime) -> guard.Usage:
        """What the abuse budgets have used so far, for the people of this decision."""
        addresses = [s.participant.email for s in decision.steps]
        per_address, per_domain = self.store.replies_since(now - DAY, addresses)
        by_sender = (self.store.count_notices(asked_key(parsed.sender), now - DAY)
                     if parsed.sender else 0)
        return guard.Usage(
            per_address, per_domain, others_by_sender=by_sender,
            others_overall=self.store.count_notices(ASKED, now - HOUR),
            new_per_key=self.store.new_registrations(
                (guard.burst_key(a) for a in addresses), received_at - HOUR))

    def realise(self, decision: Decision, existing: dict, parsed: ParsedMail,
                received_at: dt.datetime, now: dt.datetime) -> tuple[list, list]:
        """The rows and replies a decision stands for (nothing is written yet)."""
        registrations, replies = [], []
        names = [s.participant.name or s.participant.email for s in decision.steps
                 if s.reply is not ReplyKind.ON_BEHALF]
        writers = {p.email for p in parsed.participants} | {parsed.sender}
        for step in decision.steps:
            old = existing.get(step.participant.email)
            new = next_registration(step, old, parsed.key, received_at, self._new_uid())
            mine = step.participant.email in writers  # not someone moved up the waitlist
            if new is not None and mine and parsed.language:
                new = replace(new, language=parsed.language)
            if new is not None and new.status is Status.CONFIRMED:
                new = replace(new, event_version=self.version)  # what their calendar shows
            if new is not None:
                registrations.append(new)
            reg = new or old
            if step.reply is not None:
                lang = (parsed.language if mine else None) or (reg.language if reg else None)
                moved_up = (not mine and old is not None and old.status is Status.WAITLISTED
                            and step.reply is ReplyKind.CONFIRMATION)
                replies.append(self.composer.reply(
                    step.reply, step.participant, reg, parsed.message_id if mine else None,
                    now, lang=lang, others=names, moved_up=moved_up,
                    by=_who(parsed) if step.registered_by else None))
        return registrations, replies

    def fill_places(self) -> int:
        """Free places (capacity raised, a confirmed person erased) go to the waitlist, first
        come first served; each person moved up gets the full confirmation."""
        capacity = self.config.event.capacity
        moved = 0
        while capacity is not None and not self.config.event.cancelled:
            with self.store.immediate():
                head = self.store.first_waitlisted()
                if self.store.confirmed_count() >= capacity or head is None:
                    break
                now = now_utc()
                new = replace(head, status=Status.CONFIRMED, event_version=self.version)
                reply = self._compose(ReplyKind.CONFIRMATION, new, now, moved_up=True)
                if reply is None:
                    break
                row = note_row(f"promotion:{uuid.uuid4()}", Action.NOOP,
                               f"Platz frei: {head.email} von der Warteliste bestätigt", now)
                self.store.record(row, [new], [reply], now)
            moved += 1
        return moved

    def remind(self) -> int:
        """Queue the reminders that are due (each person, each reminder once)."""
        now = now_utc()
        start = self.config.event.start
        if now >= start or not any(start - b <= now for b in self.config.reminders):
            return 0  # nothing due: no need to read every registration on each poll
        plan = due_reminders(self.store.with_status("confirmed"), self.config.reminders,
                             self.config.event.start, now, self.store.notices("reminder:"),
                             self.config.event.cancelled)
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
            log.error("cannot compose %s for %s: %s", kind.value, reg.email, exc)
            self.store.set_state("last_error", f"template {kind.value}: {exc}", now)
            return None

    def announce(self) -> int:
        """Queue an update (or, for a cancelled event, a cancellation) to everyone whose
        calendar entry shows older details; running it again sends nothing new."""
        now = now_utc()
        current = {r.email: r for r in self.store.with_status("confirmed", "waitlisted")}
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
            current = self.store.with_status("confirmed", "waitlisted")
        return announcements(current, self.version, self.config.event.cancelled,
                             self.store.notices(""))

    def purge_due(self) -> dt.datetime:
        """When the retention period ends: the event's end + retain_days_after_event."""
        return self.config.event.end + dt.timedelta(days=self.config.privacy.retain_days)

    def purge_if_due(self, now: dt.datetime) -> dict[str, int] | None:
        """Once a day: erase the event's personal data when its retention period is over."""
        last = self.store.get_state("last_purge_check")
        if last and last[1][:10] == now.isoformat()[:10]:
            return None
        self.store.set_state("last_purge_check", "", now)
        prune_backups(self.store.backup_folder, self.config.privacy.backup_days, now,
                      everything=now >= self.purge_due())
        if now < self.purge_due() or not self.store.counts("registrations", "status"):
            return None
        counts = self.store.erase_all()
        log.info("retention period over: personal data of %d registrations erased",
                 sum(counts.values()))
        return counts

    def _new_uid(self) -> str:
        return f"{uuid.uuid4()}@{self.config.contact.domain}"

    def _message_row(self, parsed: ParsedMail, mail: InboundMail, decision: Decision) -> dict:
        for_human = decision.action is Action.REVIEW or decision.attention
        return {"message_id": parsed.key, "sender": parsed.sender, "subject": parsed.subject,
                "received_at": iso(mail.received_at), "action": decision.action.value,
                "reason": decision.reason or None, "needs_attention": int(decision.attention),
                "excerpt": excerpt(parsed.text) if for_human else None}

    def _unreadable(self, mail: InboundMail, exc: Exception) -> str:
        key = content_key(mail.raw)
        if self.store.handled(key) is None:
            row = note_row(key, Action.REVIEW, f"Mail nicht lesbar ({type(exc).__name__})",
                           mail.received_at)
            self.store.record(row, [], [], now_utc())
        return Action.REVIEW.value

    # -- a whole run ------------------------------------------------------------------

    def run_once(self, inbox: Inbox, stop: threading.Event | None = None,
                 heartbeat: Callable[[], None] = lambda: None,
                 progress: Callable[[Summary], None] = lambda _: None) -> Summary:
        """Handle every mail waiting in the inbox, send the replies, move the mail."""
        summary = Summary()
        self.remember_details()
        error_before = self.store.get_state("last_error")
        self.fill_places()
        self.flush(summary)  # replies left queued by an earlier run go first
        for batch in inbox.batches():
            heartbeat()
            to_move, to_flag = [], []
            self._record_batch(batch, summary, stop, to_move, to_flag)
            self.flush(summary)
            inbox.done(to_move)
            inbox.flag(to_flag)
            progress(summary)
            if stop is not None and stop.is_set():
                break
        reminders = self.remind()
        if reminders:
            summary.replies[ReplyKind.REMINDER.value] += reminders
            self.flush(summary)
        if self.config.digest.to and queue_digest(self, now_utc()):
            self.flush(summary)
        self.purge_if_due(now_utc())
        self.store.set_state("last_poll", inbox.description, now_utc())
        if not summary.send_errors and error_before is not None and \
                self.store.get_state("last_error") == error_before:  # `status`: it is old
            self.store.set_state("last_clean_poll", error_before[1], now_utc())
        return summary

    def _record_batch(self, batch: list[InboundMail], summary: Summary,
                      stop: threading.Event | None, to_move: list, to_flag: list) -> None:
        """Handle a batch with one commit: each mail's rows stay together (a savepoint
        each), and a crash before the commit loses nothing — nothing of the batch was sent
        or moved yet, so the next run reads the same mails again. A batch that holds the
        database longer than HOLD seconds (big mails) commits in between, so organisers'
        commands are not kept waiting."""
        waiting = deque(batch)
        while waiting:
            with self.store.immediate():
                began = time.monotonic()
                while waiting:  # at least one mail per transaction
                    if stop is not None and stop.is_set():
                        return
                    mail = waiting.popleft()
                    outcome = self._handle_safely(mail, summary)
                    summary.mails[outcome] += 1
                    if outcome in (Action.REVIEW, ATTENTION, WAITING):  # flag again: a crash
                        to_flag.append(mail.ref)  # may come between recording and flagging
                    elif outcome != FOREIGN:
                        to_move.append(mail.ref)
                    if time.monotonic() - began > HOLD:
                        break  # commit; the rest of the batch in the next transaction

    def _handle_safely(self, mail: InboundMail, summary: Summary) -> str:
        try:
            return self.handle(mail, summary)
        except sqlite3.Error:
            raise  # the database, not the mail: stop the batch, nothing is moved, retry later
        except Exception as exc:  # noqa: BLE001 - one bad mail must not stop the batch
            log.exception("error while handling mail %s", mail.ref)
            return self._unreadable(mail, exc)

    def flush(self, summary: Summary) -> None:
        """Send every reply that is due; a temporary failure is retried later (backoff in
        ``next_attempt_at``), a permanent one (5xx) becomes ``failed``."""
        rows = self.store.pending_replies(now_utc())
        if not rows:
            return
        now, tz = now_utc(), self.config.event.tz
        items = [Outgoing(r["id"], r["recipient"], r["kind"], restamp(r["body"], now, tz))
                 for r in rows]
        sink = _Recorder(self.store, summary)
        try:
            self.transport.send(items, sink)
        except TransportError as exc:
            summary.not_sent(i.id for i in items if i.id not in sink.finished_ids)
            self.store.set_state("last_error", str(exc), now_utc())
            if not self.smtp_failing:  # one line per change of state, not per attempt
                log.error("%s; %d replies stay queued and are sent when it is back", exc,
                          len(items) - sink.done)
            self.smtp_failing = True
            return
        if self.smtp_failing:
            log.info("%s reachable again", self.transport.description)
        self.smtp_failing = False


def _who(parsed: ParsedMail) -> str:
    """The sender as named to a person they registered: the address, with the name only
    when it cannot pass for a link or another address."""
    name = parsed.sender_name.strip()
    if not name or len(name) > 60 or re.search(r"[/:@<>]|www\.|\.[a-z]{2,}\b", name, re.I):
        return parsed.sender or ""
    return f"{name} ({parsed.sender})"


class _Recorder:
    """Writes each delivery step to the outbox table the moment it happens."""

    def __init__(self, store: Store, summary: Summary):
        self.store = store
        self.summary = summary
        self.done = 0
        self.finished_ids: set[int] = set()

    def starting(self, reply_id: int) -> None:
        self.store.mark_sending(reply_id)

    def finished(self, reply_id: int, error: str | None, permanent: bool) -> None:
        self.done += 1
        self.finished_ids.add(reply_id)
        notify("WATCHDOG=1")  # a long batch of replies is work, not a hang
        if error is None:
            self.store.mark_sent(reply_id, now_utc())
            self.summary.sent += 1
            return
        log.warning("reply %d not sent: %s", reply_id, error)
        self.store.mark_attempt_failed(reply_id, error, permanent, now_utc())
        self.summary.not_sent([reply_id])


def _open_inbox(config: Config) -> Inbox:
    return open_inbox(config.imap, config.maildir, config.daemon.batch_size,
                      config.limits.max_message_bytes, config.daemon.idle)


def run_once(config: Config, stop: threading.Event | None = None,
             progress: Callable[[Summary], None] = lambda _: None) -> Summary:
    """Handle all waiting mail once, then close everything (``run --once``, cron).
    Raises AlreadyRunning when another mailbot works on the same database."""
    with exclusive(config.database):
        store = Store(config.database)
        try:
            processor = Processor(config, store,
                                  open_transport(config.smtp, config.contact.address))
            try:
                inbox = _open_inbox(config)
            except InboxError as exc:
                store.set_state("last_error", str(exc), now_utc())
                raise
            try:
                return processor.run_once(inbox, stop, progress=progress)
            finally:
                inbox.close()
        finally:
            store.close()


def run_task(config: Config, task: str) -> tuple[int, Summary | None]:
    """``remind`` or ``announce`` now; (how many mails were queued, what sending them did).
    When the service is running (it holds the lock), the mails are only queued: the
    service sends them at its next round (summary None)."""
    if not config.database.exists():
        raise TaskError(f"no database at {config.database} yet: mailbot has not run with "
                        f"this configuration ([database] path)")
    try:
        with exclusive(config.database):
            return _task(config, task, send=True)
    except AlreadyRunning:
        if task == "announce":
            _same_version_as_service(config)
        return _task(config, task, send=False)


class TaskError(Exception):
    """Raised when `remind` or `announce` cannot run; the message is one line."""


def _same_version_as_service(config: Config) -> None:
    store = Store(config.database)
    try:
        running = store.get_state("running_version")
    finally:
        store.close()
    if running and running[0] != event_version(config.event, config.zoom):
        raise TaskError("the running service still has the old event details: restart it "
                        "first (systemctl restart mailbot), then run announce again")


def _task(config: Config, task: str, send: bool) -> tuple[int, Summary | None]:
    store = Store(config.database)
    try:
        processor = Processor(config, store, open_transport(config.smtp, config.contact.address))
        queued = processor.remind() if task == "remind" else processor.announce()
        if not send:
            return queued, None
        summary = Summary()
        processor.flush(summary)
        return queued, summary
    finally:
        store.close()


class Backoff:
    """Waits after failures: 1 s, 2 s, 4 s … up to 5 minutes, each with jitter."""

    def __init__(self, first: float = 1.0, most: float = 300.0):
        self.first, self.most, self.failures = first, most, 0

    def next(self) -> float:
        delay = min(self.most, self.first * 2 ** self.failures)
        self.failures += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0


def run_forever(config: Config, stop: threading.Event) -> None:
    """The service: holds the lock, keeps the inbox connection, handles mail as it comes
    (IMAP IDLE, else every ``poll_interval`` s) until ``stop`` is set. A lost connection
    is re-made with backoff; each change of state is logged once."""
    with exclusive(config.database):
        store = Store(config.database)
        try:
            processor = Processor(config, store,
                                  open_transport(config.smtp, config.contact.address))
            store.set_state("running_version", processor.version, now_utc())
            notify("READY=1", "STATUS=starting")
            log.info("mailbot started for %s", config.contact.address)
            _serve(config, processor, stop)
        finally:
            notify("STOPPING=1")
            store.close()
    log.info("mailbot stopped")


def _serve(config: Config, processor: Processor, stop: threading.Event) -> None:
    backoff = Backoff()
    lost_since: float | None = None
    while not stop.is_set():
        inbox = None
        try:
            inbox = _open_inbox(config)
            if lost_since is not None:
                log.info("%s: connected again after %.0f s", inbox.description,
                         time.monotonic() - lost_since)
            else:
                log.info("%s: connected", inbox.description)
            lost_since = None
            backoff.reset()
            _loop(config, processor, inbox, stop)
        except InboxError as exc:
            processor.store.set_state("last_error", str(exc), now_utc())
            if lost_since is None:
                log.error("%s; trying again with backoff (up to every 5 minutes)", exc)
                lost_since = time.monotonic()
            notify("STATUS=inbox unreachable, retrying")
            wait(backoff.next(), stop)
        except sqlite3.Error as exc:  # e.g. locked by `mailbot forget`: nothing was moved
            log.error("database: %s; trying again", exc)
            wait(backoff.next(), stop)
        finally:
            if inbox is not None:
                inbox.close()


def _loop(config: Config, processor: Processor, inbox: Inbox, stop: threading.Event) -> None:
    def heartbeat() -> None:
        notify("WATCHDOG=1")

    while not stop.is_set():
        summary = processor.run_once(inbox, stop, heartbeat)
        if summary.news:
            log.info("%s", describe(summary))
        notify("WATCHDOG=1", f"STATUS=last poll {dt.datetime.now():%H:%M:%S}, "
                             f"{summary.read} mails read")
        inbox.wait(config.daemon.poll_interval, stop, heartbeat)


_MAIL_WORDS = (
    (Action.REGISTER, "registration{s}"), (Action.CANCEL, "cancellation{s}"),
    (Action.IGNORE, "automatic (ignored)"), (Action.REVIEW, "for review (flagged in the inbox)"),
    (Action.NOOP, "needing no reply"), (FOREIGN, "not for us (left alone)"),
    (ATTENTION, "answered but flagged (they also ask something)"),
    (ALREADY, "handled before"), (WAITING, "still waiting for review"),
)


_REPLY_WORDS = {
    "confirmation": "confirmation{s}", "waitlisted": "waitlist notice{s}",
    "duplicate": "'already registered' notice{s}", "cancellation": "cancellation{s}",
    "not_registered": "'not registered' notice{s}", "closed": "'registration closed' notice{s}",
    "third_party": "note{s} to people registered by someone else",
    "on_behalf": "note{s} to who registered them", "reminder": "reminder{s}",
    "update": "changed-details mail{s}", "event_cancelled": "event-cancelled mail{s}",
    "address_changed": "new-address note{s}",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word.format(s='' if n == 1 else 's')}"


def describe(summary: Summary) -> str:
    """One line: what a run did, leaving out what did not happen."""
    if not summary.read and not summary.sent and not summary.send_errors:
        return "No new mail."
    m = summary.mails
    parts = [_plural(m[key], word) for key, word in _MAIL_WORDS if m[key]]
    text = _plural(summary.read, "mail{s} read") + (": " + ", ".join(parts) if parts else "") + "."
    if summary.replies:
        kinds = ", ".join(_plural(n, _REPLY_WORDS.get(kind, kind))
                          for kind, n in sorted(summary.replies.items()))
        text += f" New replies: {kinds}."
    text += f" {summary.sent} {'reply' if summary.sent == 1 else 'replies'} delivered."
    if summary.send_errors:
        text += f" {summary.send_errors} could not be sent yet (they stay queued)."
    return text


__all__ = ["ALREADY", "FOREIGN", "WAITING", "Processor", "ReplyKind", "Summary", "describe",
           "run_once", "run_forever"]
