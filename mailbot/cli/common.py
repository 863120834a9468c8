"""What every command module of the command line shares: the configuration, the database
for a command, one-line failures (exit codes), asking before destructive things."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

import click

from mailbot import config as config_mod
from mailbot.core import i18n
from mailbot.core.i18n import tr as _
from mailbot.desk.doctor import database_problem
from mailbot.store import DATABASE_ERRORS, Store, no_database


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"mailbot: {message}", err=True)
    sys.exit(code)


def load(ctx: click.Context, secrets: bool = True) -> config_mod.Config:
    """The configuration; ``secrets=False`` for commands that only read the database (no
    mail password needed, so they run beside the service without its credentials)."""
    try:
        config = config_mod.load(ctx.obj, secrets)
    except config_mod.ConfigError as exc:
        fail(str(exc))
        raise  # unreachable
    i18n.use(config.event.organiser_language)  # the organiser reads her language from here on
    return config


def open_store(config: config_mod.Config) -> Store:
    """The existing database; a missing one is an error, not a new empty file."""
    if not config.database.exists():
        fail(no_database(config.database), 1)
    try:
        return Store(config.database)
    except (OSError, *DATABASE_ERRORS) as exc:  # e.g. read-only: one line
        fail(database_problem(config, exc))
        raise  # unreachable


@contextlib.contextmanager
def opened(config: config_mod.Config) -> Iterator[Store]:
    """The database for a command; any database error is one line, exit 2."""
    with open_store(config) as store:
        try:
            yield store
        except DATABASE_ERRORS as exc:
            fail(database_problem(config, exc))


def interactive() -> bool:
    return sys.stdin.isatty()


def confirm(lines: list[str], question: str, yes: bool) -> bool:
    """Show what will happen and ask, on a terminal; without one (cron, a script) only
    --yes goes ahead (and then nothing is shown but the outcome)."""
    if yes:
        return True
    for line in lines:
        click.echo(line)
    if not interactive():
        fail(_("not asked, nothing done: there is no terminal to ask on; add --yes to go "
               "ahead"), 1)
    return click.confirm(question, default=False)


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"
