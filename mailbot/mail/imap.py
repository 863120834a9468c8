"""An IMAP folder as the inbox (imapclient): batches fetched with ``BODY.PEEK[]`` (nothing
changes by reading), handled mail moved to the processed folder, mail for a human flagged
in place; IDLE to wait, APPEND for alerts and copies in the Sent folder."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailbot.config import ImapConfig
from mailbot.core.models import InboundMail
from mailbot.host.notify import command_timeout, wait
from mailbot.mail import auth
from mailbot.mail.deskfolders import DeskFolders
from mailbot.mail.folder import InboxError, InboxLoginError, erase_our_copies, to_erase
from mailbot.mail.net import connection_problem
from mailbot.reading.parse import content_key

log = logging.getLogger(__name__)

SENT_NAMES = ("Sent", "Gesendet", "Gesendete Elemente", "INBOX.Sent", "Sent Items")
IDLE_MAX = 25 * 60  # re-issue IDLE well before the 29 minutes RFC 2177 allows
_HEAD_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM)]"


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class LeftAlone:
    """(UIDVALIDITY, UID) of the mails left in the folder on purpose — not ours, or flagged
    for a human — so that a poll downloads only new mail. A flagged one is read again once
    its flag is gone (a human settled it: the service moves it). Kept by the service across
    reconnects; a new UIDVALIDITY (the folder was rebuilt) forgets them all."""

    def __init__(self) -> None:
        self.validity: int | None = None
        self.foreign: set[int] = set()
        self.flagged: set[int] = set()

    def _same(self, validity: int) -> None:
        if validity != self.validity:
            self.validity, self.foreign, self.flagged = validity, set(), set()

    def current(self, validity: int, present: Sequence[int],
                flagged_now: Callable[[], set[int]]) -> set[int]:
        """The UIDs not to read: remembered, still in the folder, and — for mail that
        waits for a human — still flagged (``flagged_now`` is only asked when needed)."""
        self._same(validity)
        self.foreign &= set(present)
        self.flagged &= set(present)
        if self.flagged:
            self.flagged &= flagged_now()
        return self.foreign | self.flagged

    def add(self, validity: int, uids: Iterable[int], flagged: bool = False) -> None:
        self._same(validity)
        (self.flagged if flagged else self.foreign).update(uids)

    def to_text(self) -> str:
        """``validity:1-40,45;46`` (not ours; flagged) — short also for 20,000 mails."""
        return f"{self.validity or ''}:{_ranges(self.foreign)};{_ranges(self.flagged)}"

    @classmethod
    def from_text(cls, text: str | None) -> LeftAlone:
        left = cls()
        validity, _, rest = (text or "").partition(":")
        if validity.isdigit():
            foreign, _, flagged = rest.partition(";")
            left.validity = int(validity)
            left.foreign, left.flagged = _uids(foreign), _uids(flagged)
        return left


def _ranges(uids: set[int]) -> str:
    parts: list[list[int]] = []
    for uid in sorted(uids):
        if parts and uid == parts[-1][1] + 1:
            parts[-1][1] = uid
        else:
            parts.append([uid, uid])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in parts)


def _uids(text: str) -> set[int]:
    found: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


class ImapInbox:
    """One IMAP folder; connects and logs in on construction."""

    left: LeftAlone | None = None  # set by the service: mail not to download again
    _seen_upto: int | None = None  # the highest UID the last SEARCH found
    _uidvalidity: int | None = None

    def __init__(self, cfg: ImapConfig, batch_size: int = 100, max_bytes: int = 25_000_000,
                 idle: bool = True, readonly: bool = False):
        self.cfg = cfg
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        where = f"IMAP {cfg.host}:{cfg.port}"
        self.description = f"{where}/{cfg.folder}"
        try:
            self.client = self._connect()
            auth.imap_login(self.client, cfg)
            self.desk: DeskFolders | None = None
            if not readonly:
                self._ensure_folder(cfg.processed_folder)
                self.desk = DeskFolders(self.client, cfg, self._failing, self.sent_folder)
                for name in self.desk.names.values():  # the organiser's desk (issue 22)
                    self._ensure_folder(name)
            self.client.select_folder(cfg.folder, readonly=readonly)
        except auth.AuthUnreachable as exc:
            raise InboxError(str(exc)) from None
        except auth.AuthError as exc:
            raise InboxLoginError(str(exc)) from None
        except (OSError, ssl.SSLError, IMAPClientError) as exc:
            raise InboxError(f"{where}: {connection_problem(exc)}") from None
        self.can_move = self.client.has_capability("MOVE")
        self.can_idle = idle and self.client.has_capability("IDLE")

    def _ensure_folder(self, name: str) -> None:
        if not self.client.folder_exists(name):
            self.client.create_folder(name)
            log.info("created IMAP folder %s", name)

    def wait(self, timeout: float, stop: threading.Event,
             heartbeat: Callable[[], None]) -> None:
        """Until new mail arrives (IMAP IDLE, where the server offers it), ``timeout``
        seconds pass or ``stop`` is set; ``heartbeat`` is called about once a second.
        Mail that came after the last look (its EXISTS may have been answered to another
        command) ends the wait at once; a connection the server closed raises InboxError
        at once (the caller reconnects with backoff) instead of ending IDLE over and over."""
        if not self.can_idle:
            wait(timeout, stop, heartbeat)
            return
        deadline = time.monotonic() + min(timeout, IDLE_MAX)
        with self._failing():
            if self._arrived():
                return
            self.client.idle()
            closed = False
            try:
                closed = self._idle(deadline, stop, heartbeat)
            finally:
                if not closed:
                    self.client.idle_done()
        if closed:
            raise InboxError(f"{self.description}: connection closed by the server")

    def _idle(self, deadline: float, stop: threading.Event,
              heartbeat: Callable[[], None]) -> bool:
        """Wait in IDLE; True when the server closed the connection. On a closed socket
        idle_check() returns nothing at once, again and again: three empty answers in a
        row that came back early (a live connection waits the full second) mean closed."""
        early = 0
        while not stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            responses = self.client.idle_check(timeout=1)
            if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                return False
            if any(r and r[0] == b"BYE" for r in responses):
                return True
            early = early + 1 if not responses and time.monotonic() - began < 0.5 else 0
            if early >= 3:
                return True
            heartbeat()
        return False

    def _arrived(self) -> bool:
        """Whether mail came after the last SEARCH (one more look before IDLE starts)."""
        if self._seen_upto is None:
            return False
        uids = self.client.search(["UID", f"{self._seen_upto + 1}:*"])
        return any(u > self._seen_upto for u in uids)

    @contextmanager
    def _failing(self, what: str = "") -> Iterator[None]:
        """A lost connection or an IMAP error inside, as one InboxError line naming the
        inbox (and ``what`` failed)."""
        try:
            yield
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: {what}{connection_problem(exc)}") from None

    def _connect(self) -> IMAPClient:
        cfg = self.cfg
        context = ssl.create_default_context(cafile=cfg.ca_file)
        client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.security == "tls",
                            ssl_context=context, timeout=command_timeout(cfg.timeout))
        client.normalise_times = False  # INTERNALDATE as an aware datetime
        if cfg.security == "starttls":
            client.starttls(context)
        return client

    def batches(self) -> Iterator[list[InboundMail]]:
        """The folder's mail in batches. Sizes come first (RFC822.SIZE): mail over the
        limit is fetched as headers only and handed on with ``oversize`` set."""
        with self._failing():
            uids = sorted(self.client.search(["NOT", "DELETED"]))
            self._seen_upto = max(uids, default=self._seen_upto or 0)
            if self.left is not None:  # flagged or not ours: read once, not on every poll
                skip = self.left.current(self._validity(), uids, lambda: set(
                    self.client.search(["FLAGGED", "NOT", "DELETED"])))
                uids = [u for u in uids if u not in skip]
            for chunk in _chunks(uids, self.batch_size):
                sizes = self.client.fetch(chunk, ["RFC822.SIZE"])
                big = [u for u, d in sizes.items() if d.get(b"RFC822.SIZE", 0) > self.max_bytes]
                small = [u for u in chunk if u in sizes and u not in big]
                mails = self._fetch(small, b"BODY[]", "BODY.PEEK[]", sizes, False)
                mails += self._fetch(big, b"BODY[HEADER]", "BODY.PEEK[HEADER]", sizes, True)
                yield sorted(mails, key=lambda m: int(m.ref))

    def _fetch(self, uids: Sequence[int], key: bytes, item: str, sizes: dict,
               oversize: bool) -> list[InboundMail]:
        if not uids:
            return []
        response = self.client.fetch(uids, [item, "INTERNALDATE"])
        mails = []
        for uid in uids:
            data = response.get(uid, {})
            if data.get(key) is None or b"INTERNALDATE" not in data:  # BODY[] NIL
                log.info("mail UID %s is gone from %s (deleted meanwhile): skipped", uid,
                         self.description)
                continue
            mails.append(InboundMail(
                ref=str(uid), raw=data[key], received_at=_aware(data[b"INTERNALDATE"]),
                oversize=sizes[uid][b"RFC822.SIZE"] if oversize else None))
        return mails

    def _validity(self) -> int:
        if self._uidvalidity is None:
            status = self.client.folder_status(self.cfg.folder, [b"UIDVALIDITY"])
            self._uidvalidity = int(status[b"UIDVALIDITY"])
        return self._uidvalidity

    def leave(self, refs: Sequence[str], flagged: bool = False) -> None:
        """Mail that stays in the folder (not ours; or flagged, for a human): not read
        again while it is there (and, if flagged, while it keeps its flag)."""
        if self.left is None or not refs:
            return
        with self._failing():
            self.left.add(self._validity(), (int(r) for r in refs), flagged)

    def done(self, refs: Sequence[str]) -> None:
        if not refs:
            return
        uids = [int(r) for r in refs]
        with self._failing("moving mail failed: "):
            self.client.add_flags(uids, [b"\\Seen"])
            if self.can_move:
                self.client.move(uids, self.cfg.processed_folder)
            else:
                self.client.copy(uids, self.cfg.processed_folder)
                self.client.delete_messages(uids)
                if self.client.has_capability("UIDPLUS"):
                    self.client.uid_expunge(uids)
                # without UIDPLUS an EXPUNGE would remove every \Deleted mail of the shared
                # inbox, not only ours: ours stay marked deleted until the mail program
                # expunges them

    def flag(self, refs: Sequence[str]) -> None:
        if not refs:
            return
        uids = [int(r) for r in refs]
        with self._failing("flagging mail failed: "):
            self.client.add_flags(uids, [b"\\Flagged"])
        self.leave(refs, flagged=True)  # waits for a human: not read again while flagged

    def find(self, message_id: str) -> InboundMail | None:
        """The mail with this Message-ID (or content hash key) still in the folder."""
        with self._failing():
            if message_id.startswith("sha256:"):
                for batch in self.batches():
                    for mail in batch:
                        if content_key(mail.raw) == message_id:
                            return mail
                return None
            uids = self.client.search(["HEADER", "Message-ID", message_id])
            if not uids:
                return None
            data = self.client.fetch(uids[:1], ["BODY.PEEK[]", "INTERNALDATE"]).get(uids[0], {})
            if data.get(b"BODY[]") is None:  # deleted meanwhile
                return None
            return InboundMail(str(uids[0]), data[b"BODY[]"],
                               _aware(data[b"INTERNALDATE"]))

    def unflag(self, refs: Sequence[str]) -> None:
        """Take the flag off (a human settled the mail; the service moves it later)."""
        with self._failing():
            self.client.remove_flags([int(r) for r in refs], [b"\\Flagged"])

    def release(self, ref: str) -> None:
        """A mail a human has settled: unflagged, marked seen, moved to the processed folder."""
        self.unflag([ref])
        self.done([ref])

    def erase(self, keys: set[str], sender: str | None = None) -> int:
        """Delete for good (``\\Deleted`` + ``UID EXPUNGE``) the mails in the folder and the
        processed folder whose key is in ``keys`` or whose From is ``sender``; how many.
        Without UIDPLUS they stay marked deleted for the mail program to expunge (a plain
        EXPUNGE would take every deleted mail of a shared inbox)."""
        removed = 0
        with self._failing("deleting mail failed: "):
            for folder in dict.fromkeys((self.cfg.folder, self.cfg.processed_folder)):
                if not self.client.folder_exists(folder):
                    continue
                self.client.select_folder(folder)
                uids = self._matching(keys, sender)
                if uids:
                    self.client.add_flags(uids, [b"\\Deleted"])
                    if self.client.has_capability("UIDPLUS"):
                        self.client.uid_expunge(uids)
                    removed += len(uids)
            copies = erase_our_copies(self.client, (self.cfg.folder, self.cfg.processed_folder),
                                      SENT_NAMES, sender)  # not counted: the caller names
            if copies:  # the inbox and processed folder (cli.py could add "and Sent")
                log.info("%d copies of mailbot's replies deleted from Sent", copies)
            self.client.select_folder(self.cfg.folder)
        return removed

    def _matching(self, keys: set[str], sender: str | None) -> list[int]:
        found, unsure = [], []
        for chunk in _chunks(self.client.search(["NOT", "DELETED"]), 500):
            for uid, data in self.client.fetch(chunk, [_HEAD_ITEM]).items():
                head = next((v for k, v in data.items() if k.startswith(b"BODY")), b"")
                verdict = to_erase(head or b"", keys, sender)
                if verdict:
                    found.append(uid)
                elif verdict is None:
                    unsure.append(uid)
        for chunk in _chunks(unsure, 50):  # no Message-ID: the key is the hash of the mail
            for uid, data in self.client.fetch(chunk, ["BODY.PEEK[]"]).items():
                if content_key(data.get(b"BODY[]", b"")) in keys:
                    found.append(uid)
        return sorted(found)

    def sent_folder(self) -> str:
        """The folder for copies of sent replies: the one marked ``\\Sent`` (RFC 6154), else
        the first of SENT_NAMES that exists, else a new "Sent"."""
        if getattr(self, "_sent", None) is None:
            folders = self.client.list_folders()
            marked = [name for flags, _, name in folders if b"\\Sent" in flags]
            names = {name for _, _, name in folders}
            self._sent = (marked or [n for n in SENT_NAMES if n in names] or [None])[0]
            if self._sent is None:
                self.client.create_folder("Sent")
                self._sent = "Sent"
        return self._sent

    def save_sent(self, raw: bytes, message_id: str | None, check: bool) -> None:
        """A copy of a sent reply in the Sent folder, marked seen; with ``check``, only if
        no mail with its Message-ID is there yet (a crash may have come after the APPEND)."""
        with self._failing("copy to Sent failed: "):
            folder = self.sent_folder()
            if check and message_id:
                self.client.select_folder(folder, readonly=True)
                try:
                    if self.client.search(["HEADER", "Message-ID", message_id]):
                        return
                finally:
                    self.client.select_folder(self.cfg.folder)
            self.client.append(folder, raw, flags=[b"\\Seen"])

    def append_alert(self, raw: bytes) -> None:
        """Put a mail for the organiser into the folder, flagged (health.py)."""
        with self._failing():
            self.client.append(self.cfg.folder, raw, flags=[b"\\Flagged"])

    def close(self) -> None:
        try:
            self.client.logout()
        except (OSError, IMAPClientError):
            pass


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
