"""The SQLite log: the only module that knows SQL.

Tables (a documented interface for organisers; see README): ``messages`` (one row per mail
handled), ``registrations`` (one row per participant), ``outbox`` (one row per reply); and
the organisers' views of them in German and local time (``VIEWS``).
Schema changes are numbered migrations tracked in ``PRAGMA user_version``. Every mail's
rows are written together (one transaction, or a savepoint in the batch's), before
anything is sent.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import hashlib
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from .clock import iso, now_utc  # noqa: F401  (re-exported: callers import them from here)
from .models import Registration, Reply, Status
from .text import ADDR_RE

QUOTED = re.compile(r"‚[^‘]*‘")  # a sentence quoted in a reason (the words it rests on)


def _v1(db: sqlite_utils.Database) -> None:
    db["messages"].create(
        {"message_id": str, "sender": str, "subject": str, "received_at": str,
         "processed_at": str, "action": str, "reason": str},
        pk="message_id",
    )
    db["messages"].create_index(["action"])
    db["registrations"].create(
        {"id": int, "email": str, "name": str, "organisation": str, "status": str,
         "registered_at": str, "updated_at": str, "message_id": str, "ics_uid": str,
         "ics_sequence": int},
        pk="id", not_null={"email", "status"},
    )
    db["registrations"].create_index(["email"], unique=True)
    db["registrations"].create_index(["status"])
    db["outbox"].create(
        {"id": int, "recipient": str, "subject": str, "kind": str, "status": str,
         "attempts": int, "last_error": str, "message_id": str, "in_reply_to": str,
         "created_at": str, "sent_at": str, "body": bytes},
        pk="id", not_null={"recipient", "status"}, defaults={"attempts": 0},
    )
    db["outbox"].create_index(["status"])


def _v2(db: sqlite_utils.Database) -> None:
    """Mail a human should read although it was answered; who registered whom; the
    first lines of mail for review (for `mailbot review`)."""
    db["messages"].add_column("needs_attention", int, not_null_default=0)
    db["messages"].add_column("excerpt", str)
    db["registrations"].add_column("registered_by", str)


def _v3(db: sqlite_utils.Database) -> None:
    """Retries with backoff: when a reply that got a temporary refusal may go again."""
    db["outbox"].add_column("next_attempt_at", str)
    db["outbox"].create_index(["recipient", "created_at"])


def _v4(db: sqlite_utils.Database) -> None:
    """Small facts about the service for `mailbot status`: last poll, last error."""
    db["state"].create({"key": str, "value": str, "updated_at": str}, pk="key")


def _v5(db: sqlite_utils.Database) -> None:
    """The language a participant wrote in (their later mails use it), and the notices
    each got once (reminders, announcements), so that none is sent twice."""
    db["registrations"].add_column("language", str)
    db["registrations"].add_column("event_version", str)
    db["notices"].create({"email": str, "key": str, "created_at": str, "sent": int},
                         pk=("email", "key"))


def _v6(db: sqlite_utils.Database) -> None:
    """When an organiser settled a mail that waited for review (approve, dismiss)."""
    db["messages"].add_column("resolved_at", str)


def _v7(db: sqlite_utils.Database) -> None:
    """Daily reply caps per domain, counted through an index instead of a table scan."""
    db["outbox"].add_column("recipient_domain", str)
    db.execute("UPDATE outbox SET recipient_domain = substr(recipient, instr(recipient, '@') + 1)")
    db["outbox"].create_index(["recipient_domain", "created_at"])


def _local(column: str) -> str:
    """SQL: a stored UTC time as the event's local time, "31.05.2027 10:00" (the offset
    in force then, from ``time_zone``; UTC while that table is empty)."""
    return (f"strftime('%d.%m.%Y %H:%M', {column}, coalesce((SELECT z.offset_seconds "
            f"FROM time_zone z WHERE z.utc_from <= datetime({column}) "
            f"ORDER BY z.utc_from DESC LIMIT 1), 0) || ' seconds')")


def _german(column: str, words: dict[str, str]) -> str:
    """SQL: a stored English value in German (unknown values as they are)."""
    cases = " ".join(f"WHEN '{value}' THEN '{word}'" for value, word in words.items())
    return f"CASE {column} {cases} ELSE {column} END"


STATUS_DE = {"confirmed": "bestätigt", "waitlisted": "Warteliste", "cancelled": "abgemeldet"}
LANGUAGE_DE = {"de": "Deutsch", "en": "Englisch"}
REPLY_KIND_DE = {
    "confirmation": "Bestätigung", "waitlisted": "Warteliste", "duplicate": "schon angemeldet",
    "cancellation": "Abmeldung", "not_registered": "Abmeldung, war nicht angemeldet",
    "closed": "Anmeldeschluss vorbei", "on_behalf": "Anmeldung anderer Personen",
    "third_party": "von anderen angemeldet: Nachfrage",
    "reminder": "Erinnerung", "update": "geänderte Angaben",
    "event_cancelled": "Absage der Veranstaltung",
    "address_changed": "neue Adresse (Hinweis an die alte)", "digest": "Tagesübersicht",
    "alert": "Warnung an den Veranstalter",
}
REPLY_STATUS_DE = {"queued": "wartet", "sending": "wird gesendet", "sent": "gesendet",
                   "failed": "fehlgeschlagen", "bounced": "kam unzustellbar zurück"}
# The deciding sentence, where the reason quotes one (‚…‘, as classify and policy write it).
_SENTENCE = ("CASE WHEN instr(m.reason, '‚') > 0 AND instr(substr(m.reason, "
             "instr(m.reason, '‚') + 1), '‘') > 1 THEN substr(m.reason, "
             "instr(m.reason, '‚') + 1, instr(substr(m.reason, instr(m.reason, '‚') + 1), "
             "'‘') - 1) END")

# The organisers' views: a documented interface (README), German column names and words,
# times in the event's time zone; each in the order an organiser reads it. Made by _v8; a
# later change to one is a new migration that drops and re-creates it.
VIEWS = {
    "teilnehmende": f"""
