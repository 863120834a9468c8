"""The schema of the SQLite log: numbered migrations (tracked in ``PRAGMA user_version``)
and the organisers' views in German and local time (``VIEWS``, a documented interface).

A schema change is a new function at the end of ``MIGRATIONS``; a change to a view is a
migration that drops and re-creates it. Only the store runs these.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

import sqlite_utils

from mailbot.core.addresses import mailbox, org_domain


def _v1(db: sqlite_utils.Database) -> None:
    db.table("messages").create(
        {"message_id": str, "sender": str, "subject": str, "received_at": str,
         "processed_at": str, "action": str, "reason": str},
        pk="message_id",
    )
    db.table("messages").create_index(["action"])
    db.table("registrations").create(
        {"id": int, "email": str, "name": str, "organisation": str, "status": str,
         "registered_at": str, "updated_at": str, "message_id": str, "ics_uid": str,
         "ics_sequence": int},
        pk="id", not_null={"email", "status"},
    )
    db.table("registrations").create_index(["email"], unique=True)
    db.table("registrations").create_index(["status"])
    db.table("outbox").create(
        {"id": int, "recipient": str, "subject": str, "kind": str, "status": str,
         "attempts": int, "last_error": str, "message_id": str, "in_reply_to": str,
         "created_at": str, "sent_at": str, "body": bytes},
        pk="id", not_null={"recipient", "status"}, defaults={"attempts": 0},
    )
    db.table("outbox").create_index(["status"])


def _v2(db: sqlite_utils.Database) -> None:
    """Mail a human should read although it was answered; who registered whom; the
    first lines of mail for review (for `mailbot review`)."""
    db.table("messages").add_column("needs_attention", int, not_null_default=0)
    db.table("messages").add_column("excerpt", str)
    db.table("registrations").add_column("registered_by", str)


def _v3(db: sqlite_utils.Database) -> None:
    """Retries with backoff: when a reply that got a temporary refusal may go again."""
    db.table("outbox").add_column("next_attempt_at", str)
    db.table("outbox").create_index(["recipient", "created_at"])


def _v4(db: sqlite_utils.Database) -> None:
    """Small facts about the service for `mailbot status`: last poll, last error."""
    db.table("state").create({"key": str, "value": str, "updated_at": str}, pk="key")


def _v5(db: sqlite_utils.Database) -> None:
    """The language a participant wrote in (their later mails use it), and the notices
    each got once (reminders, announcements), so that none is sent twice."""
    db.table("registrations").add_column("language", str)
    db.table("registrations").add_column("event_version", str)
    db.table("notices").create({"email": str, "key": str, "created_at": str, "sent": int},
                         pk=("email", "key"))


def _v6(db: sqlite_utils.Database) -> None:
    """When an organiser settled a mail that waited for review (approve, dismiss)."""
    db.table("messages").add_column("resolved_at", str)


def _v7(db: sqlite_utils.Database) -> None:
    """Daily reply caps per domain, counted through an index instead of a table scan."""
    db.table("outbox").add_column("recipient_domain", str)
    db.execute("UPDATE outbox SET recipient_domain = substr(recipient, instr(recipient, '@') + 1)")
    db.table("outbox").create_index(["recipient_domain", "created_at"])


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


STATUS_DE = {"confirmed": "bestätigt", "waitlisted": "Warteliste", "cancelled": "abgemeldet",
             "held": "vorgemerkt"}
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

# The organisers' views: a documented interface (docs/reference.md), German column names and words,
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
    db.table("time_zone").create({"utc_from": str, "offset_seconds": int, "zone": str},
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
    db.table("outbox").add_column("sent_copy", str)
    db.execute("UPDATE outbox SET sent_copy = 'before' WHERE status = 'sent'")  # not copied
    db.table("registrations").add_column("undeliverable", str)
    db.execute("DROP VIEW IF EXISTS antworten")  # it names the new kind and status
    db.create_view("antworten", VIEWS["antworten"])


# the domain of a registration's address, as store.registrations.new_registrations asks it
DOMAIN_OF_EMAIL = "substr(email, instr(email, '@') + 1)"


def _v11(db: sqlite_utils.Database) -> None:
    """An index for the burst limit per domain (new registrations of one domain in the last
    hour, asked for every mail): without it each mail scanned every registration."""
    db.execute(f"CREATE INDEX IF NOT EXISTS idx_registrations_domain ON registrations "
               f"({DOMAIN_OF_EMAIL}, registered_at)")


def _v12(db: sqlite_utils.Database) -> None:
    """The budgets count per owner, not per spelling (issue 20): the mailbox without
    ``+tag`` (``mailbox``, ``recipient_mailbox``) and the registrable domain
    (``org_domain``, ``recipient_org_domain``) of each registration and reply."""
    for table, column, prefix, when in (("registrations", "email", "", "registered_at"),
                                        ("outbox", "recipient", "recipient_", "created_at")):
        db.table(table).add_column(f"{prefix}mailbox", str)
        db.table(table).add_column(f"{prefix}org_domain", str)
        for rowid, address in db.execute(f"SELECT rowid, {column} FROM {table}").fetchall():
            db.execute(f"UPDATE {table} SET {prefix}mailbox = ?, {prefix}org_domain = ? "
                       f"WHERE rowid = ?", [mailbox(address), org_domain(address), rowid])
        for key in ("mailbox", "org_domain"):
            db.execute(f"CREATE INDEX IF NOT EXISTS idx_{table}_{key} ON {table} "
                       f"({prefix}{key}, {when})")



def _v13(db: sqlite_utils.Database) -> None:
    """A fingerprint of each mail's content beside its Message-ID: another mail under an
    ID seen before is a new mail. Older rows have none and match any mail of their ID."""
    db.table("messages").add_column("fingerprint", str)


def _v14(db: sqlite_utils.Database) -> None:
    """A conversation memory (issue 21): the names a mail spoke of without their address
    (``messages.waits_for``), while it waits for a later mail to complete it."""
    db.table("messages").add_column("waits_for", str)


def _v15(db: sqlite_utils.Database) -> None:
    """The organiser's desk (issue 22): who settled a mail for review (``decided_by``: the
    folder it was moved into, a command, her own reply in Sent; with ``resolved_at``), and
    places held while a human reads (registrations status ``held``, "vorgemerkt" in
    teilnehmende)."""
    db.table("messages").add_column("decided_by", str)
    for name in VIEWS:  # all of them, so that they keep their order (datasette lists them so)
        db.execute(f"DROP VIEW IF EXISTS {name}")
    for name, sql in VIEWS.items():
        db.create_view(name, sql)


Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10, _v11,
                               _v12, _v13, _v14, _v15]


def migrate(db: sqlite_utils.Database, steps: Sequence[Migration]) -> None:
    """Runs those of ``steps`` (``MIGRATIONS``) that ``db`` has not had yet, each in its
    own transaction."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(steps[version:], start=version + 1):
        with db.atomic():
            step(db)
            db.execute(f"PRAGMA user_version = {number}")


@functools.lru_cache(maxsize=4)
def zone_offsets(zone: str, first: int = 2000, last: int = 2100) -> tuple[tuple[str, int], ...]:
    """(UTC start "YYYY-MM-DD HH:MM:SS", offset in seconds) of each period of ``zone``
    between the years ``first`` and ``last``; the first period reaches back to year 0."""
    tz = ZoneInfo(zone)

    def offset(seconds: int) -> int:
        utc_offset = dt.datetime.fromtimestamp(seconds, tz).utcoffset()
        assert utc_offset is not None  # an aware time: a ZoneInfo always has an offset
        return int(utc_offset.total_seconds())

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
