"""The database file itself: a new one is made whole or not at all, and a new name is
made to survive a power cut (used by ``store`` for the database and its backups)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import sqlite_utils

from mailbot.store.migrations import Migration, migrate


def create(path: Path, steps: Sequence[Migration]) -> None:
    """A new database, whole or not at all: the schema is written into a temporary file
    beside it (0600), which then takes its name (a hard link: a database another process
    made meanwhile is kept). A kill before that leaves no file at ``path`` — the next start
    begins again — only possibly ``.NAME.*.new``, which holds no data."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        with contextlib.closing(sqlite_utils.Database(tmp)) as db:
            migrate(db, steps)  # rollback journal, synchronous FULL: on disk when this returns
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links (vfat, some network shares)
            if not path.exists():
                os.replace(tmp, path)
        sync_folder(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """A new name in ``folder`` survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
