"""A local Maildir as the inbox (for the demo and for trying a configuration): the same
verbs as IMAP, with the flags in the file names."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mailbot.config import MaildirConfig
from mailbot.core.models import InboundMail
from mailbot.host.notify import wait
from mailbot.mail.folder import Baseline, InboxError, to_erase
from mailbot.reading.keys import split_key
from mailbot.reading.parse import content_key, header_end, mail_key, same_content

if TYPE_CHECKING:
    from mailbot.mail.leftalone import LeftAlone


class MaildirInbox:
    """A local Maildir (``new/``, ``cur/``); processed mail goes to the Maildir++ subfolder
    ``.<processed_folder>``. Flags live in the file name (``:2,FS``) as usual."""

    left: LeftAlone | None = None  # not used: a local folder is cheap to read again
    baseline: Baseline | None = None  # set by the service: mail from before its first start

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
                if self.baseline is not None and self.baseline.before(received):
                    continue  # there before mailbot's first start: not ours, left as it is
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

    def find(self, message_id: str, fingerprint: str | None = None) -> InboundMail | None:
        message_id, prefix = split_key(message_id)
        for batch in self.batches():
            for mail in batch:
                if mail_key(mail.raw) == message_id and \
                        same_content(mail.raw, prefix or fingerprint):
                    return mail
        return None

    def leave(self, refs: Sequence[str], flagged: bool = False) -> None:
        pass  # reading a local folder again costs nothing worth remembering

    def unflag(self, refs: Sequence[str]) -> None:
        for ref in refs:
            base = ref.split("/", 1)[1].split(":", 1)[0]
            flags = "".join(sorted(set(_flags(ref)) - {"F"}))
            with contextlib.suppress(FileNotFoundError):  # the service took it meanwhile
                os.rename(self.root / ref, self.root / "cur" / f"{base}:2,{flags}")

    def release(self, ref: str) -> None:
        base = ref.split("/", 1)[1].split(":", 1)[0]
        flags = "".join(sorted((set(_flags(ref)) - {"F"}) | {"S"}))
        os.rename(self.root / ref, self.processed / "cur" / f"{base}:2,{flags}")

    def start_mark(self) -> tuple[int | None, int | None]:
        """(UIDVALIDITY, UIDNEXT) of an IMAP folder; a Maildir has none (its dates tell)."""
        return None, None

    def erase(self, keys: set[str], sender: str | None = None) -> int:
        """Delete the files of the mails (inbox and processed folder) whose key is in
        ``keys`` (mailbot handled them); how many. ``sender``: only for IMAP's Sent."""
        removed = 0
        for folder in (self.root, self.processed):
            for sub in ("new", "cur"):
                for path in (folder / sub).iterdir():
                    raw = path.read_bytes()
                    verdict = to_erase(raw[: header_end(raw)], keys)
                    if verdict or verdict is None and content_key(raw) in keys:
                        path.unlink()
                        removed += 1
        return removed

    def save_sent(self, raw: bytes, message_id: str | None, check: bool) -> None:
        """A local Maildir keeps no copies: the replies are in the database."""

    def append_alert(self, raw: bytes) -> None:
        name = f"{time.time_ns()}.{os.getpid()}.mailbot-alert:2,F"
        fd = os.open(self.root / "tmp" / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.rename(self.root / "tmp" / name, self.root / "cur" / name)

    def close(self) -> None:
        pass


def _flags(name: str) -> str:
    _, _, info = name.partition(":2,")
    return info