SELECT r.name AS "Name", r.organisation AS "Organisation", r.email AS "E-Mail",
       {_german("r.status", STATUS_DE)} AS "Status",
       {_local("r.registered_at")} AS "angemeldet am",
       r.registered_by AS "angemeldet von",
       {_german("r.language", LANGUAGE_DE)} AS "Sprache"
FROM registrations r ORDER BY r.registered_at, r.id""",
    "warteliste": f"""
SELECT row_number() OVER (ORDER BY r.registered_at, r.id) AS "Platz",
       r.name AS "Name", r.organisation AS "Organisation", r.email AS "E-Mail",
       {_local("r.registered_at")} AS "angemeldet am",
       {_german("r.language", LANGUAGE_DE)} AS "Sprache"
FROM registrations r WHERE r.status = 'waitlisted' ORDER BY r.registered_at, r.id""",
    "zu_beantworten": f"""
SELECT m.rowid AS "Nr.",
       {_local("m.received_at")} AS "Eingang",
       coalesce(m.sender, '(Absender nicht lesbar)') AS "Absender",
       m.subject AS "Betreff", m.reason AS "Grund", {_SENTENCE} AS "Satz",
       CASE WHEN m.action = 'review' THEN 'noch nicht beantwortet'
            ELSE 'beantwortet, aber bitte lesen' END AS "Stand",
       m.excerpt AS "Auszug", m.message_id AS "Message-ID"
FROM messages m WHERE (m.action = 'review' OR m.needs_attention = 1)
  AND m.resolved_at IS NULL
ORDER BY m.received_at, m.message_id""",
    "antworten": f"""
SELECT {_local("o.created_at")} AS "erstellt", o.recipient AS "An",
       {_german("o.kind", REPLY_KIND_DE)} AS "Art", o.subject AS "Betreff",
       CASE WHEN o.status = 'queued' AND o.attempts > 0 THEN 'wartet auf neuen Versuch'
            ELSE {_german("o.status", REPLY_STATUS_DE)} END AS "Status",
       {_local("o.sent_at")} AS "gesendet", o.attempts AS "Versuche",
       o.last_error AS "Antwort des Servers",
       {_local("o.next_attempt_at")} AS "nächster Versuch"
