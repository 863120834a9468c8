"""systemd's notify protocol (sd_notify), without a dependency: READY, WATCHDOG, STATUS,
RELOADING, STOPPING as datagrams to ``$NOTIFY_SOCKET``. Does nothing when not run by systemd."""

from __future__ import annotations

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
