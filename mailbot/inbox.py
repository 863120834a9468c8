"""Where mail comes from: an IMAP folder (imapclient) or a local Maildir (for the demo).

Both offer the same three verbs: ``batches()`` yields the folder's mail in batches without
changing anything (IMAP ``BODY.PEEK[]``), ``done(refs)`` moves handled mail to the processed
folder (marked seen), ``flag(refs)`` leaves mail for a human: flagged, in place, its
seen-flag untouched (BODY.PEEK never sets it; a mail the organiser already read stays read).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from .config import ImapConfig, MaildirConfig
from .models import InboundMail
from .net import connection_problem
from .notify import wait
from .parse import content_key, parse_mail

log = logging.getLogger(__name__)


class InboxError(Exception):
    """Raised when the inbox cannot be reached or refuses us (connection, TLS, login,
    missing folder). The message is one line, without the password."""


IDLE_MAX = 25 * 60  # re-issue IDLE well before the 29 minutes RFC 2177 allows


class Inbox(Protocol):
    def batches(self) -> Iterator[list[InboundMail]]: ...
    def done(self, refs: Sequence[str]) -> None: ...
    def flag(self, refs: Sequence[str]) -> None: ...
    def leave(self, refs: Sequence[str]) -> None: ...
    def find(self, message_id: str) -> InboundMail | None: ...
    def release(self, ref: str) -> None: ...
    def wait(self, timeout: float, stop: threading.Event,
             heartbeat: Callable[[], None]) -> None: ...
    def close(self) -> None: ...
    @property
    def description(self) -> str: ...


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class LeftAlone:
    """(UIDVALIDITY, UID) of the mails left in the folder on purpose — flagged for a human,
    or not ours — so that a poll downloads only new mail. Kept by the service across
    reconnects; a new UIDVALIDITY (the folder was rebuilt) forgets them all."""

    def __init__(self) -> None:
        self.validity: int | None = None
        self.uids: set[int] = set()

    def current(self, validity: int, present: Sequence[int]) -> set[int]:
        """The remembered UIDs still in the folder (the others are forgotten)."""
        if validity != self.validity:
            self.validity, self.uids = validity, set()
        self.uids &= set(present)
        return self.uids

    def add(self, validity: int, uids: Iterable[int]) -> None:
        if validity != self.validity:
            self.validity, self.uids = validity, set()
        self.uids.update(uids)

    def to_text(self) -> str:
        """``validity:1-40,45`` — short also for 20,000 mails in a row."""
        ranges, start, prev = [], None, None
        for uid in sorted(self.uids):
            if prev is None or uid != prev + 1:
                if start is not None:
                    ranges.append(f"{start}-{prev}" if prev != start else str(start))
                start = uid
            prev = uid
        if start is not None:
            ranges.append(f"{start}-{prev}" if prev != start else str(start))
        return f"{self.validity or ''}:{','.join(ranges)}"

    @classmethod
    def from_text(cls, text: str | None) -> LeftAlone:
        left = cls()
        validity, _, ranges = (text or "").partition(":")
        if not validity.isdigit():
            return left
        left.validity = int(validity)
        for part in filter(None, ranges.split(",")):
            first, _, last = part.partition("-")
            left.uids.update(range(int(first), int(last or first) + 1))
        return left


class ImapInbox:
    """One IMAP folder; connects and logs in on construction."""

    left: LeftAlone | None = None  # set by the service: mail not to download again
    _seen_upto: int | None = None  # the highest UID the last SEARCH found
    _uidvalidity: int | None = None

    def __init__(self, cfg: ImapConfig, batch_size: int = 100, max_bytes: int = 25_000_000,
                 idle: bool = True):
        self.cfg = cfg
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        where = f"IMAP {cfg.host}:{cfg.port}"
        self.description = f"{where}/{cfg.folder}"
        try:
            self.client = self._connect()
            self.client.login(cfg.username, cfg.password)
            if not self.client.folder_exists(cfg.processed_folder):
                self.client.create_folder(cfg.processed_folder)
                log.info("created IMAP folder %s", cfg.processed_folder)
            self.client.select_folder(cfg.folder)
        except LoginError:
            raise InboxError(f"{where}: login refused for user {cfg.username!r} "
                             f"(check [imap] username and the password)") from None
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
        try:
            if self._arrived():
                return
            self.client.idle()
            closed = False
            try:
                closed = self._idle(deadline, stop, heartbeat)
            finally:
                if not closed:
                    self.client.idle_done()
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: {connection_problem(exc)}") from None
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

    def _connect(self) -> IMAPClient:
        cfg = self.cfg
        context = ssl.create_default_context(cafile=cfg.ca_file)
        client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.security == "tls",
                            ssl_context=context, timeout=cfg.timeout)
        client.normalise_times = False  # INTERNALDATE as an aware datetime
        if cfg.security == "starttls":
            client.starttls(context)
        return client

    def batches(self) -> Iterator[list[InboundMail]]:
        """The folder's mail in batches. Sizes come first (RFC822.SIZE): mail over the
        limit is fetched as headers only and handed on with ``oversize`` set."""
        try:
            uids = sorted(self.client.search(["NOT", "DELETED"]))
            self._seen_upto = max(uids, default=self._seen_upto or 0)
            if self.left is not None:  # flagged or not ours: read once, not on every poll
                skip = self.left.current(self._validity(), uids)
                uids = [u for u in uids if u not in skip]
            for chunk in _chunks(uids, self.batch_size):
                sizes = self.client.fetch(chunk, ["RFC822.SIZE"])
                big = [u for u, d in sizes.items() if d.get(b"RFC822.SIZE", 0) > self.max_bytes]
                small = [u for u in chunk if u in sizes and u not in big]
                mails = self._fetch(small, b"BODY[]", "BODY.PEEK[]", sizes, False)
                mails += self._fetch(big, b"BODY[HEADER]", "BODY.PEEK[HEADER]", sizes, True)
                yield sorted(mails, key=lambda m: int(m.ref))
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: {connection_problem(exc)}") from None

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

    def leave(self, refs: Sequence[str]) -> None:
        """Mail that stays in the folder as it is (not ours): not read again."""
        if self.left is None or not refs:
            return
        try:
            self.left.add(self._validity(), (int(r) for r in refs))
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: {connection_problem(exc)}") from None

    def done(self, refs: Sequence[str]) -> None:
        if not refs:
            return
        uids = [int(r) for r in refs]
        try:
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
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: moving mail failed: "
                             f"{connection_problem(exc)}") from None

    def flag(self, refs: Sequence[str]) -> None:
        if not refs:
            return
        uids = [int(r) for r in refs]
        try:
            self.client.add_flags(uids, [b"\\Flagged"])
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: flagging mail failed: "
                             f"{connection_problem(exc)}") from None
        self.leave(refs)  # waits for a human: not read again while it is there

    def find(self, message_id: str) -> InboundMail | None:
        """The mail with this Message-ID (or content hash key) still in the folder."""
        try:
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
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: {connection_problem(exc)}") from None

    def release(self, ref: str) -> None:
        """A mail a human has settled: unflagged, marked seen, moved to the processed folder."""
        try:
            self.client.remove_flags([int(ref)], [b"\\Flagged"])
        except (OSError, IMAPClientError) as exc:
            raise InboxError(f"{self.description}: {connection_problem(exc)}") from None
        self.done([ref])

    def close(self) -> None:
        try:
            self.client.logout()
        except (OSError, IMAPClientError):
            pass


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class MaildirInbox:
    """A local Maildir (``new/``, ``cur/``); processed mail goes to the Maildir++ subfolder
    ``.<processed_folder>``. Flags live in the file name (``:2,FS``) as usual."""

    left: LeftAlone | None = None  # not used: a local folder is cheap to read again

    def __init__(self, cfg: MaildirConfig, batch_size: int = 100, max_bytes: int = 25_000_000):
        self.root = Path(cfg.path)
        self.max_bytes = max_bytes
        self.processed = self.root / f".{cfg.processed_folder}"
        self.batch_size = batch_size
        self.description = f"Maildir {self.root}"
        if not (self.root / "cur").is_dir() and not (self.root / "new").is_dir():
            raise InboxError(f"{self.root}: not a Maildir (no cur/ or new/ folder); "
                             f"check [maildir] path")
        for folder in (self.root, self.processed):
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    def batches(self) -> Iterator[list[InboundMail]]:
        names = [f"{sub}/{entry.name}" for sub in ("new", "cur")
                 for entry in os.scandir(self.root / sub)
                 if entry.is_file() and not entry.name.startswith(".")
                 and "T" not in _flags(entry.name)]
        names.sort(key=lambda ref: ref.split("/", 1)[1])
        for i in range(0, len(names), self.batch_size):
            batch = []
            for ref in names[i : i + self.batch_size]:
                path = self.root / ref
                try:
                    stat = path.stat()
                    with path.open("rb") as fh:
                        big = stat.st_size > self.max_bytes
                        raw = fh.read(256 * 1024 + 4) if big else fh.read()
                except FileNotFoundError:  # taken away meanwhile
                    continue
                received = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                batch.append(InboundMail(ref=ref, raw=raw, received_at=received,
                                         oversize=stat.st_size if big else None))
            yield batch

    def wait(self, timeout: float, stop: threading.Event,
             heartbeat: Callable[[], None]) -> None:
        """Until a file appears in ``new/``, ``timeout`` seconds pass or ``stop`` is set."""
        before = set(os.listdir(self.root / "new"))
        wait(timeout, stop, heartbeat, lambda: set(os.listdir(self.root / "new")) - before)

    def done(self, refs: Sequence[str]) -> None:
        for ref in refs:
            base = ref.split("/", 1)[1].split(":", 1)[0]
            flags = "".join(sorted(set(_flags(ref)) | {"S"}))
            os.rename(self.root / ref, self.processed / "cur" / f"{base}:2,{flags}")

    def flag(self, refs: Sequence[str]) -> None:
        for ref in refs:
            base = ref.split("/", 1)[1].split(":", 1)[0]
            flags = "".join(sorted(set(_flags(ref)) | {"F"}))
            os.rename(self.root / ref, self.root / "cur" / f"{base}:2,{flags}")

    def find(self, message_id: str) -> InboundMail | None:
        for batch in self.batches():
            for mail in batch:
                if _key_of(mail.raw) == message_id:
                    return mail
        return None

    def leave(self, refs: Sequence[str]) -> None:
        pass  # reading a local folder again costs nothing worth remembering

    def release(self, ref: str) -> None:
        base = ref.split("/", 1)[1].split(":", 1)[0]
        flags = "".join(sorted((set(_flags(ref)) - {"F"}) | {"S"}))
        os.rename(self.root / ref, self.processed / "cur" / f"{base}:2,{flags}")

    def close(self) -> None:
        pass


def _key_of(raw: bytes) -> str:
    return parse_mail(raw).key  # the same key the daemon recorded


def _flags(name: str) -> str:
    _, _, info = name.partition(":2,")
    return info


def open_inbox(imap: ImapConfig | None, maildir: MaildirConfig | None, batch_size: int,
               max_bytes: int, idle: bool = True) -> ImapInbox | MaildirInbox:
    """The inbox the configuration names: IMAP, or a local Maildir."""
    if imap is not None:
        return ImapInbox(imap, batch_size, max_bytes, idle)
    assert maildir is not None
    return MaildirInbox(maildir, batch_size, max_bytes)
