"""The store's ``outbox`` table: one row per reply, from queued to sent (or failed,
bounced). How long to wait after a failure is the caller's rule (``outbox.after_failure``):
the store only records what it is told."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from mailbot.core.addresses import mailbox, org_domain
from mailbot.core.clock import iso
from mailbot.store.rows import Tables

# After the n-th failed attempt: (the error to record, the delay before the next one — None
# when the reply is given up).
NextTry = Callable[[int], tuple[str, dt.timedelta | None]]


class Outbox(Tables):
    """Replies to send, their attempts, their copies in the Sent folder and their bounces."""

    def pending_replies(self, now: dt.datetime) -> list[dict[str, Any]]:
        """Outbox rows to send now, oldest first: queued ones whose retry time has come, and
        any left ``sending`` by a crash (resent: a duplicate is better than a loss)."""
        return list(self.db.query(
            "SELECT id, recipient, kind, body FROM outbox WHERE status = 'sending' OR "
            "(status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)) "
            "ORDER BY id", [iso(now)]))

    def replies_since(self, since: dt.datetime,
                      addresses: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
        """Replies made since ``since`` to the mailboxes of these addresses (``+tag``
        aside), and to their registrable domains — keyed by ``core.addresses.mailbox`` and
        ``org_domain``; both use an index, so the cost does not grow with the outbox."""
        per_mailbox: Counter[str] = Counter()
        per_domain: Counter[str] = Counter()
        for address in set(addresses):
            box, domain = mailbox(address), org_domain(address)
            if box not in per_mailbox:
                (per_mailbox[box],) = self.db.execute(
                    "SELECT count(*) FROM outbox WHERE recipient_mailbox = ? "
                    "AND created_at >= ?", [box, iso(since)]).fetchone()
            if domain not in per_domain:
                (per_domain[domain],) = self.db.execute(
                    "SELECT count(*) FROM outbox WHERE recipient_org_domain = ? "
                    "AND created_at >= ?", [domain, iso(since)]).fetchone()
        return per_mailbox, per_domain

    def replies_after(self, reply_id: int) -> list[dict[str, Any]]:
        """Outbox rows (id, recipient, kind) added after ``reply_id``."""
        return list(self.db.query("SELECT id, recipient, kind FROM outbox WHERE id > ? "
                                  "ORDER BY id", [reply_id]))

    def replies_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Outbox rows (recipient, kind, status) by id."""
        rows: dict[int, dict[str, Any]] = {}
        for reply_id in set(ids):
            row = self.db.execute("SELECT recipient, kind, status FROM outbox WHERE id = ?",
                                  [reply_id]).fetchone()
            if row is not None:
                rows[reply_id] = {"recipient": row[0], "kind": row[1], "status": row[2]}
        return rows

    def is_ours(self, message_id: str, kind: str) -> bool:
        """Whether mailbot itself queued a mail of this kind with this Message-ID."""
        return self.db.execute("SELECT 1 FROM outbox WHERE message_id = ? AND kind = ? LIMIT 1",
                               [message_id, kind]).fetchone() is not None

    def failed_replies(self, limit: int = 5) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT recipient, kind, last_error, attempts FROM outbox WHERE status = 'failed' "
            "ORDER BY id DESC LIMIT ?", [limit]))

    def count_interrupted(self, now: dt.datetime, next_try: NextTry) -> int:
        """Replies left ``sending`` by a process that ended during their SMTP transaction
        (killed, watchdog) count as an attempt: queued again to be sent now, or given up
        when ``next_try`` says so — a reply that kills mailbot each time cannot loop
        forever. Only called by the holder of the lock, so no other process is sending
        them."""
        with self.db.atomic():
            rows = self.db.execute("SELECT id FROM outbox WHERE status = 'sending'").fetchall()
            for (reply_id,) in rows:
                self._attempt_failed(reply_id, now, next_try, at_once=True)
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

    def mark_attempt_failed(self, reply_id: int, now: dt.datetime, next_try: NextTry) -> None:
        """A failed send: queued again with a later ``next_attempt_at``, or ``failed``
        when ``next_try`` (given the number of attempts so far) gives no delay."""
        with self.db.atomic():
            self._attempt_failed(reply_id, now, next_try)

    def _attempt_failed(self, reply_id: int, now: dt.datetime, next_try: NextTry,
                        at_once: bool = False) -> None:
        (attempts,) = self.db.execute("SELECT attempts + 1 FROM outbox WHERE id = ?",
                                      [reply_id]).fetchone()
        error, delay = next_try(attempts)
        retry_at = None if delay is None or at_once else iso(now + delay)
        self.db.execute(
            "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, "
            "next_attempt_at = ? WHERE id = ?",
            ["failed" if delay is None else "queued", attempts, error[:500], retry_at,
             reply_id])

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

    def bounced_reply(self, message_ids: Iterable[str],
                      recipients: Iterable[str]) -> dict[str, Any] | None:
        """The sent reply a bounce returns: one whose Message-ID the bounce quotes, to an
        address it reports as failed. None when it quotes none of ours: a report naming a
        person is no evidence on its own (anyone can write one), only our Message-ID in the
        returned headers is (real MTAs quote them)."""
        ids, addresses = list(message_ids), list(recipients)
        if not ids or not addresses:
            return None
        ids_in = ", ".join("?" for _ in ids)
        addresses_in = ", ".join("?" for _ in addresses)
        row = self.db.execute(
            f"SELECT id, recipient, kind FROM outbox WHERE status IN ('sent', 'bounced') AND "
            f"message_id IN ({ids_in}) AND recipient IN ({addresses_in}) "
            f"ORDER BY id DESC LIMIT 1", [*ids, *addresses]).fetchone()
        return {"id": row[0], "recipient": row[1], "kind": row[2]} if row else None

    def quoted_replies(self, message_ids: Iterable[str]) -> list[str]:
        """To whom the sent replies with these Message-IDs went (sorted)."""
        ids = list(message_ids)
        marks = ", ".join("?" for _ in ids)
        return [row[0] for row in self.db.execute(
            f"SELECT DISTINCT recipient FROM outbox WHERE status IN ('sent', 'bounced') AND "
            f"message_id IN ({marks}) ORDER BY recipient", ids).fetchall()] if ids else []

    def replied_to(self, addresses: Iterable[str]) -> list[str]:
        """Those of ``addresses`` that a reply of ours went to (sorted)."""
        return [address for address in sorted(set(addresses)) if self.db.execute(
            "SELECT 1 FROM outbox WHERE recipient = ? AND status IN ('sent', 'bounced') "
            "LIMIT 1", [address]).fetchone()]

    def queued_of(self, kind: str) -> int:
        """How many replies of ``kind`` wait to be sent."""
        return self.db.execute("SELECT count(*) FROM outbox WHERE kind = ? AND status = "
                               "'queued'", [kind]).fetchone()[0]

    def drop_queued(self, kind: str, keep: str) -> int:
        """Delete the replies of ``kind`` still waiting to be sent (not one on its way),
        but the one with Message-ID ``keep``, which replaces them. The number dropped."""
        with self.db.atomic():
            return self.db.execute("DELETE FROM outbox WHERE kind = ? AND status = 'queued' "
                                   "AND message_id != ?", [kind, keep]).rowcount

    def mark_bounced(self, reply_id: int, email: str, status: str, now: dt.datetime) -> None:
        """The reply came back: ``bounced`` with its status code; the person's address is
        ``undeliverable`` (no reminders, no announcements)."""
        code = status or "bounced"
        with self.db.atomic():
            self.db.execute("UPDATE outbox SET status = 'bounced', last_error = ? WHERE id = ?",
                            [f"bounced: {code}", reply_id])
            self.db.execute("UPDATE registrations SET undeliverable = ?, updated_at = ? "
                            "WHERE email = ?", [f"{code} {iso(now)}", iso(now), email])
