"""`mailbot serve` is for the organiser only (issue 20 point 10): a login, a Host check,
no free SQL, no raw table; on 127.0.0.1 or a Unix socket of mode 0600. Through datasette's
test client against the database of a real run (Dovecot + aiosmtpd), and `mailbot serve`
started for real."""

from __future__ import annotations

import asyncio
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_browser_views import METADATA, SERVE_SECTION, _counts, logged  # noqa: F401

from mailbot import config as config_mod
from mailbot.cli import main
from mailbot.desk import browse

PASSWORD = "Sommerfest-2021!"
SECRET_SQL = "select cast(body as text) from outbox"


def gated(config: Path, port: int | None = None):
    return browse.make_datasette(config.parent / "mailbot.sqlite", METADATA, PASSWORD, port)


def call(ds, method: str, path: str, **kwargs):
    kwargs.setdefault("follow_redirects", False)
    return asyncio.run(getattr(ds.client, method)(path, **kwargs))


def log_in(ds, password: str = PASSWORD) -> tuple:
    """The login page's form sent as a browser would: (response, cookies)."""
    page = call(ds, "get", "/-/anmelden")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)[1]
    cookies = {"ds_csrftoken": page.cookies["ds_csrftoken"]}
    response = call(ds, "post", "/-/anmelden", cookies=cookies,
                    data={"csrftoken": token, "passwort": password, "weiter": "/mailbot"})
    return response, {**cookies, **({"ds_actor": response.cookies["ds_actor"]}
                                    if "ds_actor" in response.cookies else {})}


def passcode(config: Path) -> str:
    return config_mod.load(config, secrets=False).zoom.passcode


def test_without_login_every_page_leads_to_the_login_page(logged):  # noqa: F811
    ds = gated(logged)
    for path in ("/", "/mailbot", "/mailbot/teilnehmende", "/mailbot/teilnehmende.json",
                 "/mailbot/zoom-teilnehmerliste.csv"):
        response = call(ds, "get", path)
        assert response.status_code == 302, path
        assert response.headers["location"].startswith("/-/anmelden?weiter="), path
        assert "Emma" not in response.text
    page = call(ds, "get", "/-/anmelden")
    assert page.status_code == 200 and "Passwort" in page.text and "Anmelden" in page.text


def test_a_wrong_password_or_a_post_without_csrf_token_gets_no_cookie(logged):  # noqa: F811
    ds = gated(logged)
    response, cookies = log_in(ds, "falsch")
    assert response.status_code == 403 and "Das Passwort stimmt nicht." in response.text
    assert "ds_actor" not in cookies
    browser = {"ds_csrftoken": call(ds, "get", "/-/anmelden").cookies["ds_csrftoken"]}
    forged = call(ds, "post", "/-/anmelden", data={"passwort": PASSWORD}, cookies=browser)
    assert forged.status_code == 403 and "ds_actor" not in forged.cookies, "asgi-csrf"


def test_after_login_the_german_views_are_readable(logged):  # noqa: F811
    ds = gated(logged)
    response, cookies = log_in(ds)
    assert response.status_code == 302 and response.headers["location"] == "/mailbot"
    rows = call(ds, "get", "/mailbot/warteliste.json?_shape=array", cookies=cookies).json()
    assert [r["Name"] for r in rows][:1] == ["Emma Engel"]
    for path in ("/mailbot", "/mailbot/teilnehmende", "/mailbot/zu_beantworten",
                 "/mailbot/antworten", "/mailbot/zoom-teilnehmerliste.csv"):
        assert call(ds, "get", path, cookies=cookies).status_code == 200, path


def test_no_free_sql_and_no_raw_table_even_after_login(logged):  # noqa: F811
    ds = gated(logged)
    _, cookies = log_in(ds)
    sql = urllib.parse.quote(SECRET_SQL)
    for path in (f"/mailbot.json?sql={sql}", f"/mailbot?sql={sql}", f"/mailbot.csv?sql={sql}",
                 "/mailbot/outbox", "/mailbot/outbox.json", "/mailbot/OUTBOX.json",
                 "/mailbot/registrations.json", "/mailbot/messages.csv", "/mailbot/state",
                 "/mailbot/notices", "/mailbot.db", "/mailbot/teilnehmende.json?_where=1=1",
                 "/-/permissions", "/-/create-token", "/mailbot/registrations/-/insert"):
        response = call(ds, "get", path, cookies=cookies)
        assert response.status_code in (400, 403, 404, 405), (path, response.status_code)
        assert passcode(logged) not in response.text, path
    assert call(ds, "get", "/mailbot/teilnehmende.json?_where=1=1",
                cookies=cookies).status_code == 403


def test_a_foreign_host_gets_400_even_with_the_login(logged):  # noqa: F811
    ds = gated(logged, port=8123)
    _, cookies = log_in(ds)
    for host in ("rebind.attacker.example", "rebind.attacker.example:8123",
                 "localhost.attacker.example:8123", "localhost:9999", "127.0.0.2:8123", ""):
        response = call(ds, "get", "/mailbot/teilnehmende.json", cookies=cookies,
                        headers={"Host": host})
        assert response.status_code == 400, host
        assert "Emma" not in response.text
    for host in ("localhost:8123", "127.0.0.1:8123", "[::1]:8123", "LOCALHOST:8123"):
        assert call(ds, "get", "/mailbot/teilnehmende.json", cookies=cookies,
                    headers={"Host": host}).status_code == 200, host


