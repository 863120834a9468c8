"""The loop: wires the inbox, the pure core, the store and the transport together.

One mail's path: parse → is it ours? → already handled? → loop guard → classify → decide →
compose → record (each mail's rows together; one commit per batch) ; then per batch: send
the outbox → move or flag.
A mail that was recorded but not yet moved (a crash, a lost connection) is recognised by
its key on the next run and only moved: never answered twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
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

from . import bounce, guard, health, rate
from .classify import read
from .compose import ComposeError, Composer, restamp
from .config import Config, ConfigError
from .digest import queue_digest
from .inbox import Inbox, InboxError, InboxLoginError, LeftAlone, open_inbox
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
from .notify import alive, notify, wait
from .outbox import (
    INTERRUPTED,
    Outgoing,
    Transport,
    TransportError,
    TransportLoginError,
    after_failure,
    open_transport,
)
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
from .store import Store, explain, iso, now_utc, prune_backups

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
    refused: int = 0  # refused for good by the receiving server (5xx): failed

    def not_sent(self, reply_ids: Iterable[int]) -> None:
        self.unsent.update(reply_ids)
        self.send_errors = len(self.unsent)
    held: int = 0  # replies kept back by the sending limits ([smtp] max_per_…)

    @property
    def read(self) -> int:
        return sum(self.mails.values())

    @property
    def news(self) -> bool:
        """Whether the run did anything worth a line: new mail handled, a reply sent or a
        send failed. Mail still waiting for review and foreign mail, seen again on every
        poll, are not news (cron would mail the organiser every few minutes)."""
        new = sum(n for kind, n in self.mails.items() if kind not in (FOREIGN, WAITING))
        return bool(new or self.sent or self.send_errors or self.refused)


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
        self.copy_failing = False  # copies to the Sent folder fail (logged once)
        # the organisers' views show local time
        store.use_time_zone(config.event.timezone, now_utc())

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
                decision = self.bounced(parsed, mail)
                registrations, replies = [], []
                if decision is None:
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

    def bounced(self, parsed: ParsedMail, mail: InboundMail) -> Decision | None:
        """A bounce of one of our replies: the reply is marked ``bounced``, the address
        undeliverable, and the bounce left for a human (never answered). None for any
        other mail (also for bounces of mail that is not ours: the robot rule ignores it)."""
        if guard.check(parsed, self.own) is None:
            return None
        found = bounce.read(mail.raw)
        if found is None:
            return None
        reply = self.store.bounced_reply(found.original_ids, found.failed)
        if reply is None or reply["recipient"] not in found.failed:
            return None
        address = reply["recipient"]
        self.store.mark_bounced(reply["id"], address, found.status, now_utc())
        reason = (f"Unzustellbar: {reply['kind']} an {address} kam zurück"
                  f"{f' ({found.status})' if found.status else ''}; keine Erinnerungen mehr")
        reg = self.store.registrations([address]).get(address)
        if reg is not None and reg.status is Status.CONFIRMED and \
                self.store.first_waitlisted() is not None:
            reason += "; bestätigt, und andere warten auf einen Platz"
        log.warning("reply %d to %s bounced (%s)", reply["id"], address, found.status or "-")
        return Decision(Action.REVIEW, reason[:200])

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
        plan = due_reminders(self.store.with_status("confirmed", reachable=True),
                              self.config.reminders,
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
        counts = self.store.erase_all(now)
        log.info("retention period over: personal data of %d registrations erased",
                 sum(counts.values()))
        return counts

    def left_alone(self) -> LeftAlone:
        """The mail a former run left in the IMAP folder (flagged, not ours) — for this
        folder and contact address only: with another address other mail is ours."""
        state = self.store.get_state(self._left_key())
        return LeftAlone.from_text(state[0] if state else None)

    def remember(self, left: LeftAlone | None) -> None:
        if left is None:
            return
        text, key = left.to_text(), self._left_key()
        state = self.store.get_state(key)
        if (state[0] if state else ":") != text:
            self.store.set_state(key, text, now_utc(), limit=None)

    def _left_key(self) -> str:
        imap = self.config.imap
        where = f"{imap.username}@{imap.host}/{imap.folder}" if imap else "maildir"
        return f"left_alone {where} for {self.own}"

    def _new_uid(self) -> str:
        return f"{uuid.uuid4()}@{self.config.contact.domain}"

    def _message_row(self, parsed: ParsedMail, mail: InboundMail, decision: Decision) -> dict:
        for_human = decision.action is Action.REVIEW or decision.attention
        return {"message_id": parsed.key, "sender": parsed.sender, "subject": parsed.subject,
                "received_at": iso(mail.received_at), "action": decision.action.value,
                "reason": decision.reason or None, "needs_attention": int(decision.attention),
                "excerpt": excerpt(parsed.text) if for_human else None}

    def _unreadable(self, mail: InboundMail, exc: Exception) -> str:
        key = content_key(mail.raw or b"")
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
        self.store.check_file()
        self.remember_details()
        error_before = self.store.get_state("last_error")
        self.fill_places()
        self.flush(summary, stop)  # replies left queued by an earlier run go first
        for batch in inbox.batches():
            heartbeat()
            self.store.check_file()  # deleted or replaced: stop before anything is moved
            to_move, to_flag, to_leave = [], [], []
            self._record_batch(batch, summary, stop, to_move, to_flag, to_leave)
            self.flush(summary, stop)
            self.store.check_file()
            inbox.done(to_move)
            inbox.flag(to_flag)
            inbox.leave(to_leave)
            progress(summary)
            if stop is not None and stop.is_set():
                return summary
        reminders = self.remind()
        if reminders:
            summary.replies[ReplyKind.REMINDER.value] += reminders
            self.flush(summary, stop)
        if self.config.digest.to and queue_digest(self, now_utc()):
            self.flush(summary, stop)
        self.purge_if_due(now_utc())
        self.store.set_state("last_poll", inbox.description, now_utc())
        self.deliver_alerts(inbox)
        self.save_copies(inbox)
        if not summary.send_errors and error_before is not None and \
                self.store.get_state("last_error") == error_before:  # `status`: it is old
            self.store.set_state("last_clean_poll", error_before[1], now_utc())
        return summary

    def save_copies(self, inbox: Inbox) -> None:
        """Each sent reply once into the Sent folder ([imap] save_sent). Done after the
        sending, so a failed APPEND never holds up or repeats a reply; tried again next
        round; a reply marked ``saving`` by a crash is looked for there first."""
        if self.config.imap is None or not self.config.imap.save_sent:
            return
        now = now_utc()
        for row in self.store.copies_to_save(now - dt.timedelta(days=7)):
            sent_at = dt.datetime.fromisoformat(row["sent_at"])
            raw = restamp(row["body"], sent_at, self.config.event.tz)
            check = row["sent_copy"] == "saving"
            self.store.mark_copy(row["id"], "saving")
            try:
                inbox.save_sent(raw, row["message_id"], check)
            except InboxError as exc:
                if not self.copy_failing:  # one line per change of state
                    log.warning("%s; tried again each round", exc)
                self.copy_failing = True
                return
            self.store.mark_copy(row["id"], "saved")
            self.copy_failing = False

    def login_refused(self, part: str, error: str) -> None:
        """A server refused the login: kept for `status`, the organiser is told once (by
        SMTP when IMAP refuses; into the inbox when SMTP refuses: deliver_alerts)."""
        if health.note_refusal(self.store, self.config, part, error, now_utc()) and \
                part == "imap":
            self.flush(Summary())

    def deliver_alerts(self, inbox: Inbox) -> None:
        """When SMTP refuses mailbot: the organiser's alert into the inbox, once."""
        found = health.inbox_alert(self.store, self.config, now_utc())
        if found is not None:  # appended first: a crash in between repeats it, never loses it
            since, reply, row = found
            inbox.append_alert(reply.body)
            health.given(self.store, self.config, "smtp", since, reply, row, now_utc())

    def _record_batch(self, batch: list[InboundMail], summary: Summary,
                      stop: threading.Event | None, to_move: list, to_flag: list,
                      to_leave: list) -> None:
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
                    else:
                        to_leave.append(mail.ref)
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

    def flush(self, summary: Summary, stop: threading.Event | None = None) -> None:
        """Send every reply that is due; a temporary failure is retried later (backoff in
        ``next_attempt_at``), a permanent one (5xx) becomes ``failed``. After ``stop`` no
        reply is started. A reply an earlier process was sending when it ended counts as
        an attempt (it may have killed that process: it must not loop forever)."""
        if stop is not None and stop.is_set():
            return
        interrupted = self.store.count_interrupted(
            now_utc(), lambda attempts: after_failure(attempts, INTERRUPTED, False))
        if interrupted:
            log.warning("%d replies were on their way when mailbot last ended: sent again",
                        interrupted)
        rows = self.store.pending_replies(now_utc())
        if not rows:
            return
        now, tz = now_utc(), self.config.event.tz
        chosen = [] if self._paused(now) else rate.choose(rows, self.sending_budget(now))
        summary.held += len(rows) - len(chosen)
        if not chosen:
            return
        items = [Outgoing(r["id"], r["recipient"], r["kind"], restamp(r["body"], now, tz))
                 for r in chosen]
        sink = _Recorder(self.store, summary)
        try:
            self.transport.send(items, sink, stop)
        except TransportError as exc:
            summary.not_sent(i.id for i in items if i.id not in sink.finished_ids)
            if isinstance(exc, TransportLoginError):
                self.login_refused("smtp", str(exc))
            self.store.set_state("last_error", str(exc), now_utc())
            if not self.smtp_failing:  # one line per change of state, not per attempt
                log.error("%s; %d replies stay queued and are sent when it is back", exc,
                          len(items) - sink.done)
            self.smtp_failing = True
            return
        finally:
            self._note_throttle(sink.throttled, now)
        if self.smtp_failing:
            log.info("%s reachable again", self.transport.description)
        self.smtp_failing = False
        health.working(self.store, "smtp", now_utc())


    def sending_budget(self, now: dt.datetime) -> int | None:
        """How many replies the sending limits let go now; None without limits."""
        smtp = self.config.smtp
        limits = {"minute": smtp.max_per_minute, "hour": smtp.max_per_hour,
                  "day": smtp.max_per_day}
        if all(v is None for v in limits.values()):
            return None
        sent = self.store.sent_since(now - dt.timedelta(seconds=rate.WINDOWS["day"] + 2))
        return rate.allowed(sent, now, limits)

    def _paused(self, now: dt.datetime) -> bool:
        until = self.store.get_state("send_paused_until")
        return bool(until and until[0] and dt.datetime.fromisoformat(until[0]) > now)

    def _note_throttle(self, throttled: int, now: dt.datetime) -> None:
        """After "slow down" answers, all sending pauses (doubling, with jitter)."""
        before = self.store.get_state("send_throttled")
        times = int(before[0]) if before and before[0] else 0
        if not throttled:
            if times:
                self.store.set_state("send_throttled", "0", now)
            return
        times += 1
        until = now + rate.pause(times)
        self.store.set_state("send_throttled", str(times), now)
        self.store.set_state("send_paused_until", iso(until) or "", now)
        log.warning("the SMTP server asks to slow down: sending pauses until %s",
                    until.astimezone(self.config.event.tz).strftime("%H:%M:%S"))


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
        self.throttled = 0  # "slow down" answers (421, 450, 4.7.x)

    def starting(self, reply_id: int) -> None:
        self.store.mark_sending(reply_id)

    def released(self, reply_id: int) -> None:
        self.store.release(reply_id)

    def finished(self, reply_id: int, error: str | None, permanent: bool) -> None:
        self.done += 1
        self.finished_ids.add(reply_id)
        alive()  # a long batch of replies is work, not a hang
        if error is None:
            self._mark_sent(reply_id)
            self.summary.sent += 1
            return
        log.warning("reply %d not sent: %s", reply_id, error)
        throttle = rate.is_throttle(error)
        self.throttled += throttle
        permanent = permanent and not throttle
        retry_after = rate.pause(self.throttled) if throttle else None
        self.store.mark_attempt_failed(
            reply_id, now_utc(),
            lambda attempts: after_failure(attempts, error, permanent, retry_after))
        if permanent:
            self.summary.refused += 1
        else:
            self.summary.not_sent([reply_id])

    def _mark_sent(self, reply_id: int) -> None:
        """The server has it: the mark is retried until the database takes it (locked by
        another program, a full disk), with the watchdog alive, even after a stop. Giving
        up would send it again at the next run."""
        for attempt in itertools.count():
            try:
                self.store.mark_sent(reply_id, now_utc())
                if attempt:
                    log.info("reply %d marked sent after all", reply_id)
                return
            except sqlite3.OperationalError as exc:
                if attempt == 0:
                    log.error("reply %d was sent but %s; trying again until it can be marked",
                              reply_id, explain(exc, self.store.path))
                alive()
                time.sleep(1.0)


