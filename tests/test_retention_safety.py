"""The automatic end of the retention period erases nothing on a guess: not after [event]
start moved or lies before the first registration (a wrong year), not with the clock
before the newest row; a due purge is announced a day ahead, and the last backup stays
until the data goes (real Dovecot and aiosmtpd; the past is written into the database)."""

from __future__ import annotations

import datetime as dt
import sqlite3

from conftest import rows, start_daemon, stop, wait_for
from test_desk_commands import cli, event_db  # noqa: F401  (the fixture)

RETAIN = ("retain_days_after_event = 36500", "retain_days_after_event = 30")


def _next_day(config, announced_days_ago: float | None = None) -> None:
    """As on the next day: the daily check is due again (and the announcement older)."""
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        conn.execute("DELETE FROM state WHERE key = 'last_purge_check'")
        if announced_days_ago is not None:
            when = dt.datetime.now(dt.UTC) - dt.timedelta(days=announced_days_ago)
            conn.execute("UPDATE state SET value = ? WHERE key = 'purge_announced'",
                         [when.replace(microsecond=0).isoformat()])


def _registered(config) -> int:
    return rows(config, "SELECT count(*) FROM registrations")[0][0]


def test_a_start_moved_into_the_past_erases_nothing_and_says_why(event_db):  # noqa: F811
    cli(event_db, "forget", "heike@awo.example", "--yes")  # a backup of yesterday
    [backup] = (event_db.parent / "backups").glob("mailbot-*.sqlite")
    text = event_db.read_text().replace(*RETAIN)
    event_db.write_text(text.replace("start = 2021-05-31T10:00:00", "start = 2020-05-31T10:00:00")
                        .replace("end = 2021-05-31T15:00:00", "end = 2020-05-31T15:00:00"))
    for _ in range(3):
        _next_day(event_db, announced_days_ago=5)
        cli(event_db, "run", "--once")
    assert _registered(event_db) == 3
    assert backup.exists(), "no backup is deleted on a date alone"
    status = cli(event_db, "status")
    assert ("Retention: not erased automatically: [event] start is 31.05.2020 now, the "
            "registrations were made for 31.05.2021; check the date, or erase by hand "
            "with: mailbot purge") in status


def test_registrations_after_the_configured_start_mean_a_wrong_year(make_config, smtp):
    config = make_config()  # 2021, as in the example; the organiser adds people today
    config.write_text(config.read_text().replace(*RETAIN))
    cli(config, "run", "--once")
    cli(config, "add", "anna@a.example", "--name", "Anna Arndt", "--no-mail")
    _next_day(config, announced_days_ago=5)
    cli(config, "run", "--once")
    assert _registered(config) == 1
    assert "a wrong year in [event] start?" in cli(config, "status")


def test_a_clock_before_the_newest_row_erases_nothing(event_db):  # noqa: F811
    event_db.write_text(event_db.read_text().replace(*RETAIN))
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).replace(microsecond=0)
    with sqlite3.connect(event_db.parent / "mailbot.sqlite") as conn:
        conn.execute("UPDATE registrations SET updated_at = ? WHERE email = 'anna@a.example'",
                     [future.isoformat()])
    _next_day(event_db)
    cli(event_db, "run", "--once")
    _next_day(event_db, announced_days_ago=5)
    cli(event_db, "run", "--once")
    assert _registered(event_db) == 3
    assert "is before the newest entry in the database" in cli(event_db, "status")


def test_a_due_purge_is_announced_a_day_ahead_then_done(event_db):  # noqa: F811
    cli(event_db, "forget", "heike@awo.example", "--yes")  # a backup
    event_db.write_text(event_db.read_text().replace(*RETAIN))
    _next_day(event_db)
    cli(event_db, "run", "--once")
    assert _registered(event_db) == 3, "announced first, not erased"
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert (f"Retention: the retention period is over: all personal data will be erased on "
            f"{tomorrow:%d.%m.%Y} at the earliest") in cli(event_db, "status")
    _next_day(event_db, announced_days_ago=0.5)
    cli(event_db, "run", "--once")
    assert _registered(event_db) == 3, "not before a day has passed"
    _next_day(event_db, announced_days_ago=1.01)
    cli(event_db, "run", "--once")
    assert _registered(event_db) == 0
    assert list((event_db.parent / "backups").glob("*.sqlite")) == [], "they go with the data"
    assert "Retention: the retention period is over: personal data erased" in \
        cli(event_db, "status")


def test_the_service_says_at_its_start_why_it_will_not_purge(event_db, dovecot):  # noqa: F811
    text = event_db.read_text().replace(*RETAIN)
    event_db.write_text(text.replace("start = 2021-05-31T10:00:00", "start = 2020-05-31T10:00:00")
                        .replace("end = 2021-05-31T15:00:00", "end = 2020-05-31T15:00:00"))
    proc = start_daemon(event_db, dovecot.password)
    try:
        assert wait_for(lambda: "not erased automatically" in cli(event_db, "status"))
    finally:
        err = stop(proc)
    assert "retention: not erased automatically: [event] start is 31.05.2020 now" in err
    assert _registered(event_db) == 3
