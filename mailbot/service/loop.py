"""The loop: reads the inbox in batches, hands each mail to the service, moves or flags it;
keeps the connection (IMAP IDLE, backoff), tells systemd (sd_notify, watchdog), obeys
signals. What is done with a mail is processor.py.

Per batch: record every mail (one commit) → send the outbox → move or flag. A crash before
the commit loses nothing: nothing of the batch was sent or moved yet.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable

from mailbot.config import Config, ConfigError
from mailbot.core.models import InboundMail, Summary
from mailbot.host.lock import exclusive
from mailbot.host.notify import STOPPING, alive, notify, stopped, stopping, wait
from mailbot.mail.inbox import Inbox, InboxError, InboxLoginError, open_inbox
from mailbot.mail.smtp import open_transport
from mailbot.replies.compose import ComposeError
from mailbot.replies.report import describe
from mailbot.rules.policy import inbox_verdict
from mailbot.service import health
from mailbot.service.deskround import desk_round
from mailbot.service.processor import Processor
from mailbot.store import Store, explain, now_utc

log = logging.getLogger(__name__)

HOLD = 2.0  # seconds a batch may keep the database locked before it commits in between


def run_round(processor: Processor, inbox: Inbox, stop: threading.Event | None = None,
              heartbeat: Callable[[], None] = lambda: None,
              progress: Callable[[Summary], None] = lambda _: None) -> Summary:
    """Handle every mail waiting in the inbox, send the replies, move the mail."""
    summary = Summary()
    error_before = processor.begin_round(summary, stop)
    desk_round(processor, inbox, summary)  # what the organiser did in her mail program
    for batch in inbox.batches():
        heartbeat()
        processor.store.check_file()  # deleted or replaced: stop before anything is moved
        to_move: list[str] = []
        to_flag: list[str] = []
        to_leave: list[str] = []
        _record_batch(processor, batch, summary, stop, to_move, to_flag, to_leave, heartbeat)
        processor.sending.flush(summary, stop)
        processor.store.check_file()
        heartbeat()  # each IMAP command may take 0.4 x WatchdogSec: a ping before each step
        inbox.done(to_move)
        heartbeat()
        inbox.flag(to_flag)
        heartbeat()
        inbox.leave(to_leave)
        _release_settled(processor, inbox)
        progress(summary)
        if stop is not None and stop.is_set():
            return summary
    processor.end_round(inbox, summary, stop, error_before)
    return summary


def _release_settled(processor: Processor, inbox: Inbox) -> None:
    """The waiting mails a later mail of the batch settled (an address sent later): out of
    the inbox, unflagged, into the processed folder — they wait for nobody now."""
    while processor.settled:
        found = inbox.find(processor.settled.pop(0))
        if found is not None:
            inbox.release(found.ref)


def _record_batch(processor: Processor, batch: list[InboundMail], summary: Summary,
                  stop: threading.Event | None, to_move: list, to_flag: list,
                  to_leave: list, heartbeat: Callable[[], None] = lambda: None) -> None:
    """Handle a batch with one commit: each mail's rows stay together (a savepoint
    each), and a crash before the commit loses nothing — nothing of the batch was sent
    or moved yet, so the next run reads the same mails again. A batch that holds the
    database longer than HOLD seconds (big mails) commits in between, so organisers'
    commands are not kept waiting. A watchdog ping before each mail: a batch of
    hard mails must not look like a hang."""
    waiting = deque(batch)
    while waiting:
        with processor.store.immediate():
            began = time.monotonic()
            while waiting:  # at least one mail per transaction
                if stop is not None and stop.is_set():
                    return
                heartbeat()
                mail = waiting.popleft()
                outcome = processor.handle_safely(mail, summary)
                summary.mails[outcome] += 1
                where = {"flag": to_flag, "move": to_move, "leave": to_leave}
                where[inbox_verdict(outcome)].append(mail.ref)
                if time.monotonic() - began > HOLD:
                    break  # commit; the rest of the batch in the next transaction


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
            processor.sending.login_refused("imap", str(exc))
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
            processor.use_baseline(inbox)
            try:
                summary = run_round(processor, inbox, stop, progress=progress)
                processor.remember(inbox.left)
                return summary
            finally:
                inbox.close()
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
    configuration again (SIGHUP, ``systemctl reload``). Both end a wait through ``wake``;
    only a stop sets ``stop`` (a reply on its way gets 5 s, then is abandoned). A reload
    lets the round in hand finish and happens between two rounds, like a restart without
    the gap."""

    def __init__(self, stop: threading.Event, load: Callable[[], Config]):
        self.stop, self.load = stop, load
        self.ending, self.asked = threading.Event(), threading.Event()
        self.wake = threading.Event()
        STOPPING.clear()  # a new run (tests run many in one process)

    def terminate(self) -> None:
        self.ending.set()
        stopping()  # STOPPING set; a stalled server connection is cut after a grace
        self.stop.set()
        self.wake.set()

    def hangup(self) -> None:
        self.asked.set()
        self.wake.set()

    def again(self, processor: Processor, build: Callable[[Config], Processor]
              ) -> Processor | None:
        """After the service loop ended: the processor to go on with (``build`` makes one
        for a configuration, its templates compiled), None to stop. A configuration or a
        template with an error is logged and the old processor kept."""
        config = processor.config
        if self.ending.is_set() or not self.asked.is_set():
            return None
        self.asked.clear()
        self.wake.clear()
        if self.ending.is_set():  # SIGTERM came meanwhile
            self.wake.set()
            return None
        notify("RELOADING=1", "STATUS=reloading the configuration")
        try:  # the new configuration whole, templates compiled, before the old one goes
            new = self.load()
            if new.database != config.database:
                log.error("SIGHUP: [database] path changed; going on with %s — restart "
                          "mailbot to use the new database", config.database)
                return processor
            fresh = build(new)
        except (ConfigError, ComposeError) as exc:
            log.error("SIGHUP: %s; going on with the configuration as it was", exc)
            return processor
        log.info("SIGHUP: configuration read again")
        return fresh


