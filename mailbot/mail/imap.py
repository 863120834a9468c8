"""An IMAP folder as the inbox (imapclient): batches fetched with ``BODY.PEEK[]`` (nothing
changes by reading), handled mail moved to the processed folder, mail for a human flagged
in place; IDLE to wait, APPEND for alerts and copies in the Sent folder."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailbot.config import ImapConfig
from mailbot.core.models import InboundMail
from mailbot.host.notify import command_timeout, cut_on_stop, wait
from mailbot.mail import auth
from mailbot.mail import folder as folders
from mailbot.mail.deskfolders import DeskFolders
from mailbot.mail.folder import (
    Baseline,
    InboxError,
    InboxLoginError,
    chunks,
    erase_our_copies,
    store_in_chunks,
    to_erase,
)
from mailbot.mail.leftalone import LeftAlone
from mailbot.mail.net import connection_problem
from mailbot.reading.keys import split_key
from mailbot.reading.parse import content_key, same_content

log = logging.getLogger(__name__)

SENT_NAMES = ("Sent", "Gesendet", "Gesendete Elemente", "INBOX.Sent", "Sent Items")
IDLE_MAX = 25 * 60  # re-issue IDLE well before the 29 minutes RFC 2177 allows
_HEAD_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM)]"


class ImapInbox:
    """One IMAP folder; connects and logs in on construction."""

    left: LeftAlone | None = None  # set by the service: mail not to download again
    baseline: Baseline | None = None  # set by the service: mail from before its first start
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
            self.prefix, self.separator = folders.personal_namespace(self.client)
            self.processed = folders.folder_name(cfg.processed_folder, self.prefix, self.separator)
            self.desk: DeskFolders | None = None
            if not readonly:
                if folders.ensure_folder(self.client, self.processed):
                    log.info("created IMAP folder %s", self.processed)
                self.desk = DeskFolders(self.client, cfg, self._failing, self.sent_folder,
                                        self.prefix, self.separator)
                for name in self.desk.names.values():  # the organiser's desk (issue 22)
                    if folders.ensure_folder(self.client, name):
                        log.info("created IMAP folder %s", name)
            self.client.select_folder(cfg.folder, readonly=readonly)
        except auth.AuthUnreachable as exc:
            raise InboxError(str(exc)) from None
        except auth.AuthError as exc:
            raise InboxLoginError(str(exc)) from None
        except (OSError, ssl.SSLError, IMAPClientError) as exc:
            raise InboxError(f"{where}: {connection_problem(exc)}") from None
        self.can_move = self.client.has_capability("MOVE")
        self.can_idle = idle and self.client.has_capability("IDLE")

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
        sock = client.socket()
        cut_on_stop(id(self), lambda: sock.shutdown(socket.SHUT_RDWR))  # a mute server
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
            for chunk in chunks(uids, self.batch_size):
                sizes = self.client.fetch(chunk, ["RFC822.SIZE", "INTERNALDATE"])
                chunk = self._after_baseline(chunk, sizes)
                big = [u for u, d in sizes.items() if d.get(b"RFC822.SIZE", 0) > self.max_bytes]
                small = [u for u in chunk if u in sizes and u not in big]
                mails = self._fetch(small, b"BODY[]", "BODY.PEEK[]", sizes, False)
                mails += self._fetch(big, b"BODY[HEADER]", "BODY.PEEK[HEADER]", sizes, True)
                yield sorted(mails, key=lambda m: int(m.ref))

    def _after_baseline(self, chunk: Sequence[int], sizes: dict) -> Sequence[int]:
        """The UIDs of ``chunk`` not from before mailbot's first start (Baseline); the
        others stay in the folder, unrecorded, and are not looked at again."""
        if self.baseline is None:
            return chunk
        validity = self._validity()
        before = [u for u in chunk if u in sizes and b"INTERNALDATE" in sizes[u]
                  and self.baseline.before(_aware(sizes[u][b"INTERNALDATE"]), validity, u)]
        if before and self.left is not None:
            self.left.add(validity, before)
        return [u for u in chunk if u not in before]

    def start_mark(self) -> tuple[int | None, int | None]:
        """(UIDVALIDITY, UIDNEXT) of the folder: where mailbot's first start was."""
        with self._failing():
            status = self.client.folder_status(self.cfg.folder, [b"UIDVALIDITY", b"UIDNEXT"])
        return int(status[b"UIDVALIDITY"]), int(status[b"UIDNEXT"])

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
                self.client.move(uids, self.processed)
            else:
                self.client.copy(uids, self.processed)
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

    def find(self, message_id: str, fingerprint: str | None = None) -> InboundMail | None:
        """The mail with this key (Message-ID, content hash, or Message-ID with a
        fingerprint: another mail under an ID seen before) still in the folder; with a
        ``fingerprint``, the one of these contents."""
        with self._failing():
            if message_id.startswith("sha256:"):
                for batch in self.batches():
                    for mail in batch:
                        if content_key(mail.raw) == message_id:
                            return mail
                return None
            message_id, prefix = split_key(message_id)
            uids = self.client.search(["HEADER", "Message-ID", message_id])
            for uid in uids[:50]:
                data = self.client.fetch([uid], ["BODY.PEEK[]", "INTERNALDATE"]).get(uid, {})
                raw = data.get(b"BODY[]")
                if raw is not None and same_content(raw, prefix or fingerprint):
                    return InboundMail(str(uid), raw, _aware(data[b"INTERNALDATE"]))
            return None

    def unflag(self, refs: Sequence[str]) -> None:
        """Take the flag off (a human settled the mail; the service moves it later)."""
        with self._failing():
            self.client.remove_flags([int(r) for r in refs], [b"\\Flagged"])

    def release(self, ref: str) -> None:
        """A mail a human has settled: unflagged, marked seen, moved to the processed folder."""
        self.unflag([ref])
        self.done([ref])

    def erase(self, keys: set[str], sender: str | None = None) -> int:
        """Delete for good (``\\Deleted`` + ``UID EXPUNGE``, in chunks) the mails in the
        folder and the processed folder whose key is in ``keys`` (mailbot handled them),
        and mailbot's replies (to ``sender``, if given) in Sent; how many (store_in_chunks:
        without UIDPLUS they stay marked deleted for the mail program to expunge)."""
        removed = 0
        with self._failing("deleting mail failed: "):
            for folder in dict.fromkeys((self.cfg.folder, self.processed)):
                if not self.client.folder_exists(folder):
                    continue
                self.client.select_folder(folder)
                removed += store_in_chunks(self.client, self._matching(keys))
            copies = erase_our_copies(self.client, (self.cfg.folder, self.processed),
                                      SENT_NAMES, sender, self.prefix, keys)
            if copies:  # not counted: the caller names the inbox and processed folder
                log.info("%d copies of mailbot's replies deleted from Sent", copies)
            self.client.select_folder(self.cfg.folder)
        return removed

    def _matching(self, keys: set[str]) -> list[int]:
        found, unsure = [], []
        for chunk in chunks(self.client.search(["NOT", "DELETED"]), 500):
            for uid, data in self.client.fetch(chunk, [_HEAD_ITEM]).items():
                head = next((v for k, v in data.items() if k.startswith(b"BODY")), b"")
                verdict = to_erase(head or b"", keys)
                if verdict:
                    found.append(uid)
                elif verdict is None:
                    unsure.append(uid)
        for chunk in chunks(unsure, 50):  # no Message-ID: the key is the hash of the mail
            for uid, data in self.client.fetch(chunk, ["BODY.PEEK[]"]).items():
                if content_key(data.get(b"BODY[]", b"")) in keys:
                    found.append(uid)
        return sorted(found)

    def sent_folder(self) -> str:
        """The folder for copies of sent replies: the one marked ``\\Sent`` (RFC 6154), else
        the first of SENT_NAMES that exists, else a new "Sent" in the server's namespace
        (``INBOX.Sent`` on Courier), marked ``\\Sent`` where the server can."""
        if getattr(self, "_sent", None) is None:
            found = folders.sent_folders(self.client, SENT_NAMES, self.prefix)
            if found:
                self._sent = found[0]
            else:
                name = folders.folder_name("Sent", self.prefix, self.separator)
                folders.ensure_folder(self.client, name, b"\\Sent")
                self._sent = name
        return self._sent

    def check_sent(self) -> str:
        """The Sent folder, after a trial copy (deleted at once); InboxError if it fails."""
        with self._failing("copy to Sent failed: "):
            folder = self.sent_folder()
            folders.probe_append(self.client, folder, self.cfg.folder)
            return folder

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
        cut_on_stop(id(self), None)
        try:
            self.client.logout()
        except (OSError, IMAPClientError):
            pass


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
