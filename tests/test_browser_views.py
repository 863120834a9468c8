"""The organisers' views in datasette (issue 16), through datasette's own test client,
against a database made by a real run on Dovecot + aiosmtpd; and `mailbot serve`."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import email.utils
import io
import json
import socket
import sqlite3
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import CONFIG, ROOT, Mailbox, _users, registration_mail

from mailbot.cli import main
from mailbot.core.clock import now_utc
from mailbot.desk import browse
from mailbot.reading.names import PARTICLES
from mailbot.replies.report import zoom_rows
from mailbot.store import Store
from mailbot.store.migrations import VIEWS

BERLIN = ZoneInfo("Europe/Berlin")
SERVE_SECTION = '\n[serve]\npassword_env = "MAILBOT_SERVE_PASSWORD"\n'
METADATA = json.loads((ROOT / "config" / "datasette-metadata.json").read_text("utf-8"))
INTERNAL = {"id", "message_id", "ics_uid", "ics_sequence", "event_version", "body",
            "recipient_domain", "in_reply_to", "needs_attention", "processed_at"}


def mail(name: str, address: str, hour: int, minute: int, text: str,
         subject: str = "Anmeldung Auftakttreffen") -> bytes:
    """A mail written at ``hour:minute`` Berlin time on 21 May 2021 (it arrives then)."""
    when = dt.datetime(2021, 5, 21, hour, minute, tzinfo=BERLIN)
    return registration_mail(name, address, text).replace(
        b"Date: Fri, 21 May 2021 09:00:00 +0200",
        b"Date: " + email.utils.format_datetime(when).encode()).replace(
        b"Subject: Anmeldung Auftakttreffen", f"Subject: {subject}".encode())


MAILS = [
    mail("Paul Probst", "p.probst@tippfehler.example", 8, 0,
         "hiermit melde ich mich an.\r\n\r\nOrganisation: Quartiersbüro Nord"),
    mail("Jan van der Berg", "j.vanderberg@stadt-hagen.example", 8, 30,
         "hiermit melde ich mich an.\r\n\r\nOrganisation: Stadt Hagen"),
    mail("Clara Çelik", "clara@awo-koeln.example", 9, 0,
         "hiermit melde ich mich an.\r\n\r\nOrganisation: AWO Köln"),
    mail("Dieter Dorn", "d.dorn@diakonie.example", 9, 30,
         "hiermit melde ich mich an.\r\n\r\nOrganisation: Diakonie Wuppertal"),
    mail("Emma Engel", "emma@ehrenamt.example", 10, 0,
         "I would like to register for the meeting.", "Registration"),
    mail("Fritz Fink", "f.fink@stadt-hagen.example", 10, 15,
         "hiermit melde ich mich an.\r\n\r\nOrganisation: Stadt Hagen"),
    mail("Clara Çelik", "clara@awo-koeln.example", 10, 30,
         "leider muss ich meine Teilnahme absagen.", "Abmeldung"),
    mail("Heike Wagner", "heike.wagner@awo-dortmund.example", 11, 0,
         "wird das Treffen aufgezeichnet?", "Frage zum Auftakttreffen"),
    mail("Karl Kunz", "k.kunz@stadt-hagen.example", 11, 15,
         "für meine Kollegin möchte ich anmelden: Lena Lorenz, l.lorenz@stadt-hagen.example"),
    mail("Ida Imhof", "ida@quartier.example", 11, 30,
         "hiermit melde ich mich an. Gibt es eine Aufzeichnung?"),
]


@pytest.fixture(scope="module")
def logged(dovecot, smtp_server, tmp_path_factory):
    """The config of a real run: 8 mails, capacity 3, one reply refused by the server."""
    controller, handler = smtp_server
    handler.envelopes.clear()
    handler.fail_codes[:] = ["550 5.1.1 <p.probst@tippfehler.example>: Recipient address "
                             "rejected: User unknown"]
    patch = pytest.MonkeyPatch()
    patch.setenv("MAILBOT_IMAP_PASSWORD", dovecot.password)
    box = Mailbox(dovecot, f"user{next(_users)}")
    folder = tmp_path_factory.mktemp("datasette")
    config = folder / "mailbot.toml"
    config.write_text(CONFIG.format(
        start="2021-05-31T10:00:00", end="2021-05-31T15:00:00", imap_port=dovecot.port,
        user=box.user, smtp_port=controller.port, db=folder / "mailbot.sqlite",
        capacity="capacity = 3\n"), encoding="utf-8")
    for raw in MAILS:
        box.append(raw)
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    handler.fail_codes.clear()
    yield config
    box.close()
    patch.undo()


def datasette(config: Path):
    return browse.make_datasette(config.parent / "mailbot.sqlite", METADATA, login=False)


def get(ds, path: str):
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, (path, response.text[:500])
    return response


def view(config: Path, name: str) -> list[dict]:
    return get(datasette(config), f"/mailbot/{name}.json?_shape=array").json()


def person(name, org, address, status, at, by=None, language="Deutsch") -> dict:
    return {"Name": name, "Organisation": org, "E-Mail": address, "Status": status,
            "angemeldet am": f"21.05.2021 {at}", "angemeldet von": by, "Sprache": language}


def test_teilnehmende_in_order_of_arrival_in_german_and_local_time(logged):
    assert view(logged, "teilnehmende") == [
        person("Paul Probst", "Quartiersbüro Nord", "p.probst@tippfehler.example",
               "bestätigt", "08:00"),
        person("Jan van der Berg", "Stadt Hagen", "j.vanderberg@stadt-hagen.example",
               "bestätigt", "08:30"),
        person("Clara Çelik", "AWO Köln", "clara@awo-koeln.example", "abgemeldet", "09:00"),
        person("Dieter Dorn", "Diakonie Wuppertal", "d.dorn@diakonie.example", "bestätigt",
               "09:30"),  # moved up when Clara cancelled
        person("Emma Engel", None, "emma@ehrenamt.example", "Warteliste", "10:00",
               language="Englisch"),
        person("Fritz Fink", "Stadt Hagen", "f.fink@stadt-hagen.example", "Warteliste",
               "10:15"),
        person("Lena Lorenz", None, "l.lorenz@stadt-hagen.example", "Warteliste", "11:15",
               by="k.kunz@stadt-hagen.example"),
        person("Ida Imhof", None, "ida@quartier.example", "Warteliste", "11:30"),
    ]


def test_teilnehmende_as_csv_and_with_default_facets(logged):
    ds = datasette(logged)
    lines = get(ds, "/mailbot/teilnehmende.csv").text.splitlines()
    assert lines[0] == "Name,Organisation,E-Mail,Status,angemeldet am,angemeldet von,Sprache"
    assert lines[3] == "Clara Çelik,AWO Köln,clara@awo-koeln.example,abgemeldet," \
                       "21.05.2021 09:00,,Deutsch"
    facets = get(ds, "/mailbot/teilnehmende.json").json()["facet_results"]
    assert set(facets) == {"Status", "Organisation"}
    assert {f["value"]: f["count"] for f in facets["Status"]["results"]} == {
        "bestätigt": 3, "Warteliste": 4, "abgemeldet": 1}
    hagen = get(ds, "/mailbot/teilnehmende.json?_shape=array&Organisation=Stadt+Hagen").json()
    assert [r["Name"] for r in hagen] == ["Jan van der Berg", "Fritz Fink"]


def test_warteliste_counts_places_in_order_of_arrival(logged):
    rows = view(logged, "warteliste")
    assert [(r["Platz"], r["Name"], r["angemeldet am"]) for r in rows] == [
        (1, "Emma Engel", "21.05.2021 10:00"), (2, "Fritz Fink", "21.05.2021 10:15"),
        (3, "Lena Lorenz", "21.05.2021 11:15"), (4, "Ida Imhof", "21.05.2021 11:30")]
    assert list(rows[0]) == ["Platz", "Name", "Organisation", "E-Mail", "angemeldet am",
                             "Sprache"]


def test_zu_beantworten_lists_mail_for_a_human_numbered_as_mailbot_review(logged):
    rows = view(logged, "zu_beantworten")
    review = CliRunner().invoke(main, ["--config", str(logged), "review"]).output
    heike, ida = (int(line[1:].split("]")[0]) for line in review.splitlines()
                  if line.startswith("["))
    assert [{k: v for k, v in r.items() if k not in ("Message-ID", "Auszug")}
            for r in rows] == [
        {"Nr.": heike, "Eingang": "21.05.2021 11:00",
         "Absender": "heike.wagner@awo-dortmund.example",
         "Betreff": "Frage zum Auftakttreffen",
         "Grund": "Frage – bitte persönlich beantworten; Frage: ‚wird das Treffen aufgezeichnet?‘",
         "Satz": "wird das Treffen aufgezeichnet?", "Stand": "noch nicht beantwortet"},
        {"Nr.": ida, "Eingang": "21.05.2021 11:30", "Absender": "ida@quartier.example",
         "Betreff": "Anmeldung Auftakttreffen",
         "Grund": "bitte lesen – Frage: ‚Gibt es eine Aufzeichnung?‘; "
                  "Anmeldung: ‚hiermit melde ich mich an.‘",
         "Satz": "Gibt es eine Aufzeichnung?", "Stand": "beantwortet, aber bitte lesen"},
    ]
    assert "wird das Treffen aufgezeichnet?" in rows[0]["Auszug"]
    assert review.index(f"[{heike}] 21.05.2021 11:00  heike.wagner@") < review.index(
        f"[{ida}] 21.05.2021 11:30  ida@quartier.example"), "the same numbers as review"


def test_antworten_shows_what_went_to_whom_and_the_servers_refusal(logged):
    rows = view(logged, "antworten")
    assert len(rows) == 11
    [failed] = [r for r in rows if r["Status"] == "fehlgeschlagen"]
    assert failed["An"] == "p.probst@tippfehler.example" and failed["Art"] == "Bestätigung"
    assert failed["Antwort des Servers"].startswith("550 5.1.1 <p.probst@tippfehler.example>")
    assert failed["gesendet"] is None
    assert {r["Status"] for r in rows if r is not failed} == {"gesendet"}
    assert sorted(r["Art"] for r in rows if r["An"] == "d.dorn@diakonie.example") == [
        "Bestätigung", "Warteliste"]
    assert [r for r in rows if r["An"] == "k.kunz@stadt-hagen.example"][0]["Art"] == \
        "Anmeldung anderer Personen"
    db = sqlite3.connect(logged.parent / "mailbot.sqlite")
    stored = db.execute("SELECT created_at, sent_at FROM outbox ORDER BY id DESC").fetchall()
    db.close()
    local = [(f"{dt.datetime.fromisoformat(c).astimezone(BERLIN):%d.%m.%Y %H:%M}",
              s and f"{dt.datetime.fromisoformat(s).astimezone(BERLIN):%d.%m.%Y %H:%M}")
             for c, s in stored]
    assert [(r["erstellt"], r["gesendet"]) for r in rows] == local, "newest first, local"


def test_zoom_query_gives_the_list_of_export_zoom_csv(logged):
    export = CliRunner().invoke(main, ["--config", str(logged), "export", "--format",
                                       "zoom-csv"]).output
    query = get(datasette(logged), "/mailbot/zoom-teilnehmerliste.csv").text
    assert list(csv.reader(io.StringIO(query))) == list(csv.reader(io.StringIO(export)))
    assert ["j.vanderberg@stadt-hagen.example", "Jan", "van der Berg", "Stadt Hagen"] in list(
        csv.reader(io.StringIO(query)))
    queries = get(datasette(logged), "/mailbot.json").json()["queries"]
    assert [q["title"] for q in queries] == ["Zoom-Teilnehmerliste"]


def test_zoom_query_splits_names_as_the_export_does():
    store = Store(":memory:")
    names = ["Anna", "", "Anna Maria de la Cruz", "Van Berg", "von Trapp Maria", "Hans von",
             "Ulla VAN Dijk", "Otto  Müller", "A b van van der den X"]
    names += [f"Eva {w} Meier" for w in sorted(PARTICLES)] + [f"Eva {w}" for w in PARTICLES]
    for i, name in enumerate(names):
        store.db.execute("INSERT INTO registrations (email, name, organisation, status, "
                         "registered_at) VALUES (?, ?, ?, 'confirmed', ?)",
                         [f"p{i}@x.example", name, "Org" if i % 2 else None,
                          f"2021-05-21T07:{59 - i:02d}:00+00:00"])
    sql = METADATA["databases"]["mailbot"]["queries"]["zoom-teilnehmerliste"]["sql"]
    got = store.db.execute(sql).fetchall()
    assert got == [(r["email"], r["first"], r["last"], r["org"])
                   for r in zoom_rows(store.registration_rows("confirmed"))]


def test_the_views_come_first_and_internal_columns_are_hidden(logged):
    ds = datasette(logged)
    index = get(ds, "/.json").json()["mailbot"]
    assert [t["name"] for t in index["tables_and_views_truncated"]] == list(VIEWS)
    assert index["tables_count"] == 0, "every table is hidden; the views are shown"
    tables = get(ds, "/mailbot.json").json()["tables"]
    assert {t["name"] for t in tables if not t["hidden"]} == set()
    for name in VIEWS:
        page = get(ds, f"/mailbot/{name}.json").json()
        assert not INTERNAL & set(page["columns"]), name
        assert not any(c.islower() and "_" in c for c in page["columns"]), name
    html = get(ds, "/mailbot").text
    assert 'href="/mailbot/teilnehmende"' in html
    assert 'id="tables"' not in html, "the raw tables are not even listed (desk/gate.py)"
    assert "personenbezogene Daten" in html
    page = get(ds, "/mailbot/teilnehmende").text
    assert "<h1>Teilnehmende" in page and "Ortszeit der Veranstaltung" in page


def test_views_exist_in_every_database_and_follow_the_event_zone():
    store = Store(":memory:")
    views = store.db.execute("SELECT name FROM sqlite_master WHERE type = 'view'").fetchall()
    assert sorted(v for (v,) in views) == sorted(VIEWS)
    for at in ("2021-07-01T14:00:00+00:00", "2021-12-01T14:00:00+00:00"):
        store.db.execute("INSERT INTO registrations (email, name, status, registered_at) "
                         "VALUES (?, 'X', 'confirmed', ?)", [f"{at[:10]}@x.example", at])
    shown = lambda: [r[4] for r in store.db.execute("SELECT * FROM teilnehmende")]  # noqa: E731
    assert shown() == ["01.07.2021 14:00", "01.12.2021 14:00"], "UTC before a zone is known"
    store.use_time_zone("Europe/Berlin", now_utc())
    assert shown() == ["01.07.2021 16:00", "01.12.2021 15:00"]
    store.use_time_zone("America/New_York", now_utc())
    assert shown() == ["01.07.2021 10:00", "01.12.2021 09:00"]


def test_the_deciding_sentence_is_taken_from_the_reason():
    store = Store(":memory:")
    for key, reason in [("a", "Frage: ‚Wird das Treffen aufgezeichnet?‘; Betreff „Hallo“"),
                        ("b", "automatische Nachricht (Betreff „Abwesend“)"),
                        ("c", "Frage – bitte persönlich beantworten"), ("d", None)]:
        store.db.execute("INSERT INTO messages (message_id, sender, received_at, action, "
                         "reason) VALUES (?, 'x@y.example', '2021-05-21T07:00:00+00:00', "
                         "'review', ?)", [key, reason])
    assert [r[0] for r in store.db.execute('SELECT "Satz" FROM zu_beantworten')] == [
        "Wird das Treffen aufgezeichnet?", None, None, None]


def test_served_database_refuses_every_write(logged):
    before = _counts(logged)
    metadata = json.loads(json.dumps(METADATA))
    metadata["databases"]["mailbot"]["queries"]["leeren"] = {
        "sql": "DELETE FROM registrations", "write": True}
    ds = browse.make_datasette(logged.parent / "mailbot.sqlite", metadata, login=False)
    db = ds.get_database("mailbot")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(db.execute_write("DELETE FROM registrations"))
    bad = asyncio.run(ds.client.get("/mailbot.json?sql=DELETE+FROM+registrations"))
    assert bad.status_code == 400
    asyncio.run(ds.client.post("/mailbot/leeren", data={}))
    assert _counts(logged) == before


def _counts(config: Path) -> tuple:
    db = sqlite3.connect(config.parent / "mailbot.sqlite")
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("registrations", "messages", "outbox"))
    finally:
        db.close()


def test_serve_explains_a_taken_port_and_a_missing_database(logged, tmp_path, dovecot,
                                                           monkeypatch):
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", dovecot.password)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("MAILBOT_SERVE_PASSWORD", "pw")
        config = tmp_path / "serve.toml"
        config.write_text(logged.read_text() + SERVE_SECTION)
        result = CliRunner().invoke(main, ["--config", str(config), "serve", "--port",
                                           str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output
    other = tmp_path / "other.toml"
    other.write_text(logged.read_text().replace(str(logged.parent / "mailbot.sqlite"),
                                                str(tmp_path / "none.sqlite")))
    result = CliRunner().invoke(main, ["--config", str(other), "serve"])
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "none.sqlite").exists()


def test_a_database_from_before_the_views_gets_them_with_its_rows(tmp_path, monkeypatch):
    from mailbot import store as store_mod

    path = tmp_path / "old.sqlite"
    with monkeypatch.context() as patch:
        patch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:7])
        old = Store(path)
        old.db.execute("INSERT INTO registrations (email, name, status, registered_at) "
                       "VALUES ('a@x.example', 'Anna', 'waitlisted', "
                       "'2021-05-21T07:00:00+00:00')")
        old.db.conn.commit()
        old.close()
    store = Store(path)
    store.use_time_zone("Europe/Berlin", now_utc())
    assert store.db.execute('SELECT "Platz", "Name", "angemeldet am" FROM warteliste'
                            ).fetchall() == [(1, "Anna", "21.05.2021 09:00")]


def test_serve_without_datasette_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasette.app", None)  # as if it were not installed
    with pytest.raises(browse.BrowseError, match=r"pip install 'mailbot\[datasette\]'"):
        browse.make_datasette(tmp_path / "mailbot.sqlite", METADATA)
