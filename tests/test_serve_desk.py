"""The browser desk of `mailbot serve` (issue 22 point 3): approve, dismiss, edit, cancel,
add, move up, resend as POST forms behind the login and datasette's CSRF protection, each
through the organiser's commands; German pages without datasette's English chrome or SQL.
Through datasette's test client against a real run (Dovecot + aiosmtpd)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG, Mailbox, _users
from test_browser_views import MAILS, METADATA

from mailbot import config as config_mod
from mailbot.cli import main
from mailbot.core.clock import now_utc
from mailbot.desk import actions, browse
from mailbot.store import Store

PASSWORD = "Sommerfest-2021!"
HEIKE = "heike.wagner@awo-dortmund.example"


@pytest.fixture
def run(dovecot, smtp_server, tmp_path, monkeypatch):
    """A real run: the mails of test_browser_views, capacity 8 (7 confirmed, Clara
    cancelled, Heike's question and Ida's remark wait for review)."""
    controller, handler = smtp_server
    handler.envelopes.clear()
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", dovecot.password)
    box = Mailbox(dovecot, f"user{next(_users)}")
    config = tmp_path / "mailbot.toml"
    config.write_text(CONFIG.format(
        start="2021-05-31T10:00:00", end="2021-05-31T15:00:00", imap_port=dovecot.port,
        user=box.user, smtp_port=controller.port, db=tmp_path / "mailbot.sqlite",
        capacity="capacity = 8\n"), encoding="utf-8")
    for raw in MAILS:
        box.append(raw)
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    handler.envelopes.clear()
    yield config, box, handler
    box.close()


def desk(config: Path):
    return browse.make_datasette(config.parent / "mailbot.sqlite", METADATA, PASSWORD,
                                 config=config_mod.load(config))


def call(ds, method: str, path: str, **kwargs):
    kwargs.setdefault("follow_redirects", False)
    return asyncio.run(getattr(ds.client, method)(path, **kwargs))


class Browser:
    """A logged-in organiser: cookies kept, forms sent with the page's CSRF token."""

    def __init__(self, ds):
        self.ds = ds
        page = call(ds, "get", "/-/anmelden")
        self.token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)[1]
        self.cookies = {"ds_csrftoken": page.cookies["ds_csrftoken"]}
        login = call(ds, "post", "/-/anmelden", cookies=self.cookies,
                     data={"csrftoken": self.token, "passwort": PASSWORD, "weiter": "/"})
        self.cookies["ds_actor"] = login.cookies["ds_actor"]

    def get(self, path: str):
        response = call(self.ds, "get", path, cookies=self.cookies)
        assert response.status_code == 200, (path, response.status_code)
        return response.text

    def press(self, action: str, **fields: str) -> str:
        """Send a form of the desk; the one-line outcome shown on the page it leads to."""
        back = "/-/teilnehmende"
        response = call(self.ds, "post", f"/-/aktion/{action}", cookies=self.cookies,
                        data={"csrftoken": self.token, "zurueck": back, **fields})
        assert response.status_code == 302 and response.headers["location"] == back
        self.cookies.update(response.cookies)
        page = self.get(back)
        self.cookies.pop("ds_messages", None)  # shown once
        return re.search(r'id="ergebnis">([^<]*)<', page)[1]


def status(config: Path, email: str) -> str | None:
    with Store(config.parent / "mailbot.sqlite") as store:
        reg = store.registrations([email]).get(email)
    return reg.status.value if reg else None


def waiting(config: Path) -> dict[str, int]:
    with Store(config.parent / "mailbot.sqlite") as store:
        return {row["sender"]: row["id"] for row in store.for_review()}


def test_approve_registers_the_waiting_mail_and_sends_the_confirmation(run):
    config, box, handler = run
    browser = Browser(desk(config))
    page = browser.get("/-/zu-beantworten")
    assert "Freigeben" in page and "Erledigt" in page and "Frage zum Auftakttreffen" in page
    line = browser.press("approve", nr=str(waiting(config)[HEIKE]))
    assert line == f"Heike Wagner &lt;{HEIKE}&gt;: bestätigt. Die Mail ist verschickt."
    assert status(config, HEIKE) == "confirmed" and HEIKE not in waiting(config)
    assert [e.rcpt_tos for e in handler.envelopes] == [[HEIKE]]
    assert HEIKE in browser.get("/-/teilnehmende")


