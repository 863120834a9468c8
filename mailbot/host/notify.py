"""systemd's notify protocol (sd_notify), without a dependency: READY, WATCHDOG, STATUS,
RELOADING, STOPPING as datagrams to ``$NOTIFY_SOCKET``. Does nothing when not run by systemd."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

_last_ping = -1e9  # time.monotonic() of the last WATCHDOG=1
# set when the process is asked to stop (SIGTERM): a long wait for a server (a token
# request) ends early instead of keeping systemd waiting past TimeoutStopSec
STOPPING = threading.Event()
_ping_lock = threading.Lock()
STOP_GRACE = 5.0  # seconds the mail in hand gets after SIGTERM before stalled sockets are cut
STOP_DEADLINE = 20.0  # then the process ends even so: below systemd's TimeoutStopSec (30 s)
_stop_timers: list[threading.Timer] = []
_cut_on_stop: dict[int, Callable[[], None]] = {}  # id → how to cut one open connection


def cut_on_stop(key: int, cut: Callable[[], None] | None) -> None:
    """Register (or, with None, forget) how to cut a server connection at a stop: a
    command a mute server never answers must not keep the process past TimeoutStopSec."""
    if cut is None:
        _cut_on_stop.pop(key, None)
    else:
        _cut_on_stop[key] = cut


def stopping() -> None:
    """SIGTERM: set :data:`STOPPING`; after :data:`STOP_GRACE` seconds cut every server
    connection still registered (the mail in hand had its chance to finish), and should
    the process still hang after :data:`STOP_DEADLINE` (a server that never even greeted),
    end it — as systemd's SIGKILL at TimeoutStopSec would, only sooner and saying why.
    Whatever is cut off is recorded and only moved at the next start, never answered
    twice (the crash soak, bench/crash.py, kills the service at random moments)."""
    STOPPING.set()

    def cut_all() -> None:
        for cut in list(_cut_on_stop.values()):
            try:
                cut()
            except OSError:
                pass

    def give_up() -> None:
        logging.getLogger(__name__).error(
            "a server still does not answer %.0f s after the stop: exiting without it",
            STOP_DEADLINE)
        logging.shutdown()
        os._exit(0)

    for seconds, action in ((STOP_GRACE, cut_all), (STOP_DEADLINE, give_up)):
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        _stop_timers.append(timer)
        timer.start()


def stopped() -> None:
    """The run ended by itself: no connection to cut, nothing to give up on."""
    while _stop_timers:
        _stop_timers.pop().cancel()


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. "READY=1", "STATUS=…"); True when systemd was told."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode("utf-8"))
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """systemd's WatchdogSec in seconds ($WATCHDOG_USEC), None when there is no watchdog."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


def command_timeout(configured: float) -> float:
    """Seconds one IMAP or SMTP command may take: the configured timeout, but below
    WatchdogSec/2, so a stalled server is given up long before systemd's watchdog would
    kill mailbot."""
    interval = watchdog_interval()
    return min(configured, interval * 0.4) if interval else configured


def alive() -> None:
    """Tell the watchdog the process is alive — at most once per WatchdogSec/4 (once a
    second without a known WatchdogSec): callers may call it as often as they like."""
    global _last_ping
    interval = watchdog_interval()
    gap = interval / 4 if interval else 1.0
    with _ping_lock:
        now = time.monotonic()
        if now - _last_ping < gap:
            return
        _last_ping = now
    notify("WATCHDOG=1")


def wait(seconds: float, stop: threading.Event, heartbeat: Callable[[], None] = alive,
         woken: Callable[[], object] = lambda: False) -> None:
    """Sleep up to ``seconds`` (or until ``stop`` is set or ``woken()`` is true), calling
    ``heartbeat`` every second — by default telling the watchdog the process is alive: a
    long backoff must not look like a hang."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and not woken():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(left, 1.0))
        heartbeat()
