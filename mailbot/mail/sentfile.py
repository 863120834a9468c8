"""Replies the SMTP server took while the database would not record it: kept in a small
side file next to the database, ``<database>.sent`` (0600, fsynced), until the database
takes the mark. Without it, a reply still ``sending`` in the database when mailbot ends
(another program holds the database, then a stop) would be sent again at the next start.

One line per reply: its outbox id, its kind, a hash of its recipient (the file holds no
address, and a reply with another id or recipient is never taken for it) and when it was
sent. :meth:`sending.Sending.flush` applies the file before anything is sent, then
removes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import NamedTuple


class Kept(NamedTuple):
    """A reply the server took, as kept in the side file."""

    reply_id: int
    kind: str
    recipient_hash: str
    sent_at: dt.datetime


def side_path(database: Path) -> Path:
    return database.with_name(database.name + ".sent")


def recipient_hash(recipient: str) -> str:
    return hashlib.sha256(recipient.lower().encode()).hexdigest()[:16]


def keep(database: Path, reply_id: int, kind: str, recipient: str,
         sent_at: dt.datetime) -> None:
    """Add one reply to the side file, on disk when this returns; raises OSError."""
    path = side_path(database)
    line = f"{reply_id} {kind} {recipient_hash(recipient)} {sent_at.isoformat()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the file's name survives a power cut, too
    finally:
        os.close(folder)


def read(database: Path) -> list[Kept]:
    """The replies in the side file; a line cut off by a crash while it was written is
    left out (its reply was not kept: it is sent again, as without the file)."""
    try:
        text = side_path(database).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return []
    kept = []
    for line in text.split("\n")[:-1]:  # only whole lines
        parts = line.split()
        if len(parts) != 4 or not parts[0].isdigit() or len(parts[2]) != 16:
            continue
        try:
            sent_at = dt.datetime.fromisoformat(parts[3])
        except ValueError:
            continue
        kept.append(Kept(int(parts[0]), parts[1], parts[2], sent_at))
    return kept


def remove(database: Path) -> None:
    side_path(database).unlink(missing_ok=True)
