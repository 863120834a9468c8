"""``mailbot serve``: the database in datasette, for organisers — read-only, only the
views and canned queries, behind a login (desk/gate.py), reachable from this machine only:
127.0.0.1 with the password of ``[serve]`` (a browser can open that), or a Unix socket of
mode 0600 (``--socket``: for an SSH tunnel or a reverse proxy; a browser cannot open a
socket itself).

datasette is an optional extra (``pip install 'mailbot[datasette]'``); it is imported
only here, and only when ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # never another address: the database holds personal data
NAME = "mailbot"  # the database's name in datasette's URLs and in the metadata


class BrowseError(Exception):
    """Raised when datasette cannot be started: not installed, port taken, bad metadata.
    The message is one line."""


def default_metadata() -> Path:
    """The packaged metadata, or the source tree's ``config/datasette-metadata.json``."""
    packaged = Path(__file__).parents[1] / "datasette-metadata.json"
    return packaged if packaged.is_file() else (
        Path(__file__).parents[2] / "config" / "datasette-metadata.json")


def load_metadata(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BrowseError(f"datasette metadata {path}: {exc}") from None


def make_datasette(database: Path, metadata: dict[str, Any], password: str | None = None,
                   port: int | None = None, login: bool = True):
    """A datasette instance that shows ``database`` as ``mailbot`` (whatever the file is
    called, so the metadata applies) over read-only connections, behind the gate: the
    organiser logs in with ``password``; ``login=False`` (a 0600 socket only) lets
    whoever reaches it in. A Host other than this machine (with ``port``) gets 400."""
    try:
        from datasette.app import Datasette
        from datasette.database import Database
        from datasette.plugins import pm

        from mailbot.desk import gate
    except ImportError:
        raise BrowseError("datasette is not installed: run "
                          ".venv/bin/pip install 'mailbot[datasette]'") from None
    if login and not password:
        raise BrowseError("serve needs a login: give the password in [serve] password_file "
                          "(or password_env), or serve on a Unix socket with --socket")
    if not pm.is_registered(gate):
        pm.register(gate, name="mailbot-gate")

    class ReadOnlyDatabase(Database):
        """Every connection, also the one datasette keeps for writes, is opened
        ``mode=ro`` and ``query_only``: nothing that datasette or a plugin or a canned
        query does can change the file. The file is not opened ``immutable`` because
        the service keeps writing to it (new rows show on reload)."""

        def connect(self, write: bool = False):
            conn = super().connect(write=False)
            conn.execute("PRAGMA query_only = ON")
            return conn

    ds = Datasette(metadata=metadata, settings={"allow_signed_tokens": False,
                                                "allow_download": False})
    ds.mailbot_gate = gate.Gate(password if login else None, port)
    if "_memory" in ds.databases:  # datasette's scratch database, added when given no file
        ds.remove_database("_memory")
    ds.add_database(ReadOnlyDatabase(ds, path=str(database), is_mutable=True), name=NAME)
    return ds


def check_port(port: int) -> None:
    """Refuse early, in one line, when the port on 127.0.0.1 is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise BrowseError(f"cannot listen on {HOST}:{port} ({exc.strerror}): "
                              f"choose another port with --port") from None


def run(ds, port: int) -> None:
    """Serve ``ds`` on 127.0.0.1:``port`` until Ctrl-C or SIGTERM."""
    import uvicorn

    asyncio.run(ds.invoke_startup())
    uvicorn.run(ds.app(), host=HOST, port=port, log_level="warning", lifespan="on")


def default_socket(database: Path) -> Path:
    return database.parent / "mailbot-serve.sock"


def bind_socket(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` of mode 0600 from the start (uvicorn's own
    ``uds=`` makes it 0666). A stale socket left by a killed serve is replaced; a live
    one or another file is an error."""
    if len(os.fsencode(path)) >= 108:
        raise BrowseError(f"socket path too long for Linux (108 bytes): {path}")
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise BrowseError(f"{path} exists and is not a socket: choose another --socket")
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(str(path)) == 0:
                raise BrowseError(f"{path}: another mailbot serve is listening there")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise BrowseError(f"cannot listen on {path} ({exc.strerror})") from None
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


def run_socket(ds, sock: socket.socket, path: Path) -> None:
    """Serve ``ds`` on ``sock`` (from :func:`bind_socket`) until Ctrl-C or SIGTERM (a
    socket file left behind is replaced at the next start)."""
    import uvicorn

    try:
        asyncio.run(ds.invoke_startup())
        uvicorn.run(ds.app(), fd=sock.fileno(), log_level="warning", lifespan="on")
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            path.unlink()
