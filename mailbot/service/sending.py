"""Sending: the outbox within the sending limits, the organiser's alerts, the copies in
the Sent folder. The Processor holds one (``sending``)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import sqlite3
import threading

from mailbot.config import Config
from mailbot.core.models import Summary
from mailbot.core.text import ADDR_RE
from mailbot.host.notify import alive
from mailbot.mail import sentfile
from mailbot.mail.inbox import Inbox, InboxError
from mailbot.mail.smtp import (
    INTERRUPTED,
    Outgoing,
    Transport,
    TransportError,
    TransportLoginError,
    after_failure,
)
from mailbot.replies.compose import restamp
from mailbot.rules import rate
from mailbot.service import health
from mailbot.store import Store, explain, iso, now_utc

log = logging.getLogger(__name__)

MARK_WAIT = 1.0  # seconds the mark "sent" waits for a database another program holds


class Sending:
    """Sends what the outbox holds, on the Processor's configuration and store."""

    def __init__(self, config: Config, store: Store, transport: Transport | None):
        self.config = config
        self.store = store
        self.transport = transport
        self.smtp_failing = False
        self.copy_failing: bool | None = None  # copies to Sent fail (logged once); None: unknown

    def save_copies(self, inbox: Inbox) -> None:
        """Each sent reply once into the Sent folder ([imap] save_sent). Done after the
        sending, so a failed APPEND never holds up or repeats a reply; tried again next
        round; a reply marked ``saving`` by a crash is looked for there first."""
        if self.config.imap is None or not self.config.imap.save_sent:
            return
        now = now_utc()
        for row in self.store.copies_to_save(now - dt.timedelta(days=7)):
            alive()  # one APPEND may take 0.4 x WatchdogSec: many copies are work, not a hang
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
                health.copy_failing(self.store, str(exc), now)
                return
            self.store.mark_copy(row["id"], "saved")
            if self.copy_failing or self.copy_failing is None:
                health.copy_failing(self.store, None, now)
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

    def flush(self, summary: Summary, stop: threading.Event | None = None) -> None:
        """Send every reply that is due; a temporary failure is retried later (backoff in
        ``next_attempt_at``), a permanent one (5xx) becomes ``failed``. After ``stop`` no
        reply is started. A reply an earlier process was sending when it ended counts as
        an attempt (it may have killed that process: it must not loop forever)."""
        if stop is not None and stop.is_set():
            return
        self.apply_kept_marks()  # before 'sending' rows count as interrupted
        interrupted = self.store.count_interrupted(
            now_utc(), lambda attempts: after_failure(attempts, INTERRUPTED, False))
        if interrupted:
            log.warning("%d replies were on their way when mailbot last ended: sent again",
                        interrupted)
        rows = self.store.pending_replies(now_utc())
        if not rows or self.transport is None:  # no transport (a preview): they stay queued
            return
        now, tz = now_utc(), self.config.event.tz
        chosen = [] if self._paused(now) else rate.choose(rows, self.sending_budget(now))
        summary.held += len(rows) - len(chosen)
        if not chosen:
            return
        items = [Outgoing(r["id"], r["recipient"], r["kind"], restamp(r["body"], now, tz))
                 for r in chosen]
        sink = _Recorder(self.store, summary, items, stop)
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

    def apply_kept_marks(self) -> None:
        """Replies the server took while the database would not record it (sentfile):
        marked sent now — each only if its row is still that reply, on its way — and the
        side file removed. A database that still refuses raises: nothing is sent then."""
        database = self.store.path
        kept = sentfile.read(database) if self.store.identity is not None else []
        if not kept:
            return
        marked = 0
        with self.store.immediate():
            rows = self.store.replies_by_id(k.reply_id for k in kept)
            for k in kept:
                row = rows.get(k.reply_id)
                if row and row["status"] in ("sending", "queued") and row["kind"] == k.kind \
                        and sentfile.recipient_hash(row["recipient"]) == k.recipient_hash:
                    self.store.mark_sent(k.reply_id, k.sent_at)
                    marked += 1
        sentfile.remove(database)
        if marked:
            log.info("%d replies the SMTP server took while the database was locked are "
                     "marked sent now (from %s)", marked, sentfile.side_path(database).name)

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


class _Recorder:
    """Writes each delivery step to the outbox table the moment it happens."""

    def __init__(self, store: Store, summary: Summary, items: list[Outgoing],
                 stop: threading.Event | None = None):
        self.store = store
        self.summary = summary
        self.items = {item.id: item for item in items}
        self.stop = stop or threading.Event()
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
            self._mark_sent(self.items[reply_id])
            self.summary.sent += 1
            return
        log.warning("reply %d not sent: %s", reply_id, ADDR_RE.sub("…", str(error)))
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

    def _mark_sent(self, item: Outgoing) -> None:
        """The server has it: the mark is retried each second until the database takes it
        (locked by another program, a full disk), with the watchdog alive. Meanwhile the
        reply is kept in the side file next to the database (sentfile, applied before the
        next sending), so that a stop, or a kill, does not send it again: after a stop
        mailbot ends at once. Only when that file cannot be written either, a stop sends
        it again at the next start."""
        sent_at, kept = now_utc(), False
        for attempt in itertools.count():
            try:
                with self.store.waiting_at_most(MARK_WAIT):  # a stop is seen each second
                    self.store.mark_sent(item.id, sent_at)
                if attempt:
                    log.info("reply %d marked sent after all", item.id)
                return
            except sqlite3.OperationalError as exc:
                if not kept:
                    kept = self._keep(item, sent_at, explain(exc, self.store.path),
                                      first=attempt == 0)
            if self.stop.is_set():
                if not kept:
                    log.error("reply %d was sent, but neither the database nor %s took the "
                              "mark; stopping: it goes out again at the next start", item.id,
                              sentfile.side_path(self.store.path))
                return
            alive()
            self.stop.wait(1.0)

    def _keep(self, item: Outgoing, sent_at: dt.datetime, problem: str, first: bool) -> bool:
        """The reply into the side file; True when it is on disk."""
        side = sentfile.side_path(self.store.path)
        try:
            sentfile.keep(self.store.path, item.id, item.kind, item.recipient, sent_at)
        except OSError as exc:
            if first:
                log.error("reply %d was sent but %s, and %s cannot be written (%s); trying "
                          "again until the database takes the mark", item.id, problem, side,
                          exc)
            return False
        log.warning("reply %d was sent but %s; kept in %s (never sent twice, also after a "
                    "stop); trying again until the database takes the mark", item.id,
                    problem, side.name)
        return True