def test_serve_config_key_and_refusal_without_a_password(logged, tmp_path,  # noqa: F811
                                                         monkeypatch):
    both = tmp_path / "both.toml"
    both.write_text(logged.read_text() + SERVE_SECTION + 'password_file = "serve"\n')
    result = CliRunner().invoke(main, ["--config", str(both), "serve"])
    assert result.exit_code == 2 and "[serve] password_env: give password_env or " \
                                      "password_file, not both" in result.output
    secret = tmp_path / "serve-password"
    secret.write_text(PASSWORD + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # systemd's LoadCredential=
    from_file = tmp_path / "file.toml"
    from_file.write_text(logged.read_text() + '\n[serve]\npassword_file = "serve-password"\n')
    assert config_mod.serve_password(config_mod.load(from_file, secrets=False)) == PASSWORD
    result = CliRunner().invoke(main, ["--config", str(logged), "serve", "--port", "1"])
    assert result.exit_code == 2 and "serve needs a login: give the password in [serve] " \
                                      "password_file" in result.output
    assert "Traceback" not in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as the kernel shows them) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def _start(config: Path, *args: str, ready) -> subprocess.Popen:
    env = {**os.environ, "MAILBOT_SERVE_PASSWORD": PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(config),
                             "serve", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def test_serve_listens_on_loopback_only_behind_the_login(logged, tmp_path):  # noqa: F811
    config = tmp_path / "serve.toml"
    config.write_text(logged.read_text() + SERVE_SECTION)
    port = _free_port()
    proc = _start(config, "--port", str(port), ready=lambda: _listening(port))
    try:
        assert _listening(port) == {"0100007F"}, "127.0.0.1 only, no IPv4/IPv6 wildcard"
        base = f"http://127.0.0.1:{port}"
        with pytest.raises(urllib.error.HTTPError) as rebind:
            urllib.request.urlopen(urllib.request.Request(
                f"{base}/mailbot", headers={"Host": f"rebind.attacker.example:{port}"}))
        assert rebind.value.code == 400
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = browser.open(f"{base}/mailbot/warteliste")  # redirected to the login page
        assert page.url.startswith(f"{base}/-/anmelden"), page.url
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.read().decode())[1]
        form = urllib.parse.urlencode({"csrftoken": token, "passwort": PASSWORD,
                                       "weiter": "/mailbot/warteliste.json?_shape=array"})
        with browser.open(f"{base}/-/anmelden", data=form.encode()) as response:
            assert [r["Name"] for r in json.load(response)][:1] == ["Emma Engel"]
        before = _counts(logged)
        for path in (f"/mailbot.json?sql={urllib.parse.quote(SECRET_SQL)}",
                     "/mailbot.json?sql=DELETE+FROM+registrations", "/mailbot/outbox.json"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                browser.open(f"{base}{path}")
            assert refused.value.code in (400, 403), path
        assert _counts(logged) == before
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "http://127.0.0.1:" in err and "read-only" in err and "password" in err


def _as_nobody_connect(path: Path) -> int:
    """Exit code of a connect() to ``path`` by user nobody: 0 connected, 13 refused."""
    code = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\n"
            f"try:\n s.connect({str(path)!r})\nexcept PermissionError:\n sys.exit(13)\n")
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           sys.executable, "-c", code], capture_output=True).returncode


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: Path):
        super().__init__("localhost")
        self.path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as user nobody")
def test_serve_on_a_socket_is_0600_and_closed_to_other_users(logged):  # noqa: F811
    folder = Path(tempfile.mkdtemp(prefix="mailbot-serve-"))
    os.chmod(folder, 0o755)  # only the socket's own mode stands in the way
    path = folder / "serve.sock"
    proc = _start(logged, "--socket", str(path), ready=path.exists)
    try:
        assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
        assert _as_nobody_connect(path) == 13, "another user cannot even connect"
        connection = _UnixHTTP(path)
        connection.request("GET", "/mailbot/warteliste.json?_shape=array")
        assert [r["Name"] for r in json.load(connection.getresponse())][:1] == ["Emma Engel"]
        connection.request("GET", f"/mailbot.json?sql={urllib.parse.quote(SECRET_SQL)}")
        assert connection.getresponse().status == 403, "no free SQL on the socket either"
        os.chmod(path, 0o666)  # the check above can fail: a 0666 socket lets nobody in
        assert _as_nobody_connect(path) == 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        again = browse.bind_socket(path)  # a socket left by a stopped serve is replaced
        again.close()
        shutil.rmtree(folder)
    assert f"socket {path}" in err


def test_served_database_stays_closed_with_metadata_that_opens_it(logged):  # noqa: F811
    opened = json.loads(json.dumps(METADATA))
    opened["allow_sql"] = True
    opened["databases"]["mailbot"]["tables"]["outbox"]["allow"] = True
    opened["databases"]["mailbot"]["tables"]["outbox"]["hidden"] = False
    ds = browse.make_datasette(logged.parent / "mailbot.sqlite", opened, PASSWORD)
    _, cookies = log_in(ds)
    assert call(ds, "get", "/mailbot/outbox.json", cookies=cookies).status_code == 403
    assert call(ds, "get", f"/mailbot.json?sql={urllib.parse.quote(SECRET_SQL)}",
                cookies=cookies).status_code == 403
    assert sqlite3.connect(logged.parent / "mailbot.sqlite").execute(
        "select count(*) from outbox").fetchone()[0] > 0, "there was something to leak"


def test_the_login_leads_on_to_no_other_site_through_a_blank_in_the_path(logged):  # noqa: F811
    """A browser drops tabs and line ends from a Location (the URL standard): "/<TAB>/evil"
    would be "//evil.example", another site, after the organiser typed her password."""
    ds = gated(logged)
    for weiter in ("/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/ /evil"):
        page = call(ds, "get", "/-/anmelden?weiter=" + urllib.parse.quote(weiter))
        assert 'name="weiter" value="/"' in page.text, repr(weiter)
