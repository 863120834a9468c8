"""Where mail comes from: an IMAP folder (``imap``) or a local Maildir (``maildir``, for
the demo); ``open_inbox`` opens the one the configuration names.

Both offer the same three verbs: ``batches()`` yields the folder's mail in batches without
changing anything (IMAP ``BODY.PEEK[]``), ``done(refs)`` moves handled mail to the processed
folder (marked seen), ``flag(refs)`` leaves mail for a human: flagged, in place, its
seen-flag untouched (BODY.PEEK never sets it; a mail the organiser already read stays read).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from mailbot.config import ImapConfig, MaildirConfig
from mailbot.core.models import InboundMail
from mailbot.mail.folder import Baseline, InboxError, InboxLoginError  # noqa: F401  (re-exported)
from mailbot.mail.imap import IDLE_MAX, SENT_NAMES, ImapInbox  # noqa: F401  (re-exported)
from mailbot.mail.leftalone import LeftAlone  # noqa: F401  (re-exported)
from mailbot.mail.maildir import MaildirInbox


class Inbox(Protocol):
    left: LeftAlone | None  # the service sets it: mail not to download again (IMAP only)
    baseline: Baseline | None  # the service sets it: mail from before its first start

    def batches(self) -> Iterator[list[InboundMail]]: ...
    def done(self, refs: Sequence[str]) -> None: ...
    def flag(self, refs: Sequence[str]) -> None: ...
    def leave(self, refs: Sequence[str], flagged: bool = False) -> None: ...
    def find(self, message_id: str, fingerprint: str | None = None
             ) -> InboundMail | None: ...
    def release(self, ref: str) -> None: ...
    def unflag(self, refs: Sequence[str]) -> None: ...
    def append_alert(self, raw: bytes) -> None: ...
    def erase(self, keys: set[str], sender: str | None = None) -> int: ...
    def save_sent(self, raw: bytes, message_id: str | None, check: bool) -> None: ...
    def wait(self, timeout: float, stop: threading.Event,
             heartbeat: Callable[[], None]) -> None: ...
    def close(self) -> None: ...
    def start_mark(self) -> tuple[int | None, int | None]: ...
    @property
    def description(self) -> str: ...


def open_inbox(imap: ImapConfig | None, maildir: MaildirConfig | None, batch_size: int,
               max_bytes: int, idle: bool = True, readonly: bool = False
               ) -> ImapInbox | MaildirInbox:
    """The inbox the configuration names: IMAP, or a local Maildir. ``readonly``: for
    looking only (IMAP EXAMINE, no folder created); the Maildir is only read anyway."""
    if imap is not None:
        return ImapInbox(imap, batch_size, max_bytes, idle, readonly)
    assert maildir is not None
    return MaildirInbox(maildir, batch_size, max_bytes)
