"""The store's small tables: ``state`` (facts about the service for `mailbot status`),
``notices`` (what each person was told once) and ``time_zone`` (for the views)."""

from __future__ import annotations

import datetime as dt

from mailbot.core.clock import iso
from mailbot.core.models import Registration, Reply
from mailbot.store.migrations import zone_offsets
from mailbot.store.rows import Tables


class _Unchanged(Exception):
    """Rolls a notice back: it was given already, or its row changed meanwhile."""


class State(Tables):
    """Service facts, notices given, the event's time zone."""

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

    def use_time_zone(self, zone: str, now: dt.datetime) -> None:
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
            self.set_state("time_zone", zone, now)

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

    def count_notices(self, key_prefix: str, since: dt.datetime) -> int:
        """Notices whose key starts with ``key_prefix`` given since ``since`` (e.g. the
        people registered by others who were mailed: the abuse budgets)."""
        return self.db.execute("SELECT count(*) FROM notices WHERE key LIKE ? || '%' "
                               "AND created_at >= ?", [key_prefix, iso(since)]).fetchone()[0]
