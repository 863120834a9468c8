"""The SQLite log: the only place that knows SQL.

Tables (documented for organisers in docs/reference.md): ``messages`` (one row per mail
handled), ``registrations`` (one row per participant), ``outbox`` (one row per reply); and
the organisers' views of them in German and local time (``VIEWS``). The schema and its
numbered migrations are in ``migrations``; each table's reading and writing in its part
(``store.messages``, ``store.registrations``, ``store.outbox``, ``store.state``), which
``Store`` puts together. Every mail's rows are written together (one transaction, or a
savepoint in the batch's), before anything is sent. The store has no clock (callers pass
``now``), no retry rule and no knowledge of mail formats.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from mailbot.core.clock import iso, now_utc  # noqa: F401  (re-exported: callers import them from here)
from mailbot.core.i18n import tr as _
from mailbot.core.text import ADDR_RE, QUOTED  # QUOTED: a sentence quoted in a reason
from mailbot.store.file import create, sync_folder
from mailbot.store.messages import Messages
from mailbot.store.migrations import (  # noqa: F401  (re-exported: callers import them from here)
    LANGUAGE_DE,
    MIGRATIONS,
    REPLY_KIND_DE,
    REPLY_STATUS_DE,
    STATUS_DE,
    VIEWS,
    migrate,
    zone_offsets,
)
from mailbot.store.outbox import Outbox
from mailbot.store.registrations import Registrations
from mailbot.store.state import State

BUSY_TIMEOUT_MS = 10_000  # how long a write waits for a lock another program holds


def erased(email: str) -> str:
    """What stands in place of an erased address: a hash, so counts still add up."""
    return "erased:" + hashlib.sha256(email.lower().encode()).hexdigest()[:16]


class StoreError(Exception):
    """The one error type for a database that cannot be used, raised by the store: when
    opening it (a 0-byte or foreign file, one made by a newer mailbot, or any SQLite error
    then, wrapped with ``explain``), and when the file was deleted or replaced while
    mailbot runs (``check_file``). The message is one line for an organiser, with the fix.
    SQLite errors of single reads and writes later on (a lock held too long, a full disk)
    are left as ``sqlite3.Error`` to the caller, who decides whether to retry."""


def _refuse_empty(path: Path) -> None:
    """An existing 0-byte file is not a new database (see ``Store``); its write-ahead log
    may still hold everything, so then it is used."""
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        return
    wal = path.with_name(path.name + "-wal")
    if empty and not (wal.exists() and wal.stat().st_size > 0):
        raise StoreError(f"database {path} is an empty file (0 bytes), not a mailbot "
                         f"database: restore it from the backup, or delete it to start anew")


def holders(path: Path) -> list[str]:
    """'name pid' of other processes that have the file open (those /proc lets us see)."""
    found, target, own = [], str(path.resolve()), os.getpid()
    for entry in Path("/proc").glob("[0-9]*"):
        if int(entry.name) == own:
            continue
        try:
            if any(os.readlink(fd) == target for fd in (entry / "fd").iterdir()):
                found.append(f"{(entry / 'comm').read_text().strip()} {entry.name}")
        except OSError:
            continue
    return found


def explain(exc: BaseException, path: Path) -> str:
    """One line for an organiser about a database error, with what to do."""
    text = str(exc)
    if isinstance(exc, StoreError):
        return text
    low = text.lower()
    if "locked" in low or "busy" in low:
        who = holders(path)
        by = f" by {', '.join(who)}" if who else " by another program"
        return (f"database {path} is locked{by}: close that program (or wait until it is "
                f"done) and try again; nothing was lost")
    if "full" in low:
        return (f"database {path}: the disk is full; free some space and try again "
                f"(nothing was lost)")
    if "malformed" in low or "not a database" in low:
        return (f"database {path} is damaged or not a database ({text}): restore it from "
                f"the backup")
    if "disk i/o" in low or "readonly" in low or "unable to open" in low:
        return (f"database {path}: {text}; check the disk and the file's permissions, "
                f"restore it from the backup if it is damaged")
    return f"database {path}: {text}"


class Store(Messages, Registrations, Outbox, State):
    """The database at ``path``; created 0600 with its folder 0700 when missing, whole
    or not at all (``store.file.create``). So mailbot never leaves a 0-byte file, and one found is
    refused, not taken as new: emptied from outside (a failed copy, a full disk) it cannot
    be told from one nothing was written into — only an earlier mailbot killed at its very
    first start made those, and deleting it then loses nothing. A context manager: ``with
    Store(path) as store:`` closes it at the end."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.identity: tuple[int, int] | None = None  # (device, inode) as opened
        self._immediate = False  # inside immediate()
        try:
            self._open(str(path) == ":memory:")
        except sqlite3.Error as exc:
            raise StoreError(explain(exc, self.path)) from None

    def _open(self, memory: bool) -> None:
        if memory:
            self.db = sqlite_utils.Database(memory=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _refuse_empty(self.path)
            if not self.path.exists():
                create(self.path, MIGRATIONS)
            fd = os.open(self.path, os.O_RDWR)
            info = os.fstat(fd)
            os.close(fd)
            self.identity = (info.st_dev, info.st_ino)
            self.db = sqlite_utils.Database(self.path)
            self.db.enable_wal()
            # WAL + NORMAL: a commit survives a crash of mailbot (not a power cut of the
            # last moments) and costs no fsync per mail.
            self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA secure_delete = ON")  # deleted personal data is overwritten
        self._refuse_foreign()
        self.migrate()

    def _refuse_foreign(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        if version == 0 and tables:
            raise StoreError(f"database {self.path}: a SQLite file of another program (tables "
                             f"{', '.join(sorted(tables)[:3])}), not mailbot's; check "
                             f"[database] path")
        if version > len(MIGRATIONS):
            raise StoreError(f"database {self.path}: made by a newer mailbot (schema "
                             f"{version}); update mailbot")

    def check_file(self) -> None:
        """Raises StoreError unless the database file is still the one opened: deleted or
        replaced while mailbot runs, every write would go into a file nobody will see."""
        if self.identity is None:
            return
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"database {self.path} was deleted while mailbot was running: "
                             f"stopped, nothing more is moved; restore it from the backup "
                             f"and start mailbot again") from None
        if (info.st_dev, info.st_ino) != self.identity:
            raise StoreError(f"database {self.path} was replaced by another file while "
                             f"mailbot was running: stopped, nothing more is moved; start "
                             f"mailbot again to use the new file")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def immediate(self) -> Iterator[None]:
        """Read, decide and write as one: the write lock is taken before the first read
        (BEGIN IMMEDIATE; another process waits up to busy_timeout), so `mailbot add` and
        the service cannot both find a person unregistered and both confirm them. Writes
        inside join this transaction; nested calls are part of the outer one. A failed
        COMMIT rolls back, so no transaction is ever left open."""
        if self._immediate:
            yield
            return
        if self.db.conn.in_transaction:  # a deferred one would not hold the write lock
            raise RuntimeError("immediate() inside a transaction it did not open")
        self.db.execute("BEGIN IMMEDIATE")
        self._immediate = True
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        finally:
            self._immediate = False

    @contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """A lock another program holds is waited for ``seconds`` at most, instead of the
        whole busy_timeout — for a write whose caller has somewhere else to put it."""
        self.db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        try:
            yield
        finally:  # set once at open and nowhere else: no need to read it back per reply
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def migrate(self) -> None:
        migrate(self.db, MIGRATIONS)

    @classmethod
    def in_memory_copy(cls, path: Path) -> Store:
        """A private in-memory copy of the database at ``path`` (read-only access; an empty
        one when there is no file yet): `preview --inbox` decides against it and writes
        into it, so the real database is never touched."""
        copy = cls(":memory:")
        if path.exists():
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                source.backup(copy.db.conn)
            finally:
                source.close()
            copy.migrate()
        return copy

    def counts(self, table: str, column: str) -> dict[str, int]:
        if table not in ("messages", "registrations", "outbox") or not column.isidentifier():
            raise ValueError(f"no such table or column: {table}.{column}")
        sql = f"SELECT {column}, count(*) FROM {table} GROUP BY {column}"
        return {row[0]: row[1] for row in self.db.execute(sql).fetchall()}

    def about(self, email: str) -> dict[str, Any]:
        """What is stored about one address (for the question before `forget`)."""
        email = email.lower()
        reg = self.db.execute("SELECT name, status FROM registrations WHERE email = ?",
                              [email]).fetchone()
        (replies,) = self.db.execute("SELECT count(*) FROM outbox WHERE recipient = ?",
                                     [email]).fetchone()
        (mails,) = self.db.execute("SELECT count(*) FROM messages WHERE sender = ?",
                                   [email]).fetchone()
        return {"name": reg[0] if reg else None, "status": reg[1] if reg else None,
                "replies": replies, "mails": mails}

    def erase_person(self, email: str, name: str | None,
                     name_forms: Iterable[str] = ()) -> dict[str, int]:
        """Remove a person's data: their registration, every reply to them or naming them
        (``name_forms``: the name as it stands in a reply body, e.g. quoted-printable),
        their notices; their mails keep only a hash of the sender. Then the free pages,
        the write-ahead log and the file are cleaned (secure_delete, checkpoint, VACUUM)."""
        email = email.lower()
        needles = [email] + ([name] if name else [])
        needles += [form for form in name_forms if form not in needles]
        counts = {}
        with self.db.atomic():
            own = self.message_keys(email) | {key for (key,) in self.db.execute(
                "SELECT message_id FROM registrations WHERE email = ?", [email]).fetchall()}
            self.settle_erased(now_utc(), own)  # deleted from the mailbox with her data
            counts["registrations"] = self.db.execute(
                "DELETE FROM registrations WHERE email = ?", [email]).rowcount
            self.db.execute("UPDATE registrations SET registered_by = ? WHERE registered_by = ?",
                            [erased(email), email])
            # the organiser's digests list everyone (their CSV is base64: no needle finds
            # a name there); they are a day's overview, so they all go
            self.db.execute("DELETE FROM outbox WHERE kind = 'digest'")
            counts["replies"] = self.db.execute(
                "DELETE FROM outbox WHERE recipient = ? OR "
                + " OR ".join("instr(body, ?) > 0" for _ in needles),
                [email, *(n.encode() for n in needles)]).rowcount
            counts["mails"] = self.db.execute(
                "UPDATE messages SET sender = ?, subject = NULL, excerpt = NULL, waits_for = NULL "
                "WHERE sender = ?", [erased(email), email]).rowcount
            for needle in needles:
                self.db.execute("UPDATE messages SET excerpt = NULL WHERE instr(excerpt, ?) > 0",
                                [needle])
                self.db.execute("UPDATE messages SET subject = NULL WHERE instr(subject, ?) > 0",
                                [needle])  # "Anmeldung Anna Arndt" from whoever registered her
            self.db.execute("DELETE FROM notices WHERE email = ?", [email])
            parts = needles + [w for w in (name or "").split() if len(w) >= 3]
            for key, sender, reason in self.db.execute(
                    "SELECT message_id, sender, reason FROM messages WHERE reason IS NOT NULL"
                    ).fetchall():
                if sender == erased(email) or any(p in reason for p in parts):
                    # the quoted sentences a reason rests on may name the person
                    reason = QUOTED.sub("‚…‘", reason.replace(email, erased(email)))
                    self.db.execute("UPDATE messages SET reason = ? WHERE message_id = ?",
                                    [reason, key])
        self.compact()
        return counts

    def erase_all(self, now: dt.datetime) -> dict[str, int]:
        """Retention: every person's data of the event goes; the mails keep their action
        and reason (no sender, no subject) and the counts survive in the state table."""
        counts = self.counts("registrations", "status")
        with self.db.atomic():
            self.set_state("purged_counts",
                           ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), now)
            self.settle_erased(now)  # the mails are deleted with the rest: review is empty
            self.db.execute("DELETE FROM registrations")
            self.db.execute("DELETE FROM outbox")
            self.db.execute("DELETE FROM notices")
            self.db.execute("UPDATE messages SET sender = NULL, subject = NULL, excerpt = NULL, "
                            "waits_for = NULL")
            for key, reason in self.db.execute(
                    "SELECT message_id, reason FROM messages WHERE instr(reason, '@') > 0 "
                    "OR instr(reason, '‚') > 0").fetchall():
                self.db.execute("UPDATE messages SET reason = ? WHERE message_id = ?",
                                [QUOTED.sub("‚…‘", ADDR_RE.sub("…", reason)), key])
        self.compact()
        return counts

    def compact(self) -> None:
        """Write the log back and rebuild the file, so deleted data is gone from disk."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def backup_folder(self) -> Path:
        """Where `forget` and `purge` put their backups: ``backups/`` beside the database."""
        return self.path.parent / "backups"

    def backup(self, folder: Path, keep_days: int, now: dt.datetime) -> Path:
        """A copy of the whole database (SQLite's online backup: consistent while the
        service writes) as ``folder/mailbot-YYYYmmdd-HHMMSS.sqlite``, mode 0600, before an
        erasure; copies older than ``keep_days`` are removed here too. It is written under
        a temporary name and gets its own only when complete: a full disk leaves no
        half-written copy that looks like the newest good backup."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / f"mailbot-{now.astimezone(dt.UTC):%Y%m%d-%H%M%S}.sqlite"
        fd, tmp = tempfile.mkstemp(prefix=".mailbot-", suffix=".part", dir=folder)  # 0600
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as dest:
                self.db.conn.backup(dest)
            os.replace(tmp, target)
            sync_folder(folder)
        finally:
            for leftover in (tmp, tmp + "-journal"):
                Path(leftover).unlink(missing_ok=True)
        prune_backups(folder, keep_days, now)
        return target

    def schema_version(self) -> int:
        """The schema the database is at (its migrations' count), for `mailbot check`."""
        return self.db.execute("PRAGMA user_version").fetchone()[0]