def _processor(config: Config, store: Store) -> Processor:
    """A processor with every template compiled (ComposeError names a broken one)."""
    processor = Processor(config, store, open_transport(config.smtp, config.contact.address))
    broken = processor.composer.compile()
    if broken:
        raise ComposeError(f"template {broken[0]}")
    return processor


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
            processor: Processor | None = _processor(config, store)
            while processor is not None:
                store.set_state("running_version", processor.version, now_utc())
                processor.jobs.say_retention(now_utc())  # a refused purge is said at once
                notify("READY=1", "STATUS=starting")
                _serve(processor.config, processor, stop, control.wake if control else stop)
                processor = (control.again(processor, lambda c: _processor(c, store))
                             if control is not None else None)
        finally:
            notify("STOPPING=1")
            store.close()
            stopped()  # ended in time: the stop's timers are not needed
    log.info("mailbot stopped")


def _serve(config: Config, processor: Processor, stop: threading.Event,
           wake: threading.Event) -> None:
    """Until ``wake`` is set (a stop or a reload); ``stop`` alone cuts a round short."""
    backoff = Backoff()
    lost_since: float | None = None
    left = processor.left_alone()  # mail left in the folder is not read again
    while not wake.is_set():
        inbox = None
        try:
            inbox = _open_inbox_noting(config, processor)
            inbox.left = left
            processor.use_baseline(inbox)
            if lost_since is not None:
                log.info("%s: connected again after %.0f s", inbox.description,
                         time.monotonic() - lost_since)
            else:
                log.info("%s: connected", inbox.description)
            lost_since = None
            backoff.reset()
            _loop(config, processor, inbox, stop, wake)
        except InboxError as exc:
            processor.store.set_state("last_error", str(exc), now_utc())
            if lost_since is None:
                log.error("%s; trying again with backoff (up to every 5 minutes)", exc)
                lost_since = time.monotonic()
            notify("STATUS=inbox unreachable, retrying")
            wait(backoff.next(), wake)
        except sqlite3.Error as exc:  # e.g. locked by `mailbot forget`: nothing was moved
            log.error("%s; trying again", explain(exc, processor.store.path))
            wait(backoff.next(), wake)
        finally:
            if inbox is not None:
                inbox.close()


def _loop(config: Config, processor: Processor, inbox: Inbox, stop: threading.Event,
          wake: threading.Event) -> None:
    while not wake.is_set():
        summary = run_round(processor, inbox, stop, alive)
        processor.remember(inbox.left)
        if summary.news:
            log.info("%s", describe(summary))
        notify(f"STATUS=last poll {dt.datetime.now():%H:%M:%S}, {summary.read} mails read")
        alive()
        inbox.wait(config.daemon.poll_interval, wake, alive)


__all__ = ["Control", "Summary", "describe", "run_forever", "run_once", "run_round"]