FROM outbox o ORDER BY o.created_at DESC, o.id DESC""",
}


def _v8(db: sqlite_utils.Database) -> None:
    """The organisers' views (German words, local times) and the UTC offsets of the event's
    time zone that they read local time from (see ``Store.use_time_zone``)."""
    db["time_zone"].create({"utc_from": str, "offset_seconds": int, "zone": str},
                           pk="utc_from")
    for name, sql in VIEWS.items():
        db.create_view(name, sql)


def _v9(db: sqlite_utils.Database) -> None:
    """zu_beantworten numbers a mail as `mailbot review` does (the row's id, which stays
    when others are settled); antworten names the two new reply kinds in German."""
    for name in ("zu_beantworten", "antworten"):
        db.execute(f"DROP VIEW IF EXISTS {name}")
        db.create_view(name, VIEWS[name])


def _v10(db: sqlite_utils.Database) -> None:
    """A copy of each sent reply in the IMAP Sent folder (``sent_copy``: saving, saved),
    and bounces: a reply a DSN reports undeliverable (outbox status ``bounced``), its
    registration marked ``undeliverable`` (the DSN's status code and when)."""
    db["outbox"].add_column("sent_copy", str)
    db.execute("UPDATE outbox SET sent_copy = 'before' WHERE status = 'sent'")  # not copied
    db["registrations"].add_column("undeliverable", str)
    db.execute("DROP VIEW IF EXISTS antworten")  # it names the new kind and status
    db.create_view("antworten", VIEWS["antworten"])


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6,
                                                             _v7, _v8, _v9, _v10]


class _Unchanged(Exception):
    """Rolls a notice back: it was given already, or its row changed meanwhile."""


def erased(email: str) -> str:
    """What stands in place of an erased address: a hash, so counts still add up."""
    return "erased:" + hashlib.sha256(email.lower().encode()).hexdigest()[:16]
MAX_ATTEMPTS = 20  # temporary refusals before a reply is given up (about a day of retries)


