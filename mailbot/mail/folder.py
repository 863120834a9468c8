"""What the two inboxes (``imap``, ``maildir``) share: their errors, and which mail a
person's erasure takes."""

from __future__ import annotations

import datetime as dt
import email.parser
import re
from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass

from imapclient.exceptions import IMAPClientError
from imapclient.imap_utf7 import encode as encode_utf7

from mailbot.reading.parse import parse_from, valid_message_id


class InboxError(Exception):
    """Raised when the inbox cannot be reached or refuses us (connection, TLS, login,
    missing folder). The message is one line, without the password."""


class InboxLoginError(InboxError):
    """Raised when the IMAP server or the token endpoint refuses the login: no retry
    helps until someone fixes the password, the secret or the permission."""


@dataclass(frozen=True)
class Baseline:
    """mailbot's first start in this folder: the mail that was there already and older
    than ``max_age`` then stays where it is, unrecorded (not mailbot's to handle). Mail
    that came later — IMAP: a UID from ``uid_next`` on in the same UIDVALIDITY — is read,
    however old its date (a registration moved back into the inbox). Without UIDs (a
    Maildir, a rebuilt folder) the date alone tells."""

    started: dt.datetime
    max_age: dt.timedelta
    validity: int | None = None
    uid_next: int | None = None

    def before(self, received_at: dt.datetime, validity: int | None = None,
               uid: int | None = None) -> bool:
        if (uid is not None and self.uid_next is not None and validity == self.validity
                and uid >= self.uid_next):
            return False
        return received_at < self.started - self.max_age

    def to_text(self) -> str:
        return f"{self.started.isoformat()} {self.validity or ''} {self.uid_next or ''}"

    @classmethod
    def from_text(cls, text: str, max_age: dt.timedelta) -> Baseline:
        started, validity, uid_next = (text.split(" ") + ["", ""])[:3]
        return cls(dt.datetime.fromisoformat(started), max_age,
                   int(validity) if validity else None, int(uid_next) if uid_next else None)


def to_erase(head: bytes, keys: set[str]) -> bool | None:
    """Whether a mail with these headers is one mailbot handled (its key is in ``keys``)
    and so one to erase; None: only its hash can tell. The From line decides nothing: a
    person's mail to a colleague who shares the inbox is not mailbot's to delete."""
    msg = email.parser.BytesHeaderParser().parsebytes(head)
    message_id = valid_message_id(str(msg.get("message-id", "")))
    if message_id:
        return message_id in keys
    return None if any(k.startswith("sha256:") for k in keys) else False


_OUR_ID = re.compile(r"\.mailbot(?:-[a-z]+)?@[^>]+>$")  # compose.py: make_msgid("mailbot…")


def _our_copy(head: bytes, recipient: str | None, keys: Set[str] = frozenset()) -> bool:
    """Whether a mail in the Sent folder is one of mailbot's (to ``recipient``, if given,
    or one of ``keys``: a note naming her, a digest): `forget` and `purge` delete those
    too, the organiser's own mail there stays."""
    msg = email.parser.BytesHeaderParser().parsebytes(head)
    message_id = valid_message_id(str(msg.get("message-id", "")))
    if not message_id or not _OUR_ID.search(message_id):
        return False
    return recipient is None or message_id in keys or \
        parse_from(str(msg.get("to", "")))[0] == recipient.lower()


UIDS_PER_COMMAND = 1000  # a STORE of 50,000 UIDs is "Too long argument" (Dovecot)


def chunks(uids: Sequence[int], size: int = UIDS_PER_COMMAND) -> Iterator[Sequence[int]]:
    """``uids`` in pieces of ``size``: a command takes a limited number."""
    for i in range(0, len(uids), size):
        yield uids[i : i + size]


def store_in_chunks(client, uids: list[int]) -> int:
    """Mark ``uids`` of the selected folder ``\\Deleted`` and UID EXPUNGE them, a limited
    number per command; how many. Without UIDPLUS they stay marked deleted for the mail
    program to expunge (a plain EXPUNGE would take every deleted mail of a shared inbox)."""
    for chunk in chunks(sorted(uids)):
        client.add_flags(chunk, [b"\\Deleted"])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(chunk)
    return len(uids)


def erase_our_copies(client, skip: tuple[str, ...], names: tuple[str, ...],
                     recipient: str | None, prefix: str = "",
                     keys: Set[str] = frozenset()) -> int:
    """Delete mailbot's replies from the Sent folder (copied there by mailbot or filed by
    the provider) of an IMAP ``client``: those to ``recipient``, or all when None (purge);
    the folder marked ``\\Sent`` or the first of ``names``; how many."""
    sent = sent_folders(client, names, prefix)
    removed = 0
    for folder in dict.fromkeys(n for n in sent if n not in skip):
        client.select_folder(folder)
        ours = []
        for chunk in chunks(client.search(["NOT", "DELETED"]), 500):
            heads = client.fetch(chunk, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID TO)]"])
            ours += [uid for uid, data in heads.items() if _our_copy(next(
                (v for k, v in data.items() if k.startswith(b"BODY")), b"") or b"", recipient,
                keys)]
        removed += store_in_chunks(client, ours)
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