def test_dismiss_settles_a_waiting_mail_without_a_reply(run):
    config, _, handler = run
    browser = Browser(desk(config))
    number = waiting(config)["ida@quartier.example"]
    assert browser.press("dismiss", nr=str(number)) == \
        f"Die Mail Nr. {number} ist als erledigt vermerkt, ohne Antwort."
    assert "ida@quartier.example" not in waiting(config) and not handler.envelopes
    again = browser.press("dismiss", nr=str(number))
    assert again.startswith("Nicht ausgeführt: ") and "Traceback" not in again


def test_add_cancel_move_up_edit_and_resend_change_the_store(run):
    config, _, handler = run
    browser = Browser(desk(config))
    assert "Person anmelden" in browser.get("/-/person-anmelden")
    line = browser.press("add", email="Olga.Ott@Telefon.example", name="Olga Ott",
                         organisation="Caritas")
    assert line == "Olga Ott &lt;olga.ott@telefon.example&gt;: bestätigt. Die Mail ist verschickt."
    line = browser.press("add", email="max@telefon.example", name="Max Mohn", organisation="")
    assert line.startswith("Max Mohn &lt;max@telefon.example&gt;: auf der Warteliste.")
    assert browser.press("cancel", email="olga.ott@telefon.example").startswith(
        "Olga Ott &lt;olga.ott@telefon.example&gt;: abgemeldet; Max Mohn &lt;"
        "max@telefon.example&gt;: bestätigt.")
    assert status(config, "olga.ott@telefon.example") == "cancelled"
    line = browser.press("edit", email="max@telefon.example", name="Max Mohn-Weber",
                         organisation="Stadt Hagen", new_email="max@telefon.example")
    assert line == "Name jetzt „Max Mohn-Weber“ (vorher „Max Mohn“); Organisation jetzt " \
                   "„Stadt Hagen“ (vorher „–“)."
    line = browser.press("edit", email="max@telefon.example", name="Max Mohn-Weber",
                         organisation="Stadt Hagen", new_email="max.mohn@telefon.example")
    assert line.startswith("Max Mohn-Weber &lt;max.mohn@telefon.example&gt;: neue Adresse "
                           "(vorher max@telefon.example).")
    assert status(config, "max.mohn@telefon.example") == "confirmed"
    handler.envelopes.clear()
    assert browser.press("resend", email="max.mohn@telefon.example") == (
        "max.mohn@telefon.example bekommt die letzte Mail noch einmal, mit demselben "
        "Kalendereintrag. Die Mail ist verschickt.")
    assert [e.rcpt_tos for e in handler.envelopes] == [["max.mohn@telefon.example"]]
    browser.press("add", email="nina@telefon.example", name="Nina Nagel")
    assert status(config, "nina@telefon.example") == "waitlisted"
    assert browser.press("move_up", email="nina@telefon.example").startswith(
        "Nina Nagel &lt;nina@telefon.example&gt;: bestätigt.")
    assert "Nachrücken lassen" not in browser.get("/-/teilnehmende")


def test_bad_input_gets_one_german_line_and_changes_nothing(run):
    config, _, handler = run
    browser = Browser(desk(config))
    assert browser.press("add", email="", name="Olga Ott") == \
        "Nichts geändert: bitte die E-Mail-Adresse angeben."
    assert browser.press("add", email="kein-at-zeichen", name="Olga Ott").startswith(
        "Nicht ausgeführt: ")
    assert browser.press("move_up", email="p.probst@tippfehler.example").startswith(
        "Nicht ausgeführt: ")
    assert browser.press("frei_erfunden", email="x@y.example") == \
        "Unbekannte Aktion: nichts geändert."
    assert not handler.envelopes and status(config, "kein-at-zeichen") is None