def retry_delay(attempts: int) -> dt.timedelta:
    """Backoff after the n-th temporary refusal: 1, 2, 4 … minutes, at most 2 hours."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


class StoreError(Exception):
    """Raised when the database cannot be used as it is: a 0-byte or foreign file, a file
    deleted or replaced while mailbot runs. The message is one line with the fix."""


def _refuse_empty(path: Path) -> None:
    """An existing 0-byte file is not a new database: something emptied it (a failed copy,
    a full disk). Its write-ahead log may still hold everything, so then it is used."""
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


class Store:
    """The database at ``path``; created 0600 with its folder 0700 when missing."""

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
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            info = os.fstat(fd)
            os.close(fd)
            self.identity = (info.st_dev, info.st_ino)
            self.db = sqlite_utils.Database(self.path)
            self.db.enable_wal()
            # WAL + NORMAL: a commit survives a crash of mailbot (not a power cut of the
            # last moments) and costs no fsync per mail.
            self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA busy_timeout = 10000")
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

    def migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                step(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    # -- reading -------------------------------------------------------------------

    def handled(self, key: str) -> tuple[str, bool] | None:
        """(action, needs a human) recorded for the mail with this key; None if it is new."""
        row = self.db.execute("SELECT action, needs_attention FROM messages "
                              "WHERE message_id = ?", [key]).fetchone()
        return (row[0], bool(row[1])) if row else None

    def registrations(self, emails: Iterable[str]) -> dict[str, Registration]:
        emails = list(emails)
        if not emails:
            return {}
        marks = ", ".join("?" for _ in emails)
        rows = self.db.query(f"SELECT * FROM registrations WHERE email IN ({marks})", emails)
        return {row["email"]: _registration(row) for row in rows}

    def with_status(self, *statuses: str, reachable: bool = False) -> list[Registration]:
        """Registrations in these states; ``reachable``: only those whose address did not
        bounce (for reminders and announcements)."""
        marks = ", ".join("?" for _ in statuses)
        bounced = " AND undeliverable IS NULL" if reachable else ""
        rows = self.db.query(f"SELECT * FROM registrations WHERE status IN ({marks}){bounced} "
                             f"ORDER BY registered_at, id", list(statuses))
        return [_registration(row) for row in rows]

    def undeliverable_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM registrations WHERE undeliverable IS NOT "
                               "NULL").fetchone()[0]

    def bounced_reply(self, message_ids: Iterable[str],
                      recipients: Iterable[str]) -> dict[str, Any] | None:
        """The sent reply a bounce returns: by the Message-ID it quotes; without any, the
        latest reply to a failed address."""
        ids = list(message_ids)
        if ids:
            marks = ", ".join("?" for _ in ids)
            sql = f"message_id IN ({marks})"
        else:
            ids = list(recipients)
            marks = ", ".join("?" for _ in ids)
            sql = f"recipient IN ({marks})"
        if not ids:
            return None
        row = self.db.execute(
            f"SELECT id, recipient, kind FROM outbox WHERE status IN ('sent', 'bounced') AND "
            f"{sql} ORDER BY id DESC LIMIT 1", ids).fetchone()
        return {"id": row[0], "recipient": row[1], "kind": row[2]} if row else None

    def mark_bounced(self, reply_id: int, email: str, status: str, now: dt.datetime) -> None:
        """The reply came back: ``bounced`` with its status code; the person's address is
        ``undeliverable`` (no reminders, no announcements)."""
        code = status or "bounced"
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET status = 'bounced', last_error = ? WHERE id = ?",
                            [f"bounced: {code}", reply_id])
            self.db.execute("UPDATE registrations SET undeliverable = ?, updated_at = ? "
                            "WHERE email = ?", [f"{code} {iso(now)}", iso(now), email])

    def notices(self, prefix: str) -> set[tuple[str, str]]:
        """(email, key) of every notice whose key starts with ``prefix``."""
        rows = self.db.execute("SELECT email, key FROM notices WHERE key LIKE ? || '%'",
                               [prefix]).fetchall()
        return {(row[0], row[1]) for row in rows}

    def record_notice(self, email: str, key: str, reply: Reply | None, now: dt.datetime,
                      before: Registration | None = None,
                      after: Registration | None = None) -> bool:
        """A notice (reminder, announcement) and its reply, in one transaction, given once.
        With ``before``/``after`` the registration's calendar version moves on — only if
        the row is still as it was read (another process may have changed it meanwhile).
        False when nothing was recorded."""
        try:
            with self.db.atomic():
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO notices (email, key, created_at, sent) "
                    "VALUES (?, ?, ?, ?)", [email, key, iso(now), int(reply is not None)])
                if cursor.rowcount == 0:
                    raise _Unchanged
                if before is not None and after is not None:
                    cursor = self.db.execute(
                        "UPDATE registrations SET ics_sequence = ?, event_version = ?, "
                        "updated_at = ? WHERE email = ? AND status = ? AND ics_sequence = ?",
                        [after.ics_sequence, after.event_version, iso(now), before.email,
                         before.status.value, before.ics_sequence])
                    if cursor.rowcount == 0:
                        raise _Unchanged
                if reply is not None:
                    self._queue(reply, now)
        except _Unchanged:
            return False
        return True

    def registration_rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """Registrations as plain rows, in order of arrival (for lists and exports)."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        return list(self.db.query(f"SELECT * FROM registrations {where} "
                                  f"ORDER BY registered_at, id", params))

    def first_waitlisted(self) -> Registration | None:
        """The waitlisted person who arrived first."""
        rows = list(self.db.query("SELECT * FROM registrations WHERE status = 'waitlisted' "
                                  "ORDER BY registered_at, id LIMIT 1"))
        return _registration(rows[0]) if rows else None

    def confirmed_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM registrations WHERE status = ?",
                               [Status.CONFIRMED.value]).fetchone()[0]

    def pending_replies(self, now: dt.datetime) -> list[dict[str, Any]]:
        """Outbox rows to send now, oldest first: queued ones whose retry time has come, and
        any left ``sending`` by a crash (resent: a duplicate is better than a loss)."""
        return list(self.db.query(
            "SELECT id, recipient, kind, body FROM outbox WHERE status = 'sending' OR "
            "(status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)) "
            "ORDER BY id", [iso(now)]))

    def replies_since(self, since: dt.datetime,
                      addresses: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
        """Replies made since ``since`` to these addresses, and to their domains (both use
        the index on recipient, so the cost does not grow with the outbox)."""
        per_address: Counter[str] = Counter()
        per_domain: Counter[str] = Counter()
        for address in set(addresses):
            (per_address[address],) = self.db.execute(
                "SELECT count(*) FROM outbox WHERE recipient = ? AND created_at >= ?",
                [address, iso(since)]).fetchone()
            domain = address.rpartition("@")[2]
            if domain not in per_domain:
                (per_domain[domain],) = self.db.execute(
                    "SELECT count(*) FROM outbox WHERE recipient_domain = ? AND created_at >= ?",
                    [domain, iso(since)]).fetchone()
        return per_address, per_domain

    def count_notices(self, key_prefix: str, since: dt.datetime) -> int:
        """Notices whose key starts with ``key_prefix`` given since ``since`` (e.g. the
        people registered by others who were mailed: the abuse budgets)."""
        return self.db.execute("SELECT count(*) FROM notices WHERE key LIKE ? || '%' "
                               "AND created_at >= ?", [key_prefix, iso(since)]).fetchone()[0]

    def new_registrations(self, keys: Iterable[str], since: dt.datetime) -> dict[str, int]:
        """Registrations that arrived since ``since``, per key: a domain, or (a key with @)
        one address."""
        out = {}
        for key in set(keys):
            where = "email = ?" if "@" in key else "substr(email, instr(email, '@') + 1) = ?"
            out[key] = self.db.execute(
                f"SELECT count(*) FROM registrations WHERE {where} AND registered_at >= ?",
                [key, iso(since)]).fetchone()[0]
        return out

    def held_for_review(self, reason_prefix: str) -> int:
        """Mail still waiting for a human whose reason begins with ``reason_prefix``."""
        return self.db.execute("SELECT count(*) FROM messages WHERE action = 'review' AND "
                               "resolved_at IS NULL AND reason LIKE ? || '%'",
                               [reason_prefix]).fetchone()[0]

    def for_review(self) -> list[dict[str, Any]]:
        """Mail waiting for a human: review, or answered but flagged; oldest first. ``id``
        is the row's rowid: it never changes (messages rows are never deleted, so VACUUM
        keeps the rowids), and it is the number `review`, `approve` and `dismiss` use."""
        return list(self.db.query(
            "SELECT rowid AS id, message_id, sender, subject, received_at, action, reason, "
            "excerpt "
            "FROM messages WHERE (action = 'review' OR needs_attention = 1) "
            "AND resolved_at IS NULL ORDER BY received_at, message_id"))

    def resolve(self, key: str, action: str, reason: str, now: dt.datetime,
                registrations: Iterable[Registration] = (),
                replies: Iterable[Reply] = ()) -> None:
        """An organiser settled a mail: its new action and reason, with any rows and
        replies that follow, in one transaction."""
        with self.db.atomic():
            self.db.execute("UPDATE messages SET action = ?, reason = ?, resolved_at = ?, "
                            "needs_attention = 0 WHERE message_id = ?",
                            [action, reason[:300], iso(now), key])
            for reg in registrations:
                self._save_registration(reg, now)
            for reply in replies:
                self._queue(reply, now)

    def erase_person(self, email: str, name: str | None) -> dict[str, int]:
        """Remove a person's data: their registration, every reply to them or naming them,
        their notices; their mails keep only a hash of the sender. Then the free pages,
        the write-ahead log and the file are cleaned (secure_delete, checkpoint, VACUUM)."""
        email = email.lower()
        needles = [email] + ([name] if name else [])
        if name and not name.isascii():  # as it stands in a quoted-printable reply body
            needles.append(binascii.b2a_qp(name.encode()).decode("ascii"))
        counts = {}
        with self.db.atomic():
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
                "UPDATE messages SET sender = ?, subject = NULL, excerpt = NULL "
                "WHERE sender = ?", [erased(email), email]).rowcount
            for needle in needles:
                self.db.execute("UPDATE messages SET excerpt = NULL WHERE instr(excerpt, ?) > 0",
                                [needle])
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

    def erase_all(self) -> dict[str, int]:
        """Retention: every person's data of the event goes; the mails keep their action
        and reason (no sender, no subject) and the counts survive in the state table."""
        counts = self.counts("registrations", "status")
        with self.db.atomic():
            self.set_state("purged_counts",
                           ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), now_utc())
            self.db.execute("DELETE FROM registrations")
            self.db.execute("DELETE FROM outbox")
            self.db.execute("DELETE FROM notices")
            self.db.execute("UPDATE messages SET sender = NULL, subject = NULL, excerpt = NULL")
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
        erasure; copies older than ``keep_days`` are removed here too."""
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / f"mailbot-{now.astimezone(dt.UTC):%Y%m%d-%H%M%S}.sqlite"
        fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        dest = sqlite3.connect(target)
        try:
            self.db.conn.backup(dest)
        finally:
            dest.close()
        prune_backups(folder, keep_days, now)
        return target

    def change_address(self, old: str, new: str) -> None:
        """A registration (and the reminders it was given) moves to another address, with
        its calendar UID; inside the caller's transaction."""
        self.db.execute("UPDATE registrations SET email = ? WHERE email = ?", [new, old])
        self.db.execute("UPDATE notices SET email = ? WHERE email = ?", [new, old])

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

    def message(self, key: str) -> dict[str, Any] | None:
        """The ``messages`` row of one mail."""
        rows = list(self.db.query("SELECT action, reason, needs_attention FROM messages "
                                  "WHERE message_id = ?", [key]))
        return rows[0] if rows else None

    def replies_after(self, reply_id: int) -> list[dict[str, Any]]:
        """Outbox rows (id, recipient, kind) added after ``reply_id``."""
        return list(self.db.query("SELECT id, recipient, kind FROM outbox WHERE id > ? "
                                  "ORDER BY id", [reply_id]))

    def changed_since(self, since: dt.datetime | None) -> list[dict[str, Any]]:
        """Registrations that arrived or changed after ``since`` (all when None)."""
        return list(self.db.query(
            "SELECT email, name, organisation, status, registered_at, updated_at FROM "
            "registrations WHERE ? IS NULL OR updated_at > ? ORDER BY updated_at, id",
            [iso(since), iso(since)]))

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

    def message_keys(self, sender: str | None = None) -> set[str]:
        """The keys (Message-ID or content hash) of the mails handled, or of one sender's."""
        if sender is None:
            rows = self.db.execute("SELECT message_id FROM messages")
        else:
            rows = self.db.execute("SELECT message_id FROM messages WHERE sender = ?",
                                   [sender.lower()])
        return {key for (key,) in rows.fetchall() if not key.startswith("manual:")}

    def get_state(self, key: str) -> tuple[str, str] | None:
        """(value, updated_at) of a service fact, or None."""
        row = self.db.execute("SELECT value, updated_at FROM state WHERE key = ?",
                              [key]).fetchone()
        return (row[0], row[1]) if row else None

    def set_state(self, key: str, value: str, now: dt.datetime,
                  limit: int | None = 500) -> None:
        with self.db.atomic():
            self.db.execute("INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                            "updated_at = excluded.updated_at", [key, value[:limit], iso(now)])

    def use_time_zone(self, zone: str) -> None:
        """Make the views show times in ``zone`` (the event's): its UTC offsets 2000–2100
        go into ``time_zone``, once per change of zone."""
        current = self.get_state("time_zone")
        if current is not None and current[0] == zone:
            return
        with self.db.atomic():
            self.db.execute("DELETE FROM time_zone")
            self.db.conn.executemany(
                "INSERT INTO time_zone (utc_from, offset_seconds, zone) VALUES (?, ?, ?)",
                [(start, offset, zone) for start, offset in zone_offsets(zone)])
            self.set_state("time_zone", zone, now_utc())

    def failed_replies(self, limit: int = 5) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT recipient, kind, last_error, attempts FROM outbox WHERE status = 'failed' "
            "ORDER BY id DESC LIMIT ?", [limit]))

    def counts(self, table: str, column: str) -> dict[str, int]:
        if table not in ("messages", "registrations", "outbox") or not column.isidentifier():
            raise ValueError(f"no such table or column: {table}.{column}")
        sql = f"SELECT {column}, count(*) FROM {table} GROUP BY {column}"
        return {row[0]: row[1] for row in self.db.execute(sql).fetchall()}

    # -- writing -------------------------------------------------------------------

    def record(self, message: dict[str, Any], registrations: Iterable[Registration],
               replies: Iterable[Reply], now: dt.datetime,
               notices: Iterable[tuple[str, str]] = ()) -> None:
        """A mail's rows, its participants' new state, its replies and (email, key)
        notices, in one transaction (a savepoint when the caller holds one already)."""
        with self.db.atomic():
            self._insert("messages", {**message, "processed_at": iso(now)})
            for reg in registrations:
                self._save_registration(reg, now)
            for reply in replies:
                self._queue(reply, now)
            for email, key in notices:
                self.db.execute("INSERT OR IGNORE INTO notices (email, key, created_at, sent) "
                                "VALUES (?, ?, ?, 1)", [email, key, iso(now)])

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        """A plain INSERT (sqlite-utils' insert looks up the schema each time: a third of
        the cost of recording a mail)."""
        columns = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row)

    def _queue(self, reply: Reply, now: dt.datetime) -> None:
        self._insert("outbox", {
            "recipient": reply.recipient, "subject": reply.subject,
            "recipient_domain": reply.recipient.rpartition("@")[2],
            "kind": reply.kind.value, "status": "queued", "attempts": 0,
            "message_id": reply.message_id, "in_reply_to": reply.in_reply_to,
            "created_at": iso(now), "body": reply.body,
        })

    def _save_registration(self, reg: Registration, now: dt.datetime) -> None:
        values = {
            "email": reg.email, "name": reg.name, "organisation": reg.organisation,
            "status": reg.status.value, "registered_at": iso(reg.registered_at),
            "updated_at": iso(now), "message_id": reg.message_id, "ics_uid": reg.ics_uid,
            "ics_sequence": reg.ics_sequence, "registered_by": reg.registered_by,
            "language": reg.language, "event_version": reg.event_version,
        }
        self.db.execute(
            "INSERT INTO registrations (email, name, organisation, status, registered_at, "
            "updated_at, message_id, ics_uid, ics_sequence, registered_by, language, "
            "event_version) VALUES (:email, :name, :organisation, :status, :registered_at, "
            ":updated_at, :message_id, :ics_uid, :ics_sequence, :registered_by, :language, "
            ":event_version) ON CONFLICT(email) DO UPDATE SET "
            "name = excluded.name, organisation = excluded.organisation, "
            "status = excluded.status, registered_at = excluded.registered_at, "
            "updated_at = excluded.updated_at, message_id = excluded.message_id, "
            "ics_sequence = excluded.ics_sequence, registered_by = excluded.registered_by, "
            "language = coalesce(excluded.language, registrations.language), "
            "event_version = coalesce(excluded.event_version, registrations.event_version)",
            values,
        )

    def count_interrupted(self, now: dt.datetime) -> int:
        """Replies left ``sending`` by a process that ended during their SMTP transaction
        (killed, watchdog) count as an attempt: queued again to be sent now, given up after
        MAX_ATTEMPTS — a reply that kills mailbot each time cannot loop forever. Only
        called by the holder of the lock, so no other process is sending them."""
        with self.db.atomic():
            rows = self.db.execute("SELECT id FROM outbox WHERE status = 'sending'").fetchall()
            for (reply_id,) in rows:
                self._attempt_failed(reply_id, "interrupted: mailbot ended while sending it",
                                     False, now, at_once=True)
        return len(rows)

    def release(self, reply_id: int) -> None:
        """Back to the queue untouched: the server refused us, not this reply."""
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET status = 'queued' WHERE id = ? AND "
                            "status = 'sending'", [reply_id])

    def mark_sending(self, reply_id: int) -> None:
        """Committed just before the SMTP transaction: a crash leaves it ``sending``."""
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET status = 'sending' WHERE id = ?", [reply_id])

    def mark_sent(self, reply_id: int, now: dt.datetime) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, "
                            "attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL "
                            "WHERE id = ?", [iso(now), reply_id])

    def mark_attempt_failed(self, reply_id: int, error: str, permanent: bool,
                            now: dt.datetime, retry_after: dt.timedelta | None = None) -> None:
        """A failed send: queued again with a later ``next_attempt_at`` (4xx, a lost
        connection), or ``failed`` when refused for good (5xx) or tried too often. With
        ``retry_after`` (the server said "slow down") it stays queued, however often."""
        with self.db.atomic():
            self._attempt_failed(reply_id, error, permanent, now, retry_after=retry_after)

    def _attempt_failed(self, reply_id: int, error: str, permanent: bool, now: dt.datetime,
                        at_once: bool = False, retry_after: dt.timedelta | None = None) -> None:
        (attempts,) = self.db.execute("SELECT attempts + 1 FROM outbox WHERE id = ?",
                                      [reply_id]).fetchone()
        if attempts >= MAX_ATTEMPTS and not permanent and retry_after is None:
            permanent, error = True, f"{error} (given up after {attempts} attempts)"
        delay = retry_after if retry_after is not None else retry_delay(attempts)
        retry_at = None if at_once else iso(now + delay)
        self.db.execute(
            "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, "
            "next_attempt_at = ? WHERE id = ?",
            ["failed" if permanent else "queued", attempts, error[:500],
             None if permanent else retry_at, reply_id])

    def copies_to_save(self, since: dt.datetime, limit: int = 50) -> list[dict[str, Any]]:
        """Sent replies (since ``since``) without their copy in the Sent folder yet; those
        ``saving`` may be there already (a crash after the APPEND)."""
        return list(self.db.query(
            "SELECT id, message_id, body, sent_at, sent_copy FROM outbox WHERE status = 'sent' "
            "AND (sent_copy IS NULL OR sent_copy = 'saving') AND kind != 'alert' "
            "AND sent_at > ? ORDER BY id LIMIT ?", [iso(since), limit]))

    def mark_copy(self, reply_id: int, state: str) -> None:
        """``saving`` just before the APPEND, ``saved`` after it."""
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET sent_copy = ? WHERE id = ?", [state, reply_id])

    def sent_since(self, since: dt.datetime) -> list[dt.datetime]:
        """When each reply sent after ``since`` went (for the sending limits)."""
        rows = self.db.execute("SELECT sent_at FROM outbox WHERE status = 'sent' AND "
                               "sent_at > ?", [iso(since)]).fetchall()
        return [dt.datetime.fromisoformat(row[0]) for row in rows]

    def schema_version(self) -> int:
        """The schema the database is at (its migrations' count), for `mailbot check`."""
        return self.db.execute("PRAGMA user_version").fetchone()[0]


