"""Real servers on loopback for the tests: Dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth_mechanisms}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
{namespace}  mailbox "Gesendete Objekte" {{
    special_use = \\Sent
  }}
}}
mail_uid = {user}
mail_gid = {group}
first_valid_uid = 0
passdb {{
  driver = static
  args = password={password}
  mechanisms = plain login
}}
{oauth_passdb}userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf
}}
"""

OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


@dataclass
class Dovecot:
    """A throwaway Dovecot: any user name logs in with ``password``; each test takes a
    new user name and so gets an empty mailbox."""

    root: Path
    port: int
    password: str = "test-secret"
    oauth_url: str | None = None  # a token introspection URL: XOAUTH2/OAUTHBEARER on
    prefix: str = ""  # the personal namespace's prefix, e.g. "INBOX." (Courier, Cyrus)
    separator: str = ""  # its hierarchy separator, e.g. "."
    conf: Path = field(init=False)

    def start(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if os.geteuid() == 0:
            user = group = "dovecot"
            login_user = "dovenull"
        else:  # unprivileged: everything runs as the current user
            user = login_user = pwd.getpwuid(os.getuid()).pw_name
            group = user
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root / "mail", user="dovecot", group="dovecot")
        os.chmod(self.root, 0o755)
        self.conf = self.root / "dovecot.conf"
        oauth_passdb = ""
        if self.oauth_url:
            (self.root / "oauth2.conf").write_text(OAUTH2_CONF.format(url=self.oauth_url))
            oauth_passdb = OAUTH2_PASSDB.format(root=self.root)
        self.conf.write_text(DOVECOT_CONF.format(
            root=self.root, port=self.port, password=self.password, user=user, group=group,
            login_user=login_user, oauth_passdb=oauth_passdb, namespace=self._namespace(),
            oauth_mechanisms=" xoauth2 oauthbearer" if self.oauth_url else ""))
        subprocess.run([binary, "-c", str(self.conf)], check=True)
        _wait_for_port(self.port)

    def _namespace(self) -> str:
        lines = [f"  prefix = {self.prefix}\n" if self.prefix else "",
                 f"  separator = {self.separator}\n" if self.separator else ""]
        return "".join(lines)

    def stop(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        subprocess.run([binary, "-c", str(self.conf), "stop"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_dovecot(oauth_url: str | None = None, prefix: str = "",
                  separator: str = "") -> Dovecot:
    """``prefix="INBOX.", separator="."``: every folder under INBOX, as Courier and Cyrus
    (as Debian configures it) keep them."""
    root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
    server = Dovecot(root=root, port=free_port(), oauth_url=oauth_url, prefix=prefix,
                     separator=separator)
    server.start()
    return server


class RecordingHandler:
    """aiosmtpd handler that keeps every envelope; ``fail_codes`` answer RCPT with a code."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.fail_codes: list[str] = []
        self.on_message = None  # a callback for each accepted message (benchmarks)
        self.mail_code: str | None = None  # an answer to MAIL FROM, e.g. "530 …"
        self.on_mail = None  # a callback for each MAIL FROM (fault injection)
        self.peers: set = set()  # (host, port) of each client connection that sent mail
        self.connected: set = set()  # (host, port) of each client connection that said EHLO
        self.slow: dict[str, float] = {}  # recipient → delay of their next DATA answer

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.connected.add(session.peer)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        self.peers.add(session.peer)
        if self.on_mail is not None:
            self.on_mail()
        if self.mail_code:
            return self.mail_code
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.fail_codes:
            return self.fail_codes.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        delay = self.slow.pop(envelope.rcpt_tos[0], None) if envelope.rcpt_tos else None
        if delay:  # this recipient's server takes its time (other connections go on)
            await asyncio.sleep(delay)
        self.envelopes.append(envelope)
        if self.on_message is not None:
            self.on_message(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in self.envelopes]


def start_smtp() -> tuple[Controller, RecordingHandler]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, handler


class CuttableProxy:
    """A TCP proxy on loopback that the test can use to cut every open connection, as a
    NAT timeout or a server restart would (fault injection a real server won't do on cue)."""

    def __init__(self, target_port: int):
        import threading

        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.connections += [client, upstream]
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self.lock:
            for s in self.connections:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.connections.clear()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()
