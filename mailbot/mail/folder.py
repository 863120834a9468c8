"""What the two inboxes (``imap``, ``maildir``) share: their errors, and which mail a
person's erasure takes."""

from __future__ import annotations

import email.parser
import re

from imapclient.exceptions import IMAPClientError
from imapclient.imap_utf7 import encode as encode_utf7

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


def _our_copy(head: bytes, recipient: str | None, keys: set[str] = frozenset()) -> bool:
    """Whether a mail in the Sent folder is one of mailbot's (to ``recipient``, if given,
    or one of ``keys``: a note naming her, a digest): `forget` and `purge` delete those
    too, the organiser's own mail there stays."""
    msg = email.parser.BytesHeaderParser().parsebytes(head)
    message_id = valid_message_id(str(msg.get("message-id", "")))
    if not message_id or not _OUR_ID.search(message_id):
        return False
    return recipient is None or message_id in keys or \
        parse_from(str(msg.get("to", "")))[0] == recipient.lower()


def erase_our_copies(client, skip: tuple[str, ...], names: tuple[str, ...],
                     recipient: str | None, prefix: str = "",
                     keys: set[str] = frozenset()) -> int:
    """Delete mailbot's replies from the Sent folder (copied there by mailbot or filed by
    the provider) of an IMAP ``client``: those to ``recipient``, or all when None (purge);
    the folder marked ``\\Sent`` or the first of ``names``; how many."""
    sent = sent_folders(client, names, prefix)
    removed = 0
    for folder in dict.fromkeys(n for n in sent if n not in skip):
        client.select_folder(folder)
        uids = client.search(["NOT", "DELETED"])
        heads = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID TO)]"]) if uids else {}
        ours = [uid for uid, data in heads.items() if _our_copy(
            next((v for k, v in data.items() if k.startswith(b"BODY")), b"") or b"", recipient,
            keys)]
        if ours:
            client.add_flags(ours, [b"\\Deleted"])
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(ours)
            removed += len(ours)
    return removed


def personal_namespace(client) -> tuple[str, str | None]:
    """(prefix, separator) of the server's personal namespace (RFC 2342): ``("INBOX.",
    ".")`` on Courier and on Cyrus as Debian configures it, ``("", "/")`` or ``("", ".")``
    on Dovecot; ``("", None)`` when the server does not say."""
    if not client.has_capability("NAMESPACE"):
        return "", None
    personal = client.namespace().personal or ()
    if not personal:
        return "", None
    prefix, separator = personal[0]
    return prefix or "", separator or None


def folder_name(name: str, prefix: str, separator: str | None) -> str:
    """A folder mailbot creates, named as the server wants it: ``/`` in a nested name
    becomes the server's separator, and the namespace prefix comes in front unless the
    name has it already (``Processed`` → ``INBOX.Processed``; ``INBOX`` stays)."""
    if separator and separator != "/":
        name = name.replace("/", separator)
    if name.upper() == "INBOX" or not prefix or name.lower().startswith(prefix.lower()):
        return name
    return prefix + name


def ensure_folder(client, name: str, special_use: bytes | None = None) -> bool:
    """Create ``name`` unless it is there; True when created. With ``special_use`` (e.g.
    ``\\Sent``) and CREATE-SPECIAL-USE (RFC 6154), the folder is marked so. A folder that
    "already exists" (made meanwhile by the mail program, or hidden from LIST) is fine."""
    if client.folder_exists(name):
        return False
    try:
        if special_use and client.has_capability("CREATE-SPECIAL-USE"):
            _create_special(client, name, special_use)
        else:
            client.create_folder(name)
    except IMAPClientError as exc:
        if "ALREADYEXISTS" in str(exc).upper() or client.folder_exists(name):
            return False
        raise IMAPClientError(f"creating folder {name!r} failed: {exc}") from None
    return True


def _create_special(client, name: str, use: bytes) -> None:
    """``CREATE "name" (USE (\\Sent))`` (imapclient has no argument for it)."""
    quoted = b'"' + encode_utf7(name).replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    typ, data = client._imap.xatom("CREATE", quoted, b"(USE (" + use + b"))")
    if typ != "OK":
        raise IMAPClientError(b" ".join(d for d in data if isinstance(d, bytes)).decode(
            "utf-8", "replace"))


def sent_folders(client, names: tuple[str, ...], prefix: str) -> list[str]:
    """The Sent folders there are, best first: the one marked ``\\Sent`` (RFC 6154 LIST,
    or XLIST on servers that only offer that), then those of ``names`` that exist (also
    under the namespace ``prefix``)."""
    folders = client.list_folders()
    marked = [n for flags, _, n in folders if b"\\Sent" in flags]
    if not marked and client.has_capability("XLIST"):
        marked = [n for flags, _, n in client.xlist_folders() if b"\\Sent" in flags]
    found = {name for _, _, name in folders}
    named = [n for name in names for n in (name, prefix + name) if n in found]
    return list(dict.fromkeys(marked + named))


_PROBE = (b"From: mailbot <mailbot@localhost>\r\nSubject: mailbot check (deleted at once)\r\n"
          b"Message-ID: <check.mailbot-probe@localhost>\r\n\r\nmailbot check\r\n")


def probe_append(client, folder: str, back_to: str) -> None:
    """Try an APPEND into ``folder`` as a Sent copy would, and delete the trial mail at
    once (UIDPLUS: only that one; without it, nothing is appended, the folder's LIST
    answer has to do). Raises IMAPClientError as the real copy would fail."""
    if not client.has_capability("UIDPLUS"):
        client.folder_status(folder, [b"MESSAGES"])
        return
    answer = client.append(folder, _PROBE, flags=[b"\\Seen", b"\\Deleted"])
    found = re.search(rb"APPENDUID \d+ (\d+)", answer or b"")
    if found:
        client.select_folder(folder)
        try:
            client.uid_expunge([int(found.group(1))])
        finally:
            client.select_folder(back_to)
