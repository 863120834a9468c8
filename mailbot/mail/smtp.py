"""Where replies go: an SMTP server (aiosmtplib; per batch up to ``[smtp] connections``
side by side), or a folder of ``.eml`` files (``[smtp] dry_run_dir``) for the demo and
for trying a configuration.

A transport sends outbox rows and reports each outcome through a callback right after the
server's answer, so the window between "250 OK" and the database knowing it stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import sqlite3
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from mailbot.config import SmtpConfig
from mailbot.core.i18n import tr as _
from mailbot.core.text import ADDR_RE
from mailbot.host.notify import alive, command_timeout
from mailbot.mail import auth
from mailbot.mail.net import connection_problem
from mailbot.rules.rate import is_throttle, refused_address

log = logging.getLogger(__name__)

PER_CONNECTION = 20  # replies due before another connection is worth opening
GRACE = 5.0  # seconds the reply in hand may still take after a stop (SIGTERM)
MAX_ATTEMPTS = 20  # temporary refusals before a reply is given up (about a day of retries)
INTERRUPTED = "interrupted: mailbot ended while sending it"


def retry_delay(attempts: int) -> dt.timedelta:
    """Backoff after the n-th temporary refusal: 1, 2, 4 … minutes, at most 2 hours."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


def after_failure(attempts: int, error: str, permanent: bool,
                  retry_after: dt.timedelta | None = None) -> tuple[str, dt.timedelta | None]:
    """The retry rule, after the ``attempts``-th failed send: (the error to record, the
    delay before the next attempt — None when the reply is given up). A permanent refusal
    (5xx) is given up at once, a temporary one (4xx, a lost connection) after MAX_ATTEMPTS;
    with ``retry_after`` (the server said "slow down") it waits that long, however often."""
    if permanent:
        return error, None
    if retry_after is not None:
        return error, retry_after
    if attempts >= MAX_ATTEMPTS:
        return f"{error} (given up after {attempts} attempts)", None
    return error, retry_delay(attempts)


@dataclass(frozen=True)
class Outgoing:
    id: int
    recipient: str
    kind: str
    body: bytes


class Sink(Protocol):
    """Told about each reply: just before its SMTP transaction, and with its outcome."""

    def starting(self, reply_id: int) -> None: ...

    def finished(self, reply_id: int, error: str | None, permanent: bool,
                 refused_address: str | None = None) -> None:
        """``refused_address``: the status when the server refused the recipient for
        good at RCPT (the address is then undeliverable, as after a bounce)."""

    def released(self, reply_id: int) -> None:
        """Not sent, and not this reply's fault (the server refused us): queued as before."""


class TransportError(Exception):
    """Raised when the SMTP server cannot be reached or refuses our login; the replies
    stay queued in the outbox and are sent on the next run."""


class TransportLoginError(TransportError):
    """Raised when the SMTP server or the token endpoint refuses the login."""


class Transport(Protocol):
    description: str

    def send(self, items: Sequence[Outgoing], sink: Sink,
             stop: threading.Event | None = None) -> None: ...

    def probe(self) -> str: ...


