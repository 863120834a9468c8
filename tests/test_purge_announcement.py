"""An announcement of the automatic purge holds only while the purge stays due (issue 20,
third round): made by a clock that ran ahead, or before the organiser lengthened the
retention period, it must not let a later due purge erase at once, unannounced (real
Dovecot and aiosmtpd; the past is written into the database)."""

from __future__ import annotations

from conftest import next_day, rows
from test_desk_commands import cli, event_db  # noqa: F401  (the fixture)

LONG, SHORT = "retain_days_after_event = 36500", "retain_days_after_event = 30"


def _registered(config) -> int:
    return rows(config, "SELECT count(*) FROM registrations")[0][0]


def test_an_announcement_made_before_the_purge_was_put_off_does_not_count_later(
        event_db):  # noqa: F811
    text = event_db.read_text()
    event_db.write_text(text.replace(LONG, SHORT))
    next_day(event_db)
    cli(event_db, "run", "--once")  # announced (as by a clock ahead, or a short period)
    assert "will be erased on" in cli(event_db, "status")
    event_db.write_text(text)  # the organiser keeps the data longer (or the clock is back)
    next_day(event_db, announced_days_ago=5)
    cli(event_db, "run", "--once")
    assert _registered(event_db) == 3
    event_db.write_text(text.replace(LONG, SHORT))  # due again, days later

    next_day(event_db)
    cli(event_db, "run", "--once")

    assert _registered(event_db) == 3, "announced anew, not erased at once"
    assert "will be erased on" in cli(event_db, "status")
