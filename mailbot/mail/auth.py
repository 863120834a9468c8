"""Logging in to the mail servers: a password, or an OAuth2 access token (SASL XOAUTH2).

Tokens come from the provider's own library — ``msal`` for Microsoft 365 (app-only client
credentials), ``google-auth`` for Google (a service account with domain-wide delegation) —
or, for any other provider, from a plain client-credentials POST to its token URL. Each
token is kept in memory, renewed before it expires, and renewed once more when the server
refuses it (a revoked or server-side expired token) before the login counts as refused.

``inbox.py`` and ``outbox.py`` call :func:`imap_login` and :func:`smtp_login`; every
refusal is an :class:`AuthError` whose one-line message names what to fix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mailbot.config import ImapConfig, OAuth2Config, SmtpConfig
from mailbot.host.notify import STOPPING, alive, command_timeout

log = logging.getLogger(__name__)

MARGIN = 300.0  # renew this many seconds before a token expires (a fifth of short ones)
TOKEN_TIMEOUT = 30.0  # seconds a token request may take (below the watchdog: command_timeout)


class AuthError(Exception):
    """Raised when a login or a token is refused (wrong password, expired or revoked
    secret, missing permission). The message is one line, names the fix, holds no secret."""


class AuthUnreachable(AuthError):
    """Raised when the token endpoint cannot be reached: a connection problem (retried
    with backoff like a lost server), not a refusal."""


# -- tokens -----------------------------------------------------------------------------


class Tokens:
    """The access tokens of one ``[oauth2]`` configuration, cached in memory."""

    def __init__(self, cfg: OAuth2Config, clock=time.time):
        self.cfg = cfg
        self.clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()
        self.client: Any = None  # msal's or google-auth's object, made once

    def token(self) -> str:
        """A token that is valid for a while yet; fetched when none is."""
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def renew(self) -> str:
        """A new token, whatever the cache holds (the server refused the cached one)."""
        with self._lock:
            self._token = None
            self._fetch(fresh=True)
            assert self._token is not None
            return self._token

    def _fetch(self, fresh: bool = False) -> None:
        fetch = {"microsoft": _microsoft, "google": _google}.get(self.cfg.provider, _generic)
        token, lifetime = fetch(self, fresh)
        now = self.clock()
        self._token = token
        self._renew_at = now + lifetime - min(MARGIN, lifetime / 5)
        log.info("OAuth2 token fetched from %s, valid for %d s", self.cfg.provider, lifetime)


_sources: dict[OAuth2Config, Tokens] = {}
_sources_lock = threading.Lock()


def tokens_for(cfg: OAuth2Config) -> Tokens:
    """The process-wide token cache for ``cfg`` (IMAP and SMTP share one)."""
    with _sources_lock:
        if cfg not in _sources:
            _sources[cfg] = Tokens(cfg)
        return _sources[cfg]


def _refused(cfg: OAuth2Config, what: str) -> AuthError:
    fix = {
        "microsoft": "renew the client secret (or certificate) of the app in the Entra admin "
                     "centre (App registrations → Certificates & secrets) and put it into",
        "google": "create a new key for the service account in the Google Cloud console "
                  "(IAM → Service accounts → Keys) and put it into",
        "generic": "get a new client secret from your provider and put it into",
    }[cfg.provider]
    return AuthError(f"OAuth2 token refused by {cfg.provider}: {what}; {fix} "
                     f"{cfg.secret_file} ([oauth2])")


def _generic(source: Tokens, fresh: bool) -> tuple[str, float]:
    """The client-credentials grant (RFC 6749 4.4) as one POST."""
    cfg = source.cfg
    assert cfg.token_url and cfg.client_id and cfg.client_secret
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": cfg.client_id,
        "client_secret": cfg.client_secret, "scope": cfg.scope}).encode()
    request = urllib.request.Request(cfg.token_url, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    context = ssl.create_default_context(cafile=cfg.ca_file)
    try:
        with urllib.request.urlopen(request, timeout=command_timeout(TOKEN_TIMEOUT),
                                    context=context) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:  # busy or down: try again later
            raise AuthUnreachable(f"OAuth2 token endpoint {cfg.token_url} not reachable: "
                                  f"HTTP {exc.code} ({str(exc.reason)[:100]}); tried again "
                                  f"later") from None
        try:
            data = json.loads(exc.read())
        except ValueError:
            data = {"error": f"HTTP {exc.code}"}
        raise _refused(cfg, _oauth_error(data if isinstance(data, dict) else {})) from None
    except (OSError, ValueError) as exc:
        raise AuthUnreachable(f"OAuth2 token endpoint {cfg.token_url} not reachable: "
                        f"{getattr(exc, 'reason', exc)}") from None
    if not isinstance(data, dict) or not data.get("access_token"):
        raise _refused(cfg, _oauth_error(data if isinstance(data, dict) else {}))
    return str(data["access_token"]), lifetime(data.get("expires_in"))


def lifetime(value: Any) -> float:
    """Seconds a token is good for, from ``expires_in``: a number, or a string of one
    ("3600", "3600s" as some providers send it); anything else counts as an hour (a
    token refused before then is renewed once anyway)."""
    if isinstance(value, str):
        value = value.strip().removesuffix("s").strip()
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        if value not in (None, ""):
            log.warning("OAuth2: expires_in %r is not a number; taking one hour",
                        str(value)[:40])
        return 3600.0
    return seconds if 0 < seconds < 10 * 365 * 86400 else 3600.0


def _oauth_error(data: dict) -> str:
    """An OAuth2 error answer in one short line (the first line of its description)."""
    error = str(data.get("error") or "no access token in the answer")
    description = (str(data.get("error_description") or "").strip().splitlines() or [""])[0]
    description = description[:200]
    return f"{error} ({description})" if description else error


def _session(ca_file: str | None) -> Any:
    """A requests session that trusts ``ca_file`` (else the system's CAs) and gives up a
    stalled token endpoint like a stalled mail server (requests waits forever by default:
    systemd's watchdog would kill mailbot first). Given on each request, as a session-wide
    ``verify`` loses against ``$REQUESTS_CA_BUNDLE``."""
    import requests

    class Session(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", command_timeout(TOKEN_TIMEOUT))
            if ca_file:
                kwargs.setdefault("verify", ca_file)
            return super().request(*args, **kwargs)

    return Session()


def _microsoft(source: Tokens, fresh: bool) -> tuple[str, float]:
    """App-only token for Exchange Online (``IMAP.AccessAsApp``/``SMTP.SendAsApp``)."""
    cfg = source.cfg
    if source.client is None:
        import msal

        credential: Any = cfg.client_secret
        if cfg.certificate:
            credential = {"private_key": cfg.certificate, "thumbprint": cfg.thumbprint}
        source.client = msal.ConfidentialClientApplication(
            cfg.client_id, client_credential=credential,
            authority=f"{cfg.authority}/{cfg.tenant}", http_client=_session(cfg.ca_file),
            instance_discovery=cfg.authority == "https://login.microsoftonline.com")
    app = source.client
    if fresh:
        app.remove_tokens_for_client()
    try:
        result = app.acquire_token_for_client(scopes=[cfg.scope])
    except ValueError as exc:  # e.g. an unknown tenant, found while discovering it
        raise _refused(cfg, _short(exc)) from None
    except OSError as exc:
        raise AuthUnreachable(f"Microsoft sign-in ({cfg.authority}) not reachable: "
                              f"{exc}") from None
    if "access_token" not in result:
        raise _refused(cfg, _oauth_error(result))
    return result["access_token"], lifetime(result.get("expires_in"))


def _google(source: Tokens, fresh: bool) -> tuple[str, float]:
    """A service account's token for the delegated mailbox (domain-wide delegation)."""
    from google.auth import exceptions as google_exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    cfg = source.cfg
    if source.client is None:
        try:
            info = json.loads(cfg.service_account or "")
            source.client = service_account.Credentials.from_service_account_info(
                info, scopes=[cfg.scope], subject=cfg.delegated_user)
        except (ValueError, KeyError) as exc:
            raise AuthError(f"{cfg.secret_file}: not a service-account key file "
                            f"({str(exc)[:100]}); download a JSON key in the Google Cloud "
                            f"console ([oauth2] service_account_file)") from None
    credentials = source.client
    try:
        credentials.refresh(Request(_session(cfg.ca_file)))
    except google_exceptions.RefreshError as exc:
        raise _refused(cfg, _google_error(exc)) from None
    except google_exceptions.TransportError as exc:
        raise AuthUnreachable(f"Google token endpoint not reachable: {exc}") from None
    lifetime = 3600.0
    if credentials.expiry is not None:  # google-auth keeps it as a naive UTC time
        expiry = credentials.expiry.replace(tzinfo=credentials.expiry.tzinfo or dt.UTC)
        lifetime = max((expiry - dt.datetime.now(dt.UTC)).total_seconds(), 1.0)
    return credentials.token, lifetime


def _google_error(exc: Exception) -> str:
    args: tuple[object, ...] = getattr(exc, "args", ())
    if len(args) > 1 and isinstance(args[1], dict):
        return _oauth_error(args[1])
    return (str(args[0] if args else exc).strip().splitlines() or [""])[0][:200]


# -- logging in -------------------------------------------------------------------------


def mechanism(cfg: ImapConfig | SmtpConfig) -> str:
    """How mailbot logs in to this server, for `mailbot check`."""
    if cfg.auth == "oauth2" and cfg.oauth2 is not None:
        return f"OAuth2 XOAUTH2 (token from {cfg.oauth2.provider})"
    return "password"


def imap_login(client: Any, cfg: ImapConfig) -> None:
    """Log ``client`` (an IMAPClient) in; raises AuthError when refused."""
    from imapclient.exceptions import LoginError

    where = f"IMAP {cfg.host}:{cfg.port}"
    if cfg.auth != "oauth2" or cfg.oauth2 is None:
        try:
            client.login(cfg.username, cfg.password)
        except LoginError:
            raise AuthError(f"{where}: login refused for user {cfg.username!r} "
                            f"({_imap_password_hint(cfg)})") from None
        return
    source = tokens_for(cfg.oauth2)
    try:
        client.oauth2_login(cfg.username, _unless_stopping(_token(source, where), where))
        return
    except LoginError:
        log.info("%s: OAuth2 token refused; fetching a new one", where)
    try:
        client.oauth2_login(cfg.username,
                            _unless_stopping(_token(source, where, renew=True), where))
    except LoginError as exc:
        raise AuthError(f"{where}: OAuth2 login refused for mailbox {cfg.username!r} "
                        f"({_short(exc)}); {_grant_hint(cfg.oauth2, 'imap')}") from None


async def smtp_login(client: Any, cfg: SmtpConfig) -> None:
    """Log ``client`` (an aiosmtplib.SMTP, greeted) in; raises AuthError when refused."""
    import aiosmtplib

    where = f"SMTP {cfg.host}:{cfg.port}"
    if cfg.auth != "oauth2" or cfg.oauth2 is None:
        try:
            await client.login(cfg.username, cfg.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise AuthError(f"{where}: login refused for user {cfg.username!r} "
                            f"({exc.code} {exc.message}); {_password_hint(exc)}") from None
        return
    source = tokens_for(cfg.oauth2)
    # a token request blocks (and may wait for the IMAP side's under the cache's lock): in
    # a thread, so the event loop goes on telling the watchdog and can honour a stop
    try:
        token = await asyncio.to_thread(_token, source, where)
        await client.auth_xoauth2(cfg.username, _unless_stopping(token, where))
        return
    except aiosmtplib.SMTPAuthenticationError:
        log.info("%s: OAuth2 token refused; fetching a new one", where)
    try:
        token = await asyncio.to_thread(_token, source, where, True)
        await client.auth_xoauth2(cfg.username, _unless_stopping(token, where))
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise AuthError(f"{where}: OAuth2 login refused for mailbox {cfg.username!r} "
                        f"({exc.code} {exc.message}); "
                        f"{_grant_hint(cfg.oauth2, 'smtp')}") from None


def _token(source: Tokens, where: str, renew: bool = False) -> str:
    """A token for a login. The watchdog hears from us first: connect, token fetch and a
    renewal after a refusal are each capped below WatchdogSec/2 (command_timeout), and a
    ping before each fetch keeps their sum from looking like a hang. A stop (SIGTERM)
    ends the wait for the token endpoint at once (the request is left to its thread)."""
    alive()
    _unless_stopping("", where)
    outcome: list[Any] = []

    def fetch() -> None:
        try:
            outcome.append(source.renew() if renew else source.token())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome.append(exc)

    worker = threading.Thread(target=fetch, name="oauth2-token", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
        alive()
        if worker.is_alive():
            _unless_stopping("", where)
    result = outcome[0]
    if isinstance(result, AuthError):
        raise type(result)(f"{where}: {result}") from None
    if isinstance(result, BaseException):
        raise result
    return result


def _unless_stopping(token: str, where: str) -> str:
    """``token``, unless mailbot is stopping: then no login or renewal is begun."""
    if STOPPING.is_set():
        raise AuthUnreachable(f"{where}: mailbot is stopping; no OAuth2 login begun")
    return token


def _short(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else exc
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (str(text).strip().splitlines() or [""])[0][:200]


def _imap_password_hint(cfg: ImapConfig) -> str:
    host = cfg.host.lower()
    if cfg.provider == "microsoft365" or host.endswith("office365.com"):
        return ('Microsoft 365 takes no passwords for IMAP: set [imap] auth = "oauth2" with '
                "an [oauth2] section, see docs/providers.md, Microsoft 365")
    if cfg.provider == "google" or host.endswith(("gmail.com", "googlemail.com")):
        return ("Google takes an app password (2-step verification on) or OAuth2: see "
                "docs/providers.md, Google Workspace")
    return "check [imap] username and the password"


def _password_hint(exc: Any) -> str:
    message = str(getattr(exc, "message", ""))
    if "5.7.139" in message or "5.7.30" in message or "basic auth" in message.lower():
        return ("the provider has switched off password logins (SMTP AUTH): set [smtp] auth "
                '= "oauth2" with an [oauth2] section (see docs/providers.md, Microsoft 365)')
    return "check [smtp] username and the password (an app password, where the provider " \
           "asks for one)"


def _grant_hint(cfg: OAuth2Config, proto: str) -> str:
    if cfg.provider == "microsoft":
        permission = "IMAP.AccessAsApp" if proto == "imap" else "SMTP.SendAsApp"
        return (f"check that the app has {permission} with admin consent and that its "
                f"service principal was given access to the mailbox (Add-MailboxPermission)"
                + ("; SMTP AUTH must be on for the mailbox" if proto == "smtp" else ""))
    if cfg.provider == "google":
        return ("check the domain-wide delegation of the service account's client id for "
                "https://mail.google.com/ in the Admin console, and [oauth2] delegated_user")
    return "check that the token's scope and user are accepted by the mail server ([oauth2])"
