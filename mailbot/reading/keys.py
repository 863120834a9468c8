"""The keys a mail is known by: its Message-ID and, beside it, a fingerprint of what its
writer made, so that another mail under a Message-ID seen before is not taken for it (a
form mailer that gives every mail the same ID), while the same mail delivered again is."""

from __future__ import annotations

import hashlib
import re

_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|$)")


def fingerprint(body: bytes, sender: str | None, headers: dict[str, str]) -> str:
    """What the writer made: From, Subject, Date and the body (line ends and trailing
    blanks aside). Headers a server adds on the way (Received, Delivered-To, Return-Path,
    X-…) leave it as it is: the same mail delivered again has the same fingerprint."""
    digest = hashlib.sha256()
    for value in (sender or "", headers.get("subject", ""), headers.get("date", "")):
        digest.update(value.strip().encode("utf-8", "replace") + b"\0")
    body = _TRAILING_SPACE.sub(b"", body.replace(b"\r\n", b"\n")).strip()
    digest.update(body)
    return digest.hexdigest()[:32]


def other_mail_key(message_id: str, fingerprint: str) -> str:
    """The key of a mail whose Message-ID an earlier, different mail has already."""
    return f"{message_id}#{fingerprint[:16]}"


def split_key(key: str) -> tuple[str, str | None]:
    """(Message-ID, fingerprint prefix or None) of a key ``other_mail_key`` may have made."""
    found = _OTHER_KEY.match(key)
    return (found[1], found[2]) if found else (key, None)


_OTHER_KEY = re.compile(r"^(<.*>)#([0-9a-f]{16})$")