def _open_inbox(config: Config) -> Inbox:
    return open_inbox(config.imap, config.maildir, config.daemon.batch_size,
                      config.limits.max_message_bytes, config.daemon.idle)


def _open_inbox_noting(config: Config, processor: Processor) -> Inbox:
    """The inbox; a refused login is noted for `status` and the organiser."""
    try:
        inbox = _open_inbox(config)
    except InboxError as exc:
        processor.store.set_state("last_error", str(exc), now_utc())
        if isinstance(exc, InboxLoginError):
            processor.login_refused("imap", str(exc))
        raise
    health.working(processor.store, "imap", now_utc())
    return inbox


def run_once(config: Config, stop: threading.Event | None = None,
             progress: Callable[[Summary], None] = lambda _: None) -> Summary:
    """Handle all waiting mail once, then close everything (``run --once``, cron).
    Raises AlreadyRunning when another mailbot works on the same database."""
    with exclusive(config.database):
        store = Store(config.database)
        try:
            processor = Processor(config, store,
                                  open_transport(config.smtp, config.contact.address))
            inbox = _open_inbox_noting(config, processor)
            inbox.left = processor.left_alone()
            try:
                summary = processor.run_once(inbox, stop, progress=progress)
                processor.remember(inbox.left)
                return summary
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


