"""The store's ``messages`` table: one row per mail handled, written together with the
registrations and replies that follow from it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from mailbot.core.clock import iso
from mailbot.core.models import NEEDS_HUMAN_SQL, Action, Registration, Reply
from mailbot.store.rows import Tables

ERASED_UNANSWERED = "gelöscht, unbeantwortet (forget/purge)"


def note_row(key: str, action: Action, reason: str, at: dt.datetime) -> dict[str, Any]:
    """The ``messages`` row for something that is not a mail of the inbox as read (a
    promotion, an organiser's change, an unreadable mail): no sender, subject or excerpt."""
    return {"message_id": key, "sender": None, "subject": None, "received_at": iso(at),
            "action": action.value, "reason": reason, "needs_attention": 0, "excerpt": None}


class Messages(Tables):
    """Mails handled, and those waiting for a human."""

    def knows_address(self, email: str) -> bool:
        """Whether any mail from, or reply to, this address is stored."""
        return self.db.execute(
            "SELECT 1 FROM messages WHERE sender = ? UNION SELECT 1 FROM outbox "
            "WHERE recipient = ?", [email, email]).fetchone() is not None

    def handled(self, key: str, fingerprint: str | None = None
                ) -> tuple[str, bool, bool] | None:
        """(action, needs attention, settled) recorded for the mail with this key; None if
        it is new. With a ``fingerprint``, a row of another mail's content under the key (a
        row without one matches any) does not count (see :meth:`other_content`)."""
        row = self.db.execute("SELECT action, needs_attention, fingerprint, resolved_at "
                              "FROM messages WHERE message_id = ?", [key]).fetchone()
        if row is None or fingerprint and row[2] and row[2] != fingerprint:
            return None
        return (row[0], bool(row[1]), row[3] is not None)

    def other_content(self, key: str, fingerprint: str) -> bool:
        """Whether the row under ``key`` is of another mail: it has a fingerprint, and not
        this one (a row from before fingerprints were kept matches any mail of its ID)."""
        row = self.db.execute("SELECT fingerprint FROM messages WHERE message_id = ?",
                              [key]).fetchone()
        return bool(row and row[0] and fingerprint and row[0] != fingerprint)

    def sender_of(self, key: str) -> str | None:
        """The sender recorded for the mail with this key (None: none, or no such row)."""
        row = self.db.execute("SELECT sender FROM messages WHERE message_id = ?",
                              [key]).fetchone()
        return row[0] if row else None

    def message(self, key: str) -> dict[str, Any] | None:
        """The ``messages`` row of one mail."""
        rows = list(self.db.query("SELECT action, reason, needs_attention FROM messages "
                                  "WHERE message_id = ?", [key]))
        return rows[0] if rows else None

    def earliest_mail(self) -> dt.datetime | None:
        """When the earliest mail recorded arrived (None: no mail yet)."""
        (first,) = self.db.execute("SELECT min(received_at) FROM messages "
                                   "WHERE message_id NOT LIKE 'manual:%'").fetchone()
        return dt.datetime.fromisoformat(first) if first else None

    def message_keys(self, sender: str | None = None) -> set[str]:
        """The keys (Message-ID or content hash) of the mails handled, or of one sender's."""
        if sender is None:
            rows = self.db.execute("SELECT message_id FROM messages")
        else:
            rows = self.db.execute("SELECT message_id FROM messages WHERE sender = ?",
                                   [sender.lower()])
        return {key for (key,) in rows.fetchall() if not key.startswith("manual:")}

    def own_mail_keys(self, email: str | None = None, needles: Iterable[str] = ()) -> set[str]:
        """The Message-IDs of the mails besides a person's own that `forget` (``email``)
        or `purge` (None: all) takes from the mailbox too: the mail that registered her,
        each reply to her or naming her (``needles``: the note to whoever registered her)
        and every digest (its CSV lists everyone) — in the inbox, processed folder, Sent."""
        if email is None:
            rows = self.db.execute("SELECT message_id FROM outbox")
        else:
            forms = [n.encode() for n in needles if n]
            rows = self.db.execute(
                "SELECT message_id FROM outbox WHERE kind = 'digest' OR recipient = ?"
                + " OR instr(body, ?) > 0" * len(forms)
                + " UNION SELECT message_id FROM registrations WHERE email = ?",
                [email.lower(), *forms, email.lower()])
        return {key for (key,) in rows.fetchall() if key and not key.startswith("manual:")}

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

    def waiting_for_people(self, sender: str, keys: Iterable[str] = ()
                           ) -> list[tuple[str, str, str]]:
        """(key, names, sender) of the mails still waiting for a human because they named people
        without their address — from this sender, or among ``keys`` (In-Reply-To,
        References), or answered by one of our replies among them; oldest first."""
        keys = list(keys)[:20]
        marks = ", ".join("?" * len(keys)) or "NULL"
        return [(k, n, s) for k, n, s in self.db.execute(
            "SELECT message_id, waits_for, sender FROM messages WHERE waits_for IS NOT NULL "
            "AND action = 'review' AND resolved_at IS NULL AND (sender = ? OR message_id IN "
            f"({marks}) OR message_id IN (SELECT in_reply_to FROM outbox WHERE "
            f"message_id IN ({marks}))) ORDER BY received_at",
            [sender, *keys, *keys]).fetchall()]

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
            "excerpt, fingerprint "
            f"FROM messages WHERE {NEEDS_HUMAN_SQL} "
            "AND resolved_at IS NULL ORDER BY received_at, message_id"))

    def resolve(self, key: str, action: str, reason: str, now: dt.datetime,
                registrations: Iterable[Registration] = (),
                replies: Iterable[Reply] = (), by: str | None = None) -> None:
        """An organiser settled a mail: its new action and reason, who decided (``by``:
        the folder or command), with any rows and replies that follow, in one
        transaction; places still held for it are released."""
        with self.db.atomic():
            self.db.execute("UPDATE messages SET action = ?, reason = ?, resolved_at = ?, "
                            "waits_for = NULL, needs_attention = 0, decided_by = ? "
                            "WHERE message_id = ?",
                            [action, reason[:300], iso(now), by, key])
            for reg in registrations:
                self._save_registration(reg, now)
            self.db.execute("DELETE FROM registrations WHERE status = 'held' AND "
                            "message_id = ?", [key])
            for reply in replies:
                self._queue(reply, now)

    def set_reason(self, key: str, reason: str) -> None:
        """A new reason for a mail that still waits (why it came back to the inbox)."""
        with self.db.atomic():
            self.db.execute("UPDATE messages SET reason = ? WHERE message_id = ?",
                            [reason[:300], key])

    def decided_since(self, since: dt.datetime | None) -> list[dict[str, Any]]:
        """Mails for review settled by a human after ``since`` (all when None): action,
        reason, decided_by. One a later mail settled (no ``decided_by``) is mailbot's."""
        return list(self.db.query(
            "SELECT rowid AS id, action, reason, decided_by FROM messages WHERE "
            "resolved_at IS NOT NULL AND decided_by IS NOT NULL "
            "AND (? IS NULL OR resolved_at > ?) ORDER BY resolved_at",
            [iso(since), iso(since)]))

    def settle_erased(self, now: dt.datetime, keys: Iterable[str] | None = None) -> int:
        """Mail waiting for a human that goes with a person's data (``keys``; None: all, at
        `purge`): settled unanswered, so `review` lists no mail that no longer exists."""
        where = f"{NEEDS_HUMAN_SQL} AND resolved_at IS NULL"
        params: list[Any] = [iso(now), ERASED_UNANSWERED]
        if keys is not None:
            keys = list(keys)
            where += f" AND message_id IN ({', '.join('?' * len(keys))})"
            params += keys
        return self.db.execute(
            "UPDATE messages SET resolved_at = ?, needs_attention = 0, "
            "reason = substr(coalesce(reason || '; ', '') || ?, 1, 300) "
            f"WHERE {where}", params).rowcount
