"""What the two inboxes (``imap``, ``maildir``) share: their errors, and which mail a
person's erasure takes."""

from __future__ import annotations

import email.parser
import re

from mailbot.reading.parse import parse_from, valid_message_id


class InboxError(Exception):
    """Raised when the inbox cannot be reached or refuses us (connection, TLS, login,
    missing folder). The message is one line, without the password."""


class InboxLoginError(InboxError):
    """Raised when the IMAP server or the token endpoint refuses the login: no retry
    helps until someone fixes the password, the secret or the permission."""


def to_erase(head: bytes, keys: set[str], sender: str | None) -> bool | None:
    """Whether a mail with these headers is one to erase; None: only its hash can tell."""
    msg = email.parser.BytesHeaderParser().parsebytes(head)
    if sender and parse_from(str(msg.get("from", "")))[0] == sender.lower():
        return True
    message_id = valid_message_id(str(msg.get("message-id", "")))
    if message_id:
        return message_id in keys
    return None if any(k.startswith("sha256:") for k in keys) else False


_OUR_ID = re.compile(r"\.mailbot(?:-[a-z]+)?@[^>]+>$")  # compose.py: make_msgid("mailbot…")


def _our_copy(head: bytes, recipient: str | None) -> bool:
    """Whether a mail in the Sent folder is one of mailbot's (to ``recipient``, if given):
    `forget` and `purge` delete those too, the organiser's own mail there stays."""
    msg = email.parser.BytesHeaderParser().parsebytes(head)
    message_id = valid_message_id(str(msg.get("message-id", "")))
    if not message_id or not _OUR_ID.search(message_id):
        return False
    return recipient is None or parse_from(str(msg.get("to", "")))[0] == recipient.lower()


def erase_our_copies(client, skip: tuple[str, ...], names: tuple[str, ...],
                     recipient: str | None) -> int:
    """Delete mailbot's replies from the Sent folder (copied there by mailbot or filed by
    the provider) of an IMAP ``client``: those to ``recipient``, or all when None (purge);
    the folder marked ``\\Sent`` or the first of ``names``; how many."""
    folders = client.list_folders()
    found = {name for _, _, name in folders}
    sent = [n for flags, _, n in folders if b"\\Sent" in flags] + [n for n in names if n in found]
    removed = 0
    for folder in dict.fromkeys(n for n in sent if n not in skip):
        client.select_folder(folder)
        uids = client.search(["NOT", "DELETED"])
        heads = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID TO)]"]) if uids else {}
        ours = [uid for uid, data in heads.items() if _our_copy(
            next((v for k, v in data.items() if k.startswith(b"BODY")), b"") or b"", recipient)]
        if ours:
            client.add_flags(ours, [b"\\Deleted"])
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(ours)
            removed += len(ours)
    return removed