class DryRunTransport:
    """Writes each reply as ``NNNNN-kind-recipient.eml`` (mode 0600) instead of sending."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.description = f"folder {self.folder}"

    def probe(self) -> str:
        """Check that replies can be written; raises TransportError."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not os.access(self.folder, os.W_OK):
                raise PermissionError("not writable")
        except OSError as exc:
            raise TransportError(f"{self.description}: {exc.strerror or exc}") from None
        return _("replies are written to {folder}/").format(folder=self.folder)

    def send(self, items: Sequence[Outgoing], sink: Sink,
             stop: threading.Event | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for item in items:
            if stop is not None and stop.is_set():
                return
            safe = re.sub(r"[^a-z0-9@._-]", "_", item.recipient.lower())[:80]
            path = self.folder / f"{item.id:05d}-{item.kind}-{safe}.eml"
            sink.starting(item.id)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(item.body)
            sink.finished(item.id, None, False)


class SmtpTransport:
    """Sends each call's replies over up to ``connections`` SMTP connections; 4xx answers
    stay queued, 5xx fail."""

    def __init__(self, cfg: SmtpConfig, envelope_from: str):
        self.cfg = cfg
        self.envelope_from = envelope_from
        self.description = f"SMTP {cfg.host}:{cfg.port}"
        self._context: ssl.SSLContext | None = None

    def probe(self) -> str:
        """Connect and log in, send nothing; raises TransportError."""
        asyncio.run(self._probe())
        login = (_("logged in as {user} with {mechanism}").format(
            user=self.cfg.username, mechanism=auth.mechanism(self.cfg))
            if self.cfg.username else _("no login needed"))
        return f"{self.description}: " + _("connected, {login}").format(login=login)

    async def _probe(self) -> None:
        """Also asks MAIL FROM (then RSET): a server that refuses our sender until STARTTLS
        or a login fails here, not at the first reply."""
        client = await self._connected()
        try:
            response = await client.execute_command(
                b"MAIL", b"FROM:<" + self.envelope_from.encode() + b">")
            if response.code != 250:
                raise TransportError(self._refused_us(aiosmtplib.SMTPSenderRefused(
                    response.code, response.message, self.envelope_from)))
            await client.rset()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransportError(f"{self.description}: {_describe(exc)}") from None
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    def send(self, items: Sequence[Outgoing], sink: Sink,
             stop: threading.Event | None = None) -> None:
        """Send ``items``; after ``stop`` is set no new reply is started, and the ones on
        their way are abandoned after GRACE seconds (their rows stay for the next run)."""
        if items:
            asyncio.run(self._send(items, sink, stop or threading.Event()))

    def _client(self) -> aiosmtplib.SMTP:
        cfg = self.cfg
        if self._context is None and cfg.security != "none":  # loading CAs costs 20 ms
            self._context = ssl.create_default_context(cafile=cfg.ca_file)
        context = self._context
        return aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=command_timeout(cfg.timeout),
            tls_context=context,
            use_tls=cfg.security == "tls",
            start_tls=True if cfg.security == "starttls" else False,
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        """A connection, greeted (EHLO, else HELO) and logged in; raises TransportError."""
        client = self._client()
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            if self.cfg.username:
                await auth.smtp_login(client, self.cfg)
        except auth.AuthError as exc:
            client.close()
            kind = TransportError if isinstance(exc, auth.AuthUnreachable) else \
                TransportLoginError
            raise kind(str(exc)) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise TransportError(f"{self.description}: {_describe(exc)}") from None
        return client

    async def _send(self, items: Sequence[Outgoing], sink: Sink,
                    stop: threading.Event) -> None:
        """Send, telling the watchdog we are alive all the while (connecting included);
        after a stop, what is on its way gets GRACE seconds, then it is abandoned."""
        task = asyncio.ensure_future(self._send_all(items, sink, stop))
        guard = asyncio.create_task(_keep_alive(stop, task))
        try:
            await task
        except asyncio.CancelledError:
            log.warning("stopping: sending abandoned; a reply that was on its way is tried "
                        "again later")
        finally:
            guard.cancel()

    async def _send_all(self, items: Sequence[Outgoing], sink: Sink,
                        stop: threading.Event) -> None:
        """Send over up to ``connections`` connections side by side, each taking the next
        reply when it is free: while the server reads one reply, the next is on its way.
        The first connection must succeed and starts at once; the others join when they
        are up (or not: fewer connections just take longer). Replies to one person go one
        after the other, in order. Every connection finishes the reply it is sending
        before an error ends the batch."""
        first = await self._connected()
        wanted = min(self.cfg.connections, 1 + (len(items) - 1) // PER_CONNECTION)
        line = _Line(items)
        errors: list[BaseException] = []

        async def work(client: aiosmtplib.SMTP) -> None:
            try:
                while not errors and not stop.is_set() and (item := line.take()) is not None:
                    try:
                        connected = await self._send_one(client, item, sink)
                    finally:
                        line.done(item)
                    if not connected:
                        break  # this connection is gone; the others go on
            except asyncio.CancelledError:
                client.close()  # abandoned after a stop: no polite QUIT to wait for
                raise
            except Exception as exc:  # noqa: BLE001 - raised below, after the others stop
                errors.append(exc)
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

        async def join() -> None:
            try:
                client = await self._connected()
            except TransportError as exc:
                log.debug("%s; sending over fewer connections", exc)
                return
            await work(client)

        await asyncio.gather(work(first), *(join() for _ in range(wanted - 1)))
        if errors:
            raise errors[0]

    async def _send_one(self, client: aiosmtplib.SMTP, item: Outgoing, sink: Sink) -> bool:
        """Send one reply; False when the connection is gone and the rest must wait. An
        answer about us (MAIL FROM refused, 421 anywhere) leaves the reply as it was and
        ends the round; only an answer about this reply (RCPT, DATA) counts as its attempt."""
        sink.starting(item.id)
        try:
            await self._transaction(client, item)
        except asyncio.CancelledError:
            # a locked database must not turn the stop into an error: the row then stays
            # `sending`, which the next start counts as an attempt (count_interrupted)
            with contextlib.suppress(sqlite3.Error):
                sink.finished(item.id, "abandoned: mailbot was stopped while sending it", False)
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if isinstance(exc, aiosmtplib.SMTPSenderRefused) or exc.code == 421:
                sink.released(item.id)
                raise TransportError(self._refused_us(exc)) from None
            refused = (refused_address(exc.code, exc.message)
                       if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else None)
            sink.finished(item.id, _describe(exc), exc.code >= 500, refused)  # this reply
        except (aiosmtplib.SMTPException, OSError) as exc:
            sink.finished(item.id, _describe(exc), False)
            return False
        else:
            sink.finished(item.id, None, False)
        return True

    def _refused_us(self, exc: aiosmtplib.SMTPResponseException) -> str:
        """One line about a refusal of our sender or session, with what to check."""
        what = f"{self.description}: {_describe(exc)}"
        if exc.code < 500 or is_throttle(_describe(exc)):  # "not now", also a used-up quota
            return f"{what} (the server is busy or limits us: replies stay queued)"
        if exc.code in (530, 535, 534, 538):
            return (f"{what} (the server wants a login or a secure connection first: check "
                    f"[smtp] security, username and password)")
        return (f"{what} (sender {self.envelope_from} refused: check that this login may "
                f"send as [contact] address)")

    async def _transaction(self, client: aiosmtplib.SMTP, item: Outgoing) -> None:
        """MAIL, RCPT and DATA for one reply: what ``sendmail`` does, without its two
        address parses per command and its extra pass over the body (a third of the
        client's time per reply). Our addresses were validated when they were stored
        (plain ASCII ``local@domain``, checked again here), our bodies have CRLF line ends.
        After a refusal the envelope is reset, as ``sendmail`` does."""
        if not ADDR_RE.fullmatch(item.recipient):  # it would become part of a command
            raise aiosmtplib.SMTPRecipientRefused(553, "not a plain e-mail address",
                                                  item.recipient)
        size = [f"SIZE={len(item.body)}".encode()] if client.supports_extension("size") else []
        try:
            response = await client.execute_command(
                b"MAIL", b"FROM:<" + self.envelope_from.encode() + b">", *size)
            if response.code == 552 and size:  # this reply is too big, not our sender
                raise aiosmtplib.SMTPResponseException(response.code, response.message)
            if response.code != 250:
                raise aiosmtplib.SMTPSenderRefused(response.code, response.message,
                                                   self.envelope_from)
            response = await client.execute_command(
                b"RCPT", b"TO:<" + item.recipient.encode() + b">")
            if response.code not in (250, 251):
                raise aiosmtplib.SMTPRecipientRefused(response.code, response.message,
                                                      item.recipient)
            await client.data(item.body)
        except aiosmtplib.SMTPResponseException:
            try:
                await client.rset()
            except (aiosmtplib.SMTPException, OSError):
                pass  # the connection is gone: the next reply will find out
            raise


class _Line:
    """The replies of one send, in order, for several connections: each takes the next
    reply whose recipient has none on the way (so one person's replies keep their order).
    When only such replies are left, the connection stops; the one sending to that person
    takes them when it is done."""

    def __init__(self, items: Sequence[Outgoing]):
        self.waiting = list(items)
        self.busy: set[str] = set()

    def take(self) -> Outgoing | None:
        for i, item in enumerate(self.waiting):
            if item.recipient not in self.busy:
                self.busy.add(item.recipient)
                return self.waiting.pop(i)
        return None

    def done(self, item: Outgoing) -> None:
        self.busy.discard(item.recipient)


async def _keep_alive(stop: threading.Event, work: asyncio.Future) -> None:
    """While replies are on their way: tell the watchdog we are alive (a slow server is
    work, not a hang — each command has its own timeout), and after a stop give the
    reply in hand GRACE seconds, then abandon it."""
    stopped_at = None
    loop = asyncio.get_running_loop()
    while not work.done():
        alive()
        if stop.is_set():
            stopped_at = stopped_at or loop.time()
            if loop.time() - stopped_at > GRACE:
                work.cancel()
                return
        await asyncio.sleep(0.2)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    return connection_problem(exc)


def open_transport(cfg: SmtpConfig, envelope_from: str) -> DryRunTransport | SmtpTransport:
    if cfg.dry_run_dir is not None:
        return DryRunTransport(cfg.dry_run_dir)
    return SmtpTransport(cfg, envelope_from)
