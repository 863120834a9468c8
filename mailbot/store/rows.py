"""What every part of the store shares: the connection, plain INSERTs, a reply queued and
a registration saved (in the caller's transaction), and a ``registrations`` row as a value."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlite_utils

from mailbot.core.addresses import mailbox, org_domain
from mailbot.core.clock import iso
from mailbot.core.models import Registration, Reply, Status


class Tables:
    """The base of the store's parts (see ``store.Store``): ``db`` is its connection."""

    db: sqlite_utils.Database

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
            "recipient_mailbox": mailbox(reply.recipient),
            "recipient_org_domain": org_domain(reply.recipient),
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
            "mailbox": mailbox(reg.email), "org_domain": org_domain(reg.email),
        }
        self.db.execute(
            "INSERT INTO registrations (email, name, organisation, status, registered_at, "
            "updated_at, message_id, ics_uid, ics_sequence, registered_by, language, "
            "event_version, mailbox, org_domain) VALUES (:email, :name, :organisation, "
            ":status, :registered_at, :updated_at, :message_id, :ics_uid, :ics_sequence, "
            ":registered_by, :language, :event_version, :mailbox, :org_domain) "
            "ON CONFLICT(email) DO UPDATE SET "
            "name = excluded.name, organisation = excluded.organisation, "
            "status = excluded.status, registered_at = excluded.registered_at, "
            "updated_at = excluded.updated_at, message_id = excluded.message_id, "
            "ics_sequence = excluded.ics_sequence, registered_by = excluded.registered_by, "
            "language = coalesce(excluded.language, registrations.language), "
            "event_version = coalesce(excluded.event_version, registrations.event_version)",
            values,
        )


def registration(row: dict[str, Any]) -> Registration:
    """A ``registrations`` row as a value."""
    return Registration(
        email=row["email"], name=row["name"] or "", organisation=row["organisation"],
        status=Status(row["status"]), ics_uid=row["ics_uid"],
        ics_sequence=row["ics_sequence"] or 0,
        registered_at=dt.datetime.fromisoformat(row["registered_at"]),
        message_id=row["message_id"] or "", registered_by=row.get("registered_by"),
        language=row.get("language"), event_version=row.get("event_version"),
    )
