"""Who may see what in ``mailbot serve``: a datasette plugin (registered in-process with
``pm.register``) built on datasette's own extension points.

- ``asgi_wrapper``: a request whose ``Host`` is not this machine (``localhost``,
  ``127.0.0.1``, ``[::1]``) gets 400 — a web page cannot reach the view through DNS
  rebinding.
- ``register_routes``: ``/-/anmelden``, a small German login page; the right password sets
  datasette's own signed ``ds_actor`` cookie (datasette's ``actor_from_request`` reads it).
  The form is a POST guarded by datasette's CSRF protection (asgi-csrf).
- ``permission_allowed`` (called last, so it has the final word over any metadata): only
  the organiser, and only the views and canned queries; no free SQL, no raw table (the
  ``outbox`` holds every reply with the Zoom passcode), no download of the file, no API
  tokens, no writes.
- ``forbidden``: someone not logged in is sent to the login page.

The hooks act only on a datasette made by ``browse.make_datasette`` (it carries a
:class:`Gate`); any other instance in the same process is left alone.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from datasette import hookimpl
from datasette.utils.asgi import Response

ORGANISER = {"id": "organiser"}
LOGIN_PATH = "/-/anmelden"
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
# what the organiser may do: look at the instance, the database, a view, a canned query
ALLOWED = {"view-instance", "view-database", "view-table", "view-query"}


@dataclass(frozen=True)
class Gate:
    """One served instance's rules: the login password (None: no login, for a Unix socket
    whose mode 0600 already keeps others out) and the port the Host may name (None: any,
    as behind an SSH tunnel to the socket)."""

    password: str | None
    port: int | None = None

    def host_ok(self, host: str) -> bool:
        host = host.lower()
        for name in LOCAL_NAMES:
            if host == name:
                return True
            if host.startswith(name + ":"):
                port = host[len(name) + 1:]
                return port == str(self.port) if self.port else port.isdigit()
        return False

    def password_ok(self, given: str) -> bool:
        return self.password is not None and hmac.compare_digest(
            given.encode("utf-8"), self.password.encode("utf-8"))


def gate_of(datasette: Any) -> Gate | None:
    gate = getattr(datasette, "mailbot_gate", None)
    return gate if isinstance(gate, Gate) else None


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def checked(scope, receive, send):
            gate = gate_of(datasette)
            if gate and scope["type"] == "http":
                host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
                if not gate.host_ok(host):
                    await Response.text("400 Bad Request: unknown host\n", status=400).asgi_send(
                        send)
                    return
            await app(scope, receive, send)
        return checked
    return wrap


@hookimpl(trylast=True)  # called last: its answer is the one datasette uses
def permission_allowed(datasette, actor, action, resource):
    gate = gate_of(datasette)
    if gate is None:
        return None

    async def decide() -> bool:
        if gate.password is not None and actor != ORGANISER:
            return False
        if action not in ALLOWED:
            return False  # execute-sql, downloads, tokens, inserts, drops, debug pages
        if action == "view-table":
            database, table = resource
            return table in await datasette.get_database(database).view_names()
        return True
    return decide


@hookimpl
def forbidden(datasette, request, message):
    gate = gate_of(datasette)
    if gate is None or gate.password is None or request.actor == ORGANISER:
        return None
    return Response.redirect(f"{LOGIN_PATH}?weiter={quote(request.full_path)}")


PAGE = """{% extends "base.html" %}
{% block title %}Anmelden – mailbot{% endblock %}
{% block content %}
<h1>Anmelden</h1>
<p>Die Teilnehmerlisten enthalten personenbezogene Daten. Bitte geben Sie das Passwort
ein, das in der Konfiguration von mailbot steht ([serve] password_file).</p>
{% if wrong %}<p class="message-error">Das Passwort stimmt nicht.</p>{% endif %}
<form action="{{ login_path }}" method="post">
  <input type="hidden" name="csrftoken" value="{{ csrftoken() }}">
  <input type="hidden" name="weiter" value="{{ weiter }}">
  <p><label for="passwort">Passwort</label>
  <input type="password" id="passwort" name="passwort" autofocus autocomplete="current-password">
  <input type="submit" value="Anmelden"></p>
</form>
{% endblock %}
"""


async def login(datasette, request):
    gate = gate_of(datasette)
    if gate is None or gate.password is None:
        return Response.redirect("/")
    weiter = request.args.get("weiter", "/")
    wrong = False
    if request.method == "POST":
        form = await request.post_vars()
        weiter = form.get("weiter", "/")
        if gate.password_ok(form.get("passwort", "")):
            response = Response.redirect(weiter if local_path(weiter) else "/")
            response.set_cookie("ds_actor", datasette.sign({"a": ORGANISER}, "actor"),
                                httponly=True, samesite="strict")
            return response
        wrong = True
    page = datasette.jinja_env.from_string(PAGE)
    html = await datasette.render_template(
        page, {"wrong": wrong, "weiter": weiter if local_path(weiter) else "/",
               "login_path": LOGIN_PATH}, request=request)
    return Response.html(html, status=403 if wrong else 200)


def local_path(path: str) -> bool:
    """Only a path on this server (``/mailbot``), never ``//evil.example`` or a URL — nor
    ``/<TAB>/evil.example``: a browser drops tabs and line ends from a URL."""
    return (path.startswith("/") and not path.startswith("//") and "\\" not in path
            and not any(c <= " " or c == "\x7f" for c in path))


@hookimpl
def register_routes(datasette):
    return [(rf"^{LOGIN_PATH}$", login)]