# What a store call may raise: StoreError, and sqlite3's own errors of single reads and
# writes (see StoreError). Callers catch this instead of importing sqlite3.
DATABASE_ERRORS: tuple[type[StoreError], type[sqlite3.Error]] = (StoreError, sqlite3.Error)


def no_database(path: Path) -> str:
    """The one line for a command that needs the database before mailbot made it."""
    return _("no database at {path} yet: mailbot has not run with this configuration "
             "([database] path)").format(path=path)


def prune_backups(folder: Path, keep_days: int, now: dt.datetime,
                  everything: bool = False, keep_newest: bool = False) -> list[Path]:
    """Remove the backups in ``folder`` made more than ``keep_days`` ago (``everything``:
    all of them — the retention period is over, and a backup must not outlive it;
    ``keep_newest``: never the newest one), and as old half-written ones a kill left
    (``.mailbot-*.part``); returns the backups."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    limit = now.timestamp() + 1 if everything else now.timestamp() - keep_days * 86400
    backups = sorted(folder.glob("mailbot-*.sqlite"))  # named by time: the last is newest
    if keep_newest and not everything:
        backups = backups[:-1]
    for path in [*backups, *folder.glob(".mailbot-*.part*")]:
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            if not path.name.startswith("."):
                removed.append(path)
    return removed