class Control:
    """What signals ask of the service: to stop (SIGTERM, SIGINT) or to read its
    configuration again (SIGHUP, ``systemctl reload``). Both wake the loop through
    ``stop``; a reload happens between two rounds, like a restart without the gap."""

    def __init__(self, stop: threading.Event, load: Callable[[], Config]):
        self.stop, self.load = stop, load
        self.ending, self.asked = threading.Event(), threading.Event()

    def terminate(self) -> None:
        self.ending.set()
        self.stop.set()

    def hangup(self) -> None:
        self.asked.set()
        self.stop.set()

    def again(self, config: Config) -> Config | None:
        """After the service loop ended: the configuration to go on with, None to stop.
        A configuration with an error is logged and the old one kept."""
        if self.ending.is_set() or not self.asked.is_set():
            return None
        self.asked.clear()
        self.stop.clear()
        if self.ending.is_set():  # SIGTERM came meanwhile
            self.stop.set()
            return None
        notify("RELOADING=1", "STATUS=reloading the configuration")
        try:
            new = self.load()
        except ConfigError as exc:
            log.error("SIGHUP: %s; going on with the configuration as it was", exc)
            return config
        if new.database != config.database:
            log.error("SIGHUP: [database] path changed; going on with %s — restart mailbot "
                      "to use the new database", config.database)
            return config
        log.info("SIGHUP: configuration read again")
        return new