def test_a_post_without_the_csrf_token_or_the_login_changes_nothing(run):
    config, _, handler = run
    ds = desk(config)
    browser = Browser(ds)
    form = {"email": "olga@telefon.example", "name": "Olga Ott", "zurueck": "/-/teilnehmende"}
    forged = call(ds, "post", "/-/aktion/add", cookies=browser.cookies, data=form)
    assert forged.status_code == 403, "asgi-csrf refuses a form without its token"
    stranger = Browser.__new__(Browser)
    page = call(ds, "get", "/-/anmelden")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)[1]
    anonymous = call(ds, "post", "/-/aktion/add", data={**form, "csrftoken": token},
                     cookies={"ds_csrftoken": page.cookies["ds_csrftoken"]})
    assert anonymous.status_code == 403 and stranger is not None
    assert call(ds, "get", "/-/zu-beantworten").headers["location"].startswith("/-/anmelden")
    assert status(config, "olga@telefon.example") is None and not handler.envelopes


def test_while_the_service_runs_the_change_is_queued_for_it(run, monkeypatch):
    config, _, handler = run
    browser = Browser(desk(config))
    monkeypatch.setattr(actions, "locked_or_queued", lambda config, work: work(False))
    line = browser.press("add", email="olga@telefon.example", name="Olga Ott")
    assert line == ("Olga Ott &lt;olga@telefon.example&gt;: bestätigt. mailbot läuft gerade "
                    "und verschickt die Mail bei seiner nächsten Runde.")
    assert not handler.envelopes, "the service sends it"
    with Store(config.parent / "mailbot.sqlite") as store:
        assert len(store.pending_replies(now_utc())) == 1


def test_the_pages_are_german_without_datasette_chrome_or_sql(run):
    config, _, _ = run
    browser = Browser(desk(config))
    for path in ("/mailbot", "/mailbot/teilnehmende", "/mailbot/zu_beantworten",
                 "/mailbot/warteliste", "/mailbot/antworten", "/mailbot/zoom-teilnehmerliste",
                 "/-/zu-beantworten", "/-/teilnehmende", "/-/person-anmelden", "/"):
        page = browser.get(path)
        assert not re.search(r"\d+ rows?\b|\b0 records\b", page), path
        for english in ("View and edit SQL", "CREATE VIEW", "select ", "SELECT ",
                        "Custom SQL", "This data as", "Powered by", "Log out", "`",
                        "Advanced export", "Apply", "(view)"):
            assert english not in page, (path, english)
    assert "Einträge" in browser.get("/mailbot/teilnehmende")


def test_a_name_with_an_apostrophe_stays_text_in_the_cancel_question(run):
    """The question before a cancel names the person; a name from a mail ("O'Brien", or
    one written to break out: "x');fetch`…`;//") must stay text — never part of the
    script of the form (the browser decodes the attribute before it runs it)."""
    from html.parser import HTMLParser

    config, _, _ = run
    browser = Browser(desk(config))
    browser.press("add", email="sio@obrien.example", name="Siobhán O'Brien",
                  organisation="")

    class Handlers(HTMLParser):
        scripts: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.scripts += [value or "" for name, value in attrs if name.startswith("on")]

    parser = Handlers()
    parser.feed(browser.get("/-/teilnehmende"))
    assert parser.scripts, "the cancel form asks first"
    assert not [s for s in parser.scripts if "O'Brien" in s or "Brien" in s], parser.scripts


def test_a_held_place_is_shown_as_vorgemerkt_without_buttons(run):
    """A place kept while the organiser reads its mail shows on the participants page (it
    counts against capacity) and is decided on "Zu beantworten", not with row buttons."""
    config, _, _ = run
    with sqlite3.connect(config.parent / "mailbot.sqlite") as conn:
        conn.execute("UPDATE registrations SET status = 'held' WHERE rowid = "
                     "(SELECT min(rowid) FROM registrations WHERE status = 'confirmed')")
        [(email,)] = conn.execute("SELECT email FROM registrations WHERE status = 'held'")
    page = Browser(desk(config)).get("/-/teilnehmende")
    [row] = [r.split("</tr>")[0] for r in page.split("<tr")[1:] if email in r]
    assert "vorgemerkt" in row, row
    assert "<form" not in row, "no buttons for a held place"
