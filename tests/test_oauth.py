"""OAuth2 logins against the real Dovecot (``passdb oauth2``) and aiosmtpd (``AUTH XOAUTH2``),
with the provider's token and introspection endpoints faked on loopback (tokenserver.py)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import signal
import socket
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from conftest import CONFIG, Mailbox, registration_mail, rows, start_daemon, stop, wait_for
from servers import free_port, start_dovecot
from tokenserver import Provider, XOAuth2Handler, google_key, self_signed

from mailbot import config as cfg
from mailbot.cli import main
from mailbot.mail import auth
from mailbot.mail.inbox import open_inbox
from mailbot.mail.smtp import open_transport

_apps = itertools.count(1)


pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = Provider(tls_cert=cert, tls_key=key)
    server.cert = cert
    yield server
    server.close()


@pytest.fixture(scope="module")
def oauth_dovecot(provider):
    server = start_dovecot(oauth_url=provider.introspection_url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth_smtp_server(provider):
    handler = XOAuth2Handler(provider)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            auth_require_tls=False, auth_required=True)
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def oauth_smtp(oauth_smtp_server):
    handler, _ = oauth_smtp_server
    handler.envelopes.clear()
    handler.logins.clear()
    handler.on_message = None
    return handler


@pytest.fixture
def account(oauth_dovecot, provider, tmp_path):
    """A fresh mailbox and an app registered for it at the provider."""
    n = next(_apps)
    box = Mailbox(oauth_dovecot, f"oauth{n}@isi-innovation.de")
    client, secret = f"app-{n}", f"secret-{n}"
    provider.clients[client] = (secret, box.user)
    (tmp_path / "client-secret").write_text(secret + "\n")
    (tmp_path / "client-secret").chmod(0o600)
    box.client_id = client
    yield box
    box.close()


def write_config(tmp_path, account, oauth_dovecot, smtp_port, oauth2: str,
                 extra: str = "") -> object:
    text = CONFIG.format(start="2021-05-31T10:00:00", end="2021-05-31T15:00:00",
                         imap_port=oauth_dovecot.port, user=account.user, smtp_port=smtp_port,
                         db=tmp_path / "mailbot.sqlite", capacity="")
    text = text.replace('password_env = "MAILBOT_IMAP_PASSWORD"', 'auth = "oauth2"')
    text = text.replace('security = "none"\n\n[database]',
                        f'security = "none"\nauth = "oauth2"\nusername = "{account.user}"\n'
                        f'\n[database]')
    path = tmp_path / "mailbot.toml"
    path.write_text(text + "\n[oauth2]\n" + oauth2 + extra)
    return path


def generic(provider, account, tmp_path) -> str:
    return (f'provider = "generic"\ntoken_url = "{provider.token_url}"\n'
            f'client_id = "{account.client_id}"\n'
            f'client_secret_file = "{tmp_path / "client-secret"}"\n'
            f'scope = "https://mail.example/.default"\n')


@pytest.fixture
def generic_config(tmp_path, account, oauth_dovecot, oauth_smtp_server, provider):
    _, port = oauth_smtp_server
    return write_config(tmp_path, account, oauth_dovecot, port,
                        generic(provider, account, tmp_path))


def invoke(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def issued(provider, account) -> list[str]:
    return [token for client, token in provider.issued if client == account.client_id]


def test_mail_is_read_and_answered_with_oauth2_tokens(generic_config, account, oauth_smtp,
                                                      provider):
    account.append(registration_mail("Anna Arndt", "anna@a.example"))

    result = invoke(generic_config, "run", "--once")

    assert result.exit_code == 0, result.output
    assert [e.rcpt_tos for e in oauth_smtp.envelopes] == [["anna@a.example"]]
    assert account.folder("INBOX") == {}
    tokens = issued(provider, account)
    assert len(tokens) == 1, "one token serves IMAP and SMTP"
    assert oauth_smtp.logins == [(tokens[0], True)]


def test_check_names_the_mechanism(generic_config, oauth_smtp):
    result = invoke(generic_config, "check")

    assert result.exit_code == 1, result.output  # valid, but the 2021 test event is over
    lines = [line for line in result.output.splitlines() if line[:1] in "✓✗"]
    imap = next(line for line in lines if "IMAP" in line)
    smtp = next(line for line in lines if "SMTP" in line)
    assert imap.startswith("✓") and "OAuth2 XOAUTH2 (token from generic)" in imap
    assert smtp.startswith("✓") and "OAuth2 XOAUTH2 (token from generic)" in smtp


def test_a_token_is_renewed_before_it_expires(generic_config, account, provider):
    config = cfg.load(generic_config)
    now = [1000.0]
    source = auth.Tokens(config.imap.oauth2, clock=lambda: now[0])

    first = source.token()
    now[0] += 3000  # 10 minutes before the hour is up: still good
    assert source.token() == first
    now[0] += 400  # less than 5 minutes left: a new one
    second = source.token()

    assert second != first
    assert issued(provider, account) == [first, second]


def test_a_token_the_server_refuses_is_renewed_once(generic_config, account, oauth_smtp,
                                                    provider):
    config = cfg.load(generic_config)
    open_inbox(config.imap, None, 10, 10**6).close()
    open_transport(config.smtp, config.contact.address).probe()
    provider.expire_all()  # the provider ended them early: mailbot's cache does not know

    open_inbox(config.imap, None, 10, 10**6).close()
    provider.expire_all()
    open_transport(config.smtp, config.contact.address).probe()

    tokens = issued(provider, account)
    assert len(tokens) == 3
    assert oauth_smtp.logins == [(tokens[0], True), (tokens[1], False), (tokens[2], True)]


def test_tokens_expiring_during_a_run_lose_and_repeat_no_reply(generic_config, account,
                                                               oauth_smtp, provider):
    people = [(f"Person {i}", f"p{i}@x{i}.example") for i in range(6)]
    for name, address in people:
        account.append(registration_mail(name, address))
    text = generic_config.read_text().replace("poll_interval = 0.5",
                                              "poll_interval = 0.5\nbatch_size = 2")
    generic_config.write_text(text)

    def expire(envelope):  # after the third reply, every token is expired
        if len(oauth_smtp.envelopes) == 3:
            provider.expire_all()

    oauth_smtp.on_message = expire

    result = invoke(generic_config, "run", "--once")

    assert result.exit_code == 0, result.output
    sent = sorted(e.rcpt_tos[0] for e in oauth_smtp.envelopes)
    assert sent == sorted(address for _, address in people)
    assert rows(generic_config, "SELECT status, count(*) FROM outbox GROUP BY status") == [
        ("sent", 6)]
    assert any(not ok for _, ok in oauth_smtp.logins), "a stale token was refused"
    assert len(issued(provider, account)) == 2


def test_a_revoked_secret_is_one_line_naming_the_fix(generic_config, account, provider,
                                                     oauth_smtp):
    account.append(registration_mail("Anna Arndt", "anna@a.example"))
    provider.revoke(account.client_id)

    result = invoke(generic_config, "run", "--once")
    check = invoke(generic_config, "check")

    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "invalid_client" in lines[0] and "client secret" in lines[0]
    assert "client-secret ([oauth2])" in lines[0], "names the file to put the new secret in"
    assert "Traceback" not in result.output
    assert check.exit_code == 2
    assert any(line.startswith("✗") and "invalid_client" in line
               for line in check.output.splitlines())
    assert oauth_smtp.envelopes == []
    assert account.folder("INBOX") != {}, "the mail waits for the fix"


def test_a_password_refused_by_a_tenant_without_smtp_auth_says_use_oauth2(
        tmp_path, account, oauth_dovecot, oauth_smtp_server, provider, monkeypatch):
    _, port = oauth_smtp_server
    path = write_config(tmp_path, account, oauth_dovecot, port,
                        generic(provider, account, tmp_path))
    path.write_text(path.read_text().replace(
        'auth = "oauth2"\nusername', 'password_env = "SMTP_PASSWORD"\nusername'))
    monkeypatch.setenv("SMTP_PASSWORD", "an-old-password")

    result = invoke(path, "check")

    assert result.exit_code == 2
    smtp = next(line for line in result.output.splitlines() if line.startswith("✗ SMTP"))
    assert "5.7.139" in smtp
    assert '[smtp] auth = "oauth2"' in smtp, "names the fix"
    assert "an-old-password" not in result.output


def test_google_service_account_logs_in(tmp_path, account, oauth_dovecot, oauth_smtp_server,
                                        provider, oauth_smtp):
    robot = f"mailbot-{account.client_id}@project.iam.gserviceaccount.com"
    info, public = google_key(provider.token_url, robot)
    provider.google[robot] = public
    key = tmp_path / "service-account.json"
    key.write_text(json.dumps(info))
    _, port = oauth_smtp_server
    path = write_config(tmp_path, account, oauth_dovecot, port,
                        f'provider = "google"\nservice_account_file = "{key}"\n'
                        f'delegated_user = "{account.user}"\n')

    result = invoke(path, "check")

    assert result.exit_code == 1, result.output  # valid; the 2021 test event is over
    assert "OAuth2 XOAUTH2 (token from google)" in result.output
    assert [client for client, _ in provider.issued].count(robot) == 1
    provider.revoke(robot)
    provider.expire_all()
    refused = invoke(path, "check")
    assert refused.exit_code == 2
    assert "service account" in refused.output and "invalid_grant" in refused.output


def test_microsoft_app_logs_in_through_msal(tmp_path, account, oauth_dovecot,
                                            oauth_smtp_server, provider, oauth_smtp):
    _, port = oauth_smtp_server
    path = write_config(tmp_path, account, oauth_dovecot, port,
                        f'provider = "microsoft"\ntenant = "contoso.onmicrosoft.com"\n'
                        f'client_id = "{account.client_id}"\n'
                        f'client_secret_file = "client-secret"\n'
                        f'authority = "{provider.tls_base}"\nca_file = "{provider.cert}"\n')
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}  # systemd's LoadCredential=

    result = CliRunner(env=env).invoke(main, ["--config", str(path), "check"])

    assert result.exit_code == 1, result.output  # valid; the 2021 test event is over
    assert "OAuth2 XOAUTH2 (token from microsoft)" in result.output
    assert len(issued(provider, account)) == 1
    provider.revoke(account.client_id)
    provider.expire_all()
    refused = CliRunner(env=env).invoke(main, ["--config", str(path), "check"])
    assert refused.exit_code == 2
    assert "AADSTS7000222" in refused.output and "Entra admin centre" in refused.output


def test_secrets_are_never_taken_from_the_toml(tmp_path, generic_config):
    text = generic_config.read_text() + 'client_secret = "hunter2"\n'
    generic_config.write_text(text)
    with pytest.raises(cfg.ConfigError, match=r"\[oauth2\] client_secret: secrets never go"):
        cfg.load(generic_config)


def test_oauth2_without_its_section_is_named(tmp_path, generic_config):
    text = generic_config.read_text().split("\n[oauth2]")[0]
    generic_config.write_text(text)
    with pytest.raises(cfg.ConfigError, match=r'\[imap\] auth: "oauth2" needs an \[oauth2\]'):
        cfg.load(generic_config)


# -- health you cannot miss ---------------------------------------------------------------


def alerts_in(messages) -> list:
    return [m for m in messages if str(m["Subject"]).startswith("mailbot arbeitet nicht")]


def test_a_refused_imap_login_is_shown_by_status_and_mailed_once(
        tmp_path, account, oauth_dovecot, smtp_server, smtp, provider):
    controller, _ = smtp_server  # a relay without login: SMTP still works
    path = write_config(tmp_path, account, oauth_dovecot, controller.port,
                        generic(provider, account, tmp_path))
    path.write_text(path.read_text().replace(f'auth = "oauth2"\nusername = "{account.user}"\n',
                                             ""))
    account.append(registration_mail("Anna Arndt", "anna@a.example"))
    assert invoke(path, "run", "--once").exit_code == 0  # creates the database
    provider.revoke(account.client_id)
    provider.expire_all()

    first = invoke(path, "run", "--once")
    second = invoke(path, "run", "--once")
    status = invoke(path, "status")

    assert first.exit_code == second.exit_code == 2
    assert status.exit_code == 1
    assert status.output.startswith("State: NOT WORKING\n  IMAP refuses the login since")
    assert "invalid_client" in status.output
    alerts = alerts_in(smtp.messages())
    assert len(alerts) == 1, "the organiser is told once"
    assert alerts[0]["To"] == "Nathalie Collinet <n.collinet@isi-innovation.de>"
    assert alerts[0]["Auto-Submitted"] == "auto-generated"
    assert "client-secret" in alerts[0].get_content()

    provider.revoked.discard(account.client_id)  # the IT person put in a new secret
    account.append(smtp.envelopes[-1].content)  # the alert arrives in the inbox
    again = invoke(path, "run", "--once")
    status = invoke(path, "status")
    review = invoke(path, "review")

    assert again.exit_code == 0, again.output
    assert status.exit_code == 0 and status.output.startswith("State: working\n")
    assert len(alerts_in(smtp.messages())) == 1, "the alert itself is never answered"
    inbox = account.folder("INBOX")
    assert [b"\\Flagged" in m["flags"] for m in inbox.values()] == [True]
    assert "mailbot-Warnung" in review.output


def test_a_refused_smtp_login_puts_the_alert_into_the_inbox_once(
        tmp_path, account, oauth_dovecot, oauth_smtp_server, provider, oauth_smtp,
        monkeypatch):
    _, port = oauth_smtp_server  # takes XOAUTH2 only: a password is refused (5.7.139)
    path = write_config(tmp_path, account, oauth_dovecot, port,
                        generic(provider, account, tmp_path))
    path.write_text(path.read_text().replace(
        'auth = "oauth2"\nusername', 'password_env = "SMTP_PASSWORD"\nusername'))
    monkeypatch.setenv("SMTP_PASSWORD", "an-old-password")
    account.append(registration_mail("Anna Arndt", "anna@a.example"))

    invoke(path, "run", "--once")
    invoke(path, "run", "--once")
    status = invoke(path, "status")

    assert status.exit_code == 1
    assert "SMTP refuses the login" in status.output and "5.7.139" in status.output
    assert rows(path, "SELECT kind, status FROM outbox") == [("confirmation", "queued")]
    inbox = account.folder("INBOX")
    assert len(inbox) == 1, "one alert, in the inbox; the registration was handled"
    alert = next(iter(inbox.values()))
    assert b"\\Flagged" in alert["flags"]
    assert b"mailbot arbeitet nicht" in alert["raw"]
    assert oauth_smtp.envelopes == []


def test_the_service_renews_short_lived_tokens_before_they_expire(generic_config, account,
                                                                  oauth_smtp, provider):
    """`mailbot run` with tokens good for 2 s: every login of a new SMTP connection uses a
    token that is still good (renewed ahead of its end), none is refused."""
    provider.lifetime = 2.0
    try:
        proc = start_daemon(generic_config, "unused")
        try:
            for i in range(3):
                account.append(registration_mail(f"Person {i}", f"p{i}@x{i}.example"))
                assert wait_for(lambda n=i: len(oauth_smtp.envelopes) == n + 1), \
                    f"reply {i} sent"
                time.sleep(2.2)  # the token of the last login is (nearly) used up
        finally:
            err = stop(proc)
    finally:
        provider.lifetime = 3600.0
    assert [ok for _, ok in oauth_smtp.logins] == [True] * len(oauth_smtp.logins), err
    assert len(issued(provider, account)) >= 3
    assert sorted(e.rcpt_tos[0] for e in oauth_smtp.envelopes) == [
        f"p{i}@x{i}.example" for i in range(3)]
    assert "Traceback" not in err


def test_an_unreachable_token_endpoint_is_a_connection_problem_not_a_refusal(
        tmp_path, account, oauth_dovecot, oauth_smtp_server, provider, oauth_smtp):
    _, port = oauth_smtp_server
    path = write_config(tmp_path, account, oauth_dovecot, port,
                        generic(provider, account, tmp_path).replace(
                            provider.token_url, f"http://127.0.0.1:{free_port()}/token"))
    account.append(registration_mail("Anna Arndt", "anna@a.example"))

    result = invoke(path, "run", "--once")
    status = invoke(path, "status")

    assert result.exit_code == 2
    assert "OAuth2 token endpoint" in result.output and "not reachable" in result.output
    assert status.exit_code == 0 and status.output.startswith("State: working")


def test_a_stalled_token_endpoint_is_given_up_below_the_watchdog(generic_config, monkeypatch):
    """A token endpoint that takes the connection and never answers (a fake: no real server
    stalls on cue) is given up like a stalled mail server, at 0.4 x WatchdogSec, not after
    the 30 s of a token request: systemd would have killed mailbot by then."""
    config = cfg.load(generic_config)
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(4)  # the kernel completes the handshake; nobody ever reads or answers
    url = f"http://127.0.0.1:{stalled.getsockname()[1]}/token"
    source = auth.Tokens(dataclasses.replace(config.imap.oauth2, token_url=url))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # WatchdogSec=2: 0.8 s per request
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            source.token()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=fetch, daemon=True)
    try:
        worker.start()
        worker.join(20)  # a hang check far above 0.8 s and below the old 30 s, not a timing
        assert not worker.is_alive(), "the token request waited past the watchdog"
    finally:
        stalled.close()
    assert len(outcome) == 1 and isinstance(outcome[0], auth.AuthUnreachable), outcome
    assert "not reachable" in str(outcome[0])


def test_a_refused_password_at_microsoft_names_oauth2(tmp_path, make_config, monkeypatch):
    path = make_config()
    path.write_text(path.read_text().replace('[imap]\n', '[imap]\nprovider = "microsoft365"\n',
                                             1))
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "an-old-password")

    result = invoke(path, "check")

    imap = next(line for line in result.output.splitlines() if line.startswith("✗ IMAP"))
    assert "login refused" in imap and 'set [imap] auth = "oauth2"' in imap
    assert "an-old-password" not in result.output


# -- issue 20, point 14: a token endpoint's faults ---------------------------------------

def test_expires_in_as_a_string_is_read_leniently():
    assert auth.lifetime("3600s") == auth.lifetime("3600") == auth.lifetime(3600) == 3600.0
    assert auth.lifetime("soon") == auth.lifetime(None) == 3600.0


def test_a_token_with_expires_in_3600s_logs_in(generic_config, account, oauth_smtp, provider):
    account.append(registration_mail("Anna Arndt", "anna@a.example"))
    provider.expires_in = "3600s"
    try:
        result = invoke(generic_config, "run", "--once")
    finally:
        provider.expires_in = None
    assert result.exit_code == 0, result.output
    assert [e.rcpt_tos for e in oauth_smtp.envelopes] == [["anna@a.example"]]


@pytest.mark.parametrize("code", [503, 429])
def test_a_busy_token_endpoint_is_unreachable_not_a_refused_secret(
        code, tmp_path, account, oauth_dovecot, smtp_server, smtp, provider):
    controller, _ = smtp_server  # a relay without login: an alert could go out
    path = write_config(tmp_path, account, oauth_dovecot, controller.port,
                        generic(provider, account, tmp_path))
    path.write_text(path.read_text().replace(f'auth = "oauth2"\nusername = "{account.user}"\n',
                                             ""))
    account.append(registration_mail("Anna Arndt", "anna@a.example"))
    provider.fault = (code, {"error": "temporarily_unavailable"})
    try:
        first = invoke(path, "run", "--once")
        second = invoke(path, "run", "--once")
        status = invoke(path, "status")
    finally:
        provider.fault = None
    assert first.exit_code == second.exit_code == 2
    assert "not reachable" in first.output and f"HTTP {code}" in first.output
    assert "refused" not in first.output and "client secret" not in first.output
    assert "NOT WORKING" not in status.output
    assert alerts_in(smtp.messages()) == [], "no alert about a secret that is fine"
    assert invoke(path, "run", "--once").exit_code == 0, "the endpoint is back: working"


def test_sigterm_during_a_slow_token_request_stops_at_once(generic_config, provider):
    provider.delay = 25  # a token endpoint that takes 25 s to answer
    provider.asked = threading.Event()
    proc = start_daemon(generic_config, "unused")
    try:
        assert wait_for(provider.asked.is_set), "the service asks for a token"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        try:  # a hang check far below the 25 s of the request, not a timing
            _, err = proc.communicate(timeout=12)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError("still waiting for the token endpoint after SIGTERM") from None
    finally:
        provider.delay = 0.0
        provider.asked = None
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