def run_forever(config: Config, stop: threading.Event, control: Control | None = None) -> None:
    """The service: holds the lock, keeps the inbox connection, handles mail as it comes
    (IMAP IDLE, else every ``poll_interval`` s) until ``stop`` is set. A lost connection
    is re-made with backoff; each change of state is logged once. With ``control``, a
    SIGHUP reads the configuration again. Raises StoreError when the database file is
    deleted or replaced meanwhile."""
    with exclusive(config.database):
        store = Store(config.database)
        try:
            log.info("mailbot started for %s", config.contact.address)
            current: Config | None = config
            while current is not None:
                processor = Processor(current, store,
                                      open_transport(current.smtp, current.contact.address))
                store.set_state("running_version", processor.version, now_utc())
                notify("READY=1", "STATUS=starting")
                _serve(current, processor, stop)
                current = control.again(current) if control is not None else None
        finally:
            notify("STOPPING=1")
            store.close()
    log.info("mailbot stopped")


def _serve(config: Config, processor: Processor, stop: threading.Event) -> None:
    backoff = Backoff()
    lost_since: float | None = None
    left = processor.left_alone()  # mail left in the folder is not read again
    while not stop.is_set():
        inbox = None
        try:
            inbox = _open_inbox_noting(config, processor)
            inbox.left = left
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
            log.error("%s; trying again", explain(exc, processor.store.path))
            wait(backoff.next(), stop)
        finally:
            if inbox is not None:
                inbox.close()


def _loop(config: Config, processor: Processor, inbox: Inbox, stop: threading.Event) -> None:
    while not stop.is_set():
        summary = processor.run_once(inbox, stop, alive)
        processor.remember(inbox.left)
        if summary.news:
            log.info("%s", describe(summary))
        notify(f"STATUS=last poll {dt.datetime.now():%H:%M:%S}, {summary.read} mails read")
        alive()
        inbox.wait(config.daemon.poll_interval, stop, alive)


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
    if not summary.read and not summary.sent and not summary.send_errors \
            and not summary.refused and not summary.held:
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
    if summary.held:
        text += (f" {summary.held} held back by the sending limits ([smtp] max_per_…); "
                 f"they go out as the limits allow.")
    if summary.refused:
        text += (f" {summary.refused} refused for good by the receiving server (see "
                 f"`mailbot status`).")
    return text


__all__ = ["ALREADY", "FOREIGN", "WAITING", "Control", "Processor", "ReplyKind", "Summary",
           "describe", "run_once", "run_forever"]
