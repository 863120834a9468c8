"""The provider's side of OAuth2, faked on loopback (a real one will not expire or revoke on
cue): a token endpoint (client credentials; Google's JWT bearer grant; Microsoft's OpenID
discovery), the introspection endpoint Dovecot's ``oauth2`` passdb asks, and an aiosmtpd
handler with ``AUTH XOAUTH2`` that asks the same provider."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.smtp import AuthResult
from servers import RecordingHandler


class Provider:
    """Issues tokens for known clients; a token is good until it expires (by the
    provider's clock), every token is expired at once by :meth:`expire_all`, and a revoked
    client gets neither new tokens nor the use of its old ones."""

    def __init__(self, lifetime: float = 3600.0, tls_cert: Path | None = None,
                 tls_key: Path | None = None):
        self.lifetime = lifetime
        self.clients: dict[str, tuple[str, str]] = {}  # client id → (secret, mailbox)
        self.google: dict[str, str] = {}  # service account e-mail → its RSA public key PEM
        self.revoked: set[str] = set()
        self.tokens: dict[str, tuple[str, str, float]] = {}  # token → client, user, expiry
        self.issued: list[tuple[str, str]] = []  # (client, token) in order
        self.refused = 0  # token requests refused
        self.introspected: list[str] = []
        self.fault: tuple[int, dict] | None = None  # the token endpoint's answer instead
        self.expires_in: object = None  # sent as expires_in instead of the lifetime
        self.delay = 0.0  # seconds the token endpoint takes to answer
        self.asked: threading.Event | None = None  # set when a token is asked for
        self._n = itertools.count(1)
        self.lock = threading.Lock()
        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))]
        self.base = f"http://127.0.0.1:{self.servers[0].server_address[1]}"
        self.tls_base = None  # the same endpoints over https, with tls_cert
        if tls_cert:
            tls = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert, tls_key)
            tls.socket = context.wrap_socket(tls.socket, server_side=True)
            self.servers.append(tls)
            self.tls_base = f"https://127.0.0.1:{tls.server_address[1]}"
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base}/introspect"

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    # -- controls -----------------------------------------------------------------------

    def expire_all(self) -> None:
        """Every token issued so far is expired (as if their hour were up)."""
        with self.lock:
            for token, (client, user, _) in list(self.tokens.items()):
                self.tokens[token] = (client, user, 0.0)

    def revoke(self, client: str) -> None:
        with self.lock:
            self.revoked.add(client)

    # -- the endpoints ------------------------------------------------------------------

    def issue(self, client: str, user: str) -> dict:
        token = f"tok{next(self._n)}-{secrets.token_hex(8)}"
        with self.lock:
            self.tokens[token] = (client, user, time.time() + self.lifetime)
            self.issued.append((client, token))
        expires_in = int(self.lifetime) if self.lifetime >= 1 else self.lifetime
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": expires_in if self.expires_in is None else self.expires_in}

    def grant(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt_grant(form.get("assertion", ""))
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        known = self.clients.get(client)
        if known is None or known[0] != secret or client in self.revoked:
            self.refused += 1
            return 401, {"error": "invalid_client", "error_description":
                         "AADSTS7000222: The provided client secret keys for app are expired."
                         "\r\nTrace ID: 1"}
        return 200, self.issue(client, known[1])

    def _jwt_grant(self, assertion: str) -> tuple[int, dict]:
        import jwt

        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            key = self.google[claims["iss"]]
            jwt.decode(assertion, key, algorithms=["RS256"], audience=claims["aud"])
        except Exception:  # noqa: BLE001 - any bad assertion is refused
            claims = {}
        if not claims or claims["iss"] in self.revoked:
            self.refused += 1
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        return 200, self.issue(claims["iss"], claims["sub"])

    def introspect(self, token: str) -> dict:
        with self.lock:
            self.introspected.append(token)
            found = self.tokens.get(token)
            if found is None or found[0] in self.revoked or found[2] < time.time():
                return {"active": False}
            return {"active": True, "username": found[1]}

    def discovery(self, tenant: str) -> dict:
        base = self.tls_base or self.base
        return {"token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "issuer": f"{base}/{tenant}/v2.0"}


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.endswith("/v2.0/.well-known/openid-configuration"):
                self._answer(200, provider.discovery(self.path.split("/")[1]))
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path == "/introspect":
                self._answer(200, provider.introspect(form.get("token", "")))
            elif self.path == "/token" or self.path.endswith("/oauth2/v2.0/token"):
                if provider.asked is not None:
                    provider.asked.set()
                time.sleep(provider.delay)
                self._answer(*(provider.fault or provider.grant(form)))
            else:
                self._answer(404, {"error": "not_found"})

    return Handler


BASIC_OFF = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
             "disabled for the Tenant.")


class XOAuth2Handler(RecordingHandler):
    """An SMTP server that takes only ``AUTH XOAUTH2`` with a token the provider says is
    active for that user (as Exchange Online and Gmail do)."""

    def __init__(self, provider: Provider):
        super().__init__()
        self.provider = provider
        self.logins: list[tuple[str, bool]] = []  # (token, accepted)

    async def auth_PLAIN(self, server, args):  # noqa: N802 - as Exchange Online answers
        return AuthResult(success=False, handled=False, message=BASIC_OFF)

    auth_LOGIN = auth_PLAIN  # noqa: N815

    async def auth_XOAUTH2(self, server, args):  # noqa: N802
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            fields = base64.b64decode(args[1]).decode().split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
        except (ValueError, IndexError):
            return AuthResult(success=False, handled=False)
        answer = self.provider.introspect(token)
        ok = answer.get("active") is True and answer.get("username") == user
        self.logins.append((token, ok))
        if not ok:
            return AuthResult(success=False, handled=False,
                              message="535 5.7.3 Authentication unsuccessful")
        return AuthResult(success=True, auth_data=user)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (for the Microsoft sign-in, which msal
    reaches over https only)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def google_key(token_uri: str, account: str) -> tuple[dict, str]:
    """A service-account key file's content (its token URI on loopback) and the public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    info = {"type": "service_account", "project_id": "test", "private_key_id": "k1",
            "private_key": private, "client_email": account, "client_id": "1",
            "token_uri": token_uri}
    return info, public
