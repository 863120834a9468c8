"""``mailbot serve``: the database in datasette, for organisers — read-only, and reachable
from this machine only (127.0.0.1; from elsewhere through an SSH tunnel).

datasette is an optional extra (``pip install 'mailbot[datasette]'``); it is imported
only here, and only when ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import json
import socket
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


def make_datasette(database: Path, metadata: dict[str, Any]):
    """A datasette instance that shows ``database`` as ``mailbot`` (whatever the file is
    called, so the metadata applies) over read-only connections."""
    try:
        from datasette.app import Datasette
        from datasette.database import Database
    except ImportError:
        raise BrowseError("datasette is not installed: run "
                          ".venv/bin/pip install 'mailbot[datasette]'") from None

    class ReadOnlyDatabase(Database):
        """Every connection, also the one datasette keeps for writes, is opened
        ``mode=ro`` and ``query_only``: nothing that datasette or a plugin or a canned
        query does can change the file. The file is not opened ``immutable`` because
        the service keeps writing to it (new rows show on reload)."""

        def connect(self, write: bool = False):
            conn = super().connect(write=False)
            conn.execute("PRAGMA query_only = ON")
            return conn

    ds = Datasette(metadata=metadata)
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