# What a store call may raise: its own StoreError, and (not yet wrapped by the methods)
# sqlite3's. Callers catch this instead of importing sqlite3.
DATABASE_ERRORS: tuple[type[Exception], ...] = (StoreError, sqlite3.Error)


def no_database(path: Path) -> str:
    """The one line for a command that needs the database before mailbot made it."""
    return (f"no database at {path} yet: mailbot has not run with this configuration "
            f"([database] path)")


def prune_backups(folder: Path, keep_days: int, now: dt.datetime,
                  everything: bool = False) -> list[Path]:
    """Remove the backups in ``folder`` made more than ``keep_days`` ago (``everything``:
    all of them — the retention period is over, and a backup must not outlive it)."""
    removed = []
    if not folder.is_dir():
        return removed
    limit = now.timestamp() + 1 if everything else now.timestamp() - keep_days * 86400
    for path in folder.glob("mailbot-*.sqlite"):
        if path.stat().st_mtime < limit:
            path.unlink()
            removed.append(path)
    return removed


@functools.lru_cache(maxsize=4)
def zone_offsets(zone: str, first: int = 2000, last: int = 2100) -> tuple[tuple[str, int], ...]:
    """(UTC start "YYYY-MM-DD HH:MM:SS", offset in seconds) of each period of ``zone``
    between the years ``first`` and ``last``; the first period reaches back to year 0."""
    tz = ZoneInfo(zone)

    def offset(seconds: int) -> int:
        return int(dt.datetime.fromtimestamp(seconds, tz).utcoffset().total_seconds())

    def text(seconds: int) -> str:
        return f"{dt.datetime.fromtimestamp(seconds, dt.UTC):%Y-%m-%d %H:%M:%S}"

    day = 86400
    t = int(dt.datetime(first, 1, 1, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(last, 1, 1, tzinfo=dt.UTC).timestamp())
    periods = [("0000-01-01 00:00:00", offset(t))]
    while t < end:
        if offset(t + day) != periods[-1][1]:
            low, high = t, t + day  # the change lies in (low, high]: halve to the second
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == periods[-1][1] else (low, middle)
            periods.append((text(high), offset(high)))
        t += day
    return tuple(periods)


def _registration(row: dict[str, Any]) -> Registration:
    return Registration(
        email=row["email"], name=row["name"] or "", organisation=row["organisation"],
        status=Status(row["status"]), ics_uid=row["ics_uid"],
        ics_sequence=row["ics_sequence"] or 0,
        registered_at=dt.datetime.fromisoformat(row["registered_at"]),
        message_id=row["message_id"] or "", registered_by=row.get("registered_by"),
        language=row.get("language"), event_version=row.get("event_version"),
    )
