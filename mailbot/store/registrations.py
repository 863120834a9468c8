"""The store's ``registrations`` table: one row per participant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from mailbot.core.addresses import mailbox, org_domain
from mailbot.core.clock import iso
from mailbot.core.models import Registration, Status
from mailbot.store.rows import Tables
from mailbot.store.rows import registration as _registration


class Registrations(Tables):
    """Reading and moving registrations (they are written with their mail: ``record``)."""

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

    def new_registrations(self, keys: Iterable[str], since: dt.datetime) -> dict[str, int]:
        """Registrations that arrived since ``since``, per key: a registrable domain, or
        (a key with @) one mailbox (``core.addresses``)."""
        out = {}
        for key in set(keys):
            where = "mailbox = ?" if "@" in key else "org_domain = ?"
            out[key] = self.db.execute(
                f"SELECT count(*) FROM registrations WHERE {where} AND registered_at >= ?",
                [key, iso(since)]).fetchone()[0]
        return out

    def row_times(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(when the earliest registration came, the newest change of any row)."""
        first, newest = self.db.execute(
            "SELECT min(registered_at), max(max(ifnull(updated_at, ''), registered_at)) "
            "FROM registrations").fetchone()
        (sent,) = self.db.execute("SELECT max(created_at) FROM outbox").fetchone()
        newest = max(filter(None, (newest, sent)), default=None)
        return tuple(dt.datetime.fromisoformat(v) if v else None  # type: ignore[return-value]
                     for v in (first, newest))

    def changed_since(self, since: dt.datetime | None) -> list[dict[str, Any]]:
        """Registrations that arrived or changed after ``since`` (all when None)."""
        return list(self.db.query(
            "SELECT email, name, organisation, status, registered_at, updated_at FROM "
            "registrations WHERE ? IS NULL OR updated_at > ? ORDER BY updated_at, id",
            [iso(since), iso(since)]))

    def change_address(self, old: str, new: str) -> None:
        """A registration (and the reminders it was given) moves to another address, with
        its calendar UID; inside the caller's transaction."""
        self.db.execute("UPDATE registrations SET email = ?, mailbox = ?, org_domain = ? "
                        "WHERE email = ?", [new, mailbox(new), org_domain(new), old])
        self.db.execute("UPDATE notices SET email = ? WHERE email = ?", [new, old])
