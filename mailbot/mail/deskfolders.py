"""The organiser's desk in her mail program (issue 22): two IMAP folders under ``mailbot``.
A mail she moves into the approve folder (``mailbot/Anmelden``) is to be registered, one
she moves into the settle folder (``mailbot/Erledigt``) is settled without a reply; her own
reply in the Sent folder settles a mail as answered by hand. A folder move is a command
only someone with access to the mailbox can give: no new secret.

This module only reads and moves mail; what a move means is decided in the service
(``service.deskround``)."""

from __future__ import annotations

import email.parser
import email.policy
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from imapclient import IMAPClient

from mailbot.config import ImapConfig
from mailbot.core.models import InboundMail
from mailbot.mail.folder import folder_name

log = logging.getLogger(__name__)

APPROVE, SETTLE = "approve", "settle"
# who decided a mail for review (``messages.decided_by``)
BY_APPROVE = "mailbot approve"
BY_DISMISS = "mailbot dismiss"
BY_SENT = "eigene Antwort im Ordner Gesendet"


def by_folder(name: str) -> str:
    """``decided_by`` of a mail moved into a desk folder: "Ordner mailbot/Anmelden"."""
    return f"Ordner {name}"


_HEAD = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID IN-REPLY-TO AUTO-SUBMITTED)]"


class DeskFolders:
    """The approve and settle folders of one IMAP account; ``failing`` turns a lost
    connection into the inbox's InboxError, ``home`` is the inbox folder selected again
    after each look."""

    def __init__(self, client: IMAPClient, cfg: ImapConfig,
                 failing: Callable[[str], AbstractContextManager[None]],
                 sent_folder: Callable[[], str], prefix: str = "",
                 separator: str | None = None):
        self.client, self.cfg, self.failing, self.sent_folder = client, cfg, failing, sent_folder
        self.checked: set[int] = set()  # UIDs in Sent known not to be a reply by hand
        # with the server's namespace prefix and separator ("mailbot/Anmelden" →
        # "INBOX.mailbot.Anmelden" where every folder lives under INBOX.)
        self.names = {APPROVE: folder_name(cfg.approve_folder, prefix, separator),
                      SETTLE: folder_name(cfg.settle_folder, prefix, separator)}

    def mails(self) -> list[tuple[str, InboundMail]]:
        """("approve" or "settle", mail) of each mail moved into the desk folders."""
        found: list[tuple[str, InboundMail]] = []
        with self.failing("reading the desk folders failed: "):
            try:
                for which, folder in self.names.items():
                    if not self.client.folder_exists(folder):
                        continue
                    self.client.select_folder(folder, readonly=True)
                    uids = sorted(self.client.search(["NOT", "DELETED"]))
                    data = self.client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"]) if uids \
                        else {}
                    for uid in uids:
                        item = data.get(uid, {})
                        if item.get(b"BODY[]") is not None:
                            found.append((which, InboundMail(str(uid), item[b"BODY[]"],
                                                             item[b"INTERNALDATE"])))
            finally:
                self.client.select_folder(self.cfg.folder)
        return found

    def move_on(self, which: str, refs: Iterable[str], back: bool = False) -> None:
        """Mails of a desk folder to the processed folder (seen, unflagged) — or, with
        ``back``, to the inbox, flagged, for a human to look at again."""
        uids = [int(r) for r in refs]
        if not uids:
            return
        target = self.cfg.folder if back else self.cfg.processed_folder
        with self.failing("moving mail failed: "):
            try:
                self.client.select_folder(self.names[which])
                if back:
                    self.client.add_flags(uids, [b"\\Flagged"])
                else:
                    self.client.remove_flags(uids, [b"\\Flagged"])
                    self.client.add_flags(uids, [b"\\Seen"])
                if self.client.has_capability("MOVE"):
                    self.client.move(uids, target)
                else:
                    self.client.copy(uids, target)
                    self.client.delete_messages(uids)
                    if self.client.has_capability("UIDPLUS"):
                        self.client.uid_expunge(uids)
            finally:
                self.client.select_folder(self.cfg.folder)

    def answered(self, message_ids: Iterable[str], ours: Callable[[str], bool]) -> set[str]:
        """Those of ``message_ids`` a human answered: a mail in the Sent folder whose
        In-Reply-To names it, not written by a program (Auto-Submitted) and not one of
        mailbot's own (``ours(its Message-ID)``)."""
        wanted = [m for m in message_ids if m.startswith("<")]
        if not wanted:
            return set()
        found: set[str] = set()
        with self.failing("reading the Sent folder failed: "):
            try:
                self.client.select_folder(self.sent_folder(), readonly=True)
                for message_id in wanted:
                    # mailbot's own replies carry Auto-Submitted: left out by the server
                    uids = [u for u in self.client.search(
                        ["HEADER", "In-Reply-To", message_id, "NOT", "HEADER", "Auto-Submitted",
                         ""]) if u not in self.checked]
                    for uid, data in (self.client.fetch(uids, [_HEAD]).items() if uids else ()):
                        head = next((v for k, v in data.items() if k.startswith(b"BODY")), b"")
                        if _by_hand(head or b"", message_id, ours):
                            found.add(message_id)
                        else:
                            self.checked.add(uid)  # mailbot's own reply: not read again
            finally:
                self.client.select_folder(self.cfg.folder)
        return found


def _by_hand(head: bytes, message_id: str, ours: Callable[[str], bool]) -> bool:
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    if message_id not in (msg.get("In-Reply-To") or ""):  # SEARCH matches substrings
        return False
    if (msg.get("Auto-Submitted") or "no").strip().lower() != "no":
        return False
    own_id = (msg.get("Message-ID") or "").strip()
    return not (own_id and ours(own_id))
