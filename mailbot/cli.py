"""The command line: ``mailbot [--config PATH] run [--once]``.

The only place that configures logging and decides exit codes: 0 done, 1 a run that
could not finish, 2 a configuration or connection problem (one line on stderr, no
traceback).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from . import config as config_mod
from .compose import example_replies
from .daemon import Summary, describe, run_forever, run_once, run_task
from .inbox import InboxError
from .lock import AlreadyRunning
from .report import format_review, format_status
from .store import Store

log = logging.getLogger("mailbot")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"mailbot: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Configuration file [default: $MAILBOT_CONFIG, else config/mailbot.toml].")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """mailbot: answers event registrations that arrive by e-mail."""
    os.umask(0o077)  # the database, replies and logs hold personal data
    _setup_logging(verbose)
    ctx.obj = config_mod.resolve_path(config_path)


def _load(ctx: click.Context) -> config_mod.Config:
    try:
        return config_mod.load(ctx.obj)
    except config_mod.ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


@main.command()
@click.option("--once", is_flag=True, help="Handle the waiting mail, then exit (for cron).")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Read the inbox, register, answer. Without --once: keep polling until stopped."""
    config = _load(ctx)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received: finishing the mail in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not once:
        if ctx.parent is not None and not ctx.parent.params.get("verbose"):
            logging.getLogger().setLevel(logging.INFO)  # a service logs one line per mail
        try:
            run_forever(config, stop)
        except AlreadyRunning as exc:
            _fail(f"{exc}; not starting a second one", 1)
        return
    try:
        summary = run_once(config, stop)
    except AlreadyRunning as exc:
        click.echo(f"mailbot: {exc}; nothing to do.", err=True)
        return
    except InboxError as exc:
        _fail(str(exc))
        return
    if summary.read or sys.stdout.isatty():
        click.echo(describe(summary))
        click.echo(_where(config))


@main.command()
@click.pass_context
def review(ctx: click.Context) -> None:
    """List the mail that waits for a human: questions, unclear mails, and registrations
    that also ask something. They stay flagged in the inbox; answer them from your mail
    program and move them out of the inbox."""
    config = _load(ctx)
    store = _open_store(config)
    try:
        rows = store.for_review()
    finally:
        store.close()
    click.echo(format_review(rows, config.event.tz))


@main.command()
@click.pass_context
def remind(ctx: click.Context) -> None:
    """Send the reminders that are due now ([reminders] before = ["24h", "1h"]). The
    service and `run --once` do this by themselves; each person gets each reminder once."""
    config = _load(ctx)
    queued, summary = run_task(config, "remind")
    click.echo(_queued(queued, "reminder", summary))


@main.command()
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
@click.pass_context
def announce(ctx: click.Context, yes: bool) -> None:
    """Tell every registered person about a change of the event: after you changed the time
    or the Zoom details in the configuration, each confirmed person gets the new details
    and a calendar entry that replaces the old one. With [event] cancelled = true, everyone
    is told that the event is cancelled. Nobody gets the same announcement twice."""
    config = _load(ctx)
    what = "the cancellation of the event" if config.event.cancelled else "the changed details"
    if not yes and sys.stdin.isatty() and not click.confirm(
            f"Send {what} to every registered person who has not had them yet?"):
        click.echo("Nothing sent.")
        return
    queued, summary = run_task(config, "announce")
    if not queued:
        click.echo("Everybody already has the current details: nothing to send.")
        return
    click.echo(_queued(queued, "announcement", summary))


def _queued(queued: int, word: str, summary: Summary | None) -> str:
    text = f"{queued} {word}{'' if queued == 1 else 's'} queued"
    if summary is None:
        return text + "; the running mailbot service sends them at its next round."
    text += f", {summary.sent} delivered"
    if summary.send_errors:
        text += f", {summary.send_errors} not yet (they stay queued and are retried)"
    return text + "."


@main.command("sample-replies")
@click.option("--output", "folder", default="examples/replies", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the .eml files.")
@click.pass_context
def sample_replies(ctx: click.Context, folder: str) -> None:
    """Write one example of every reply kind, in German and English, as .eml files, made
    from your configuration and templates for a fictional participant. Open them in a mail
    program to see exactly what people will receive. Sends nothing, stores nothing."""
    config = _load(ctx)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, body in example_replies(config):
        (out / name).write_bytes(body)
    click.echo(f"{len(list(out.glob('*.eml')))} example replies in {out}/")


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Overview: registrations and free places, mail waiting for a human, replies not yet
    sent or refused, and when mailbot last looked at the inbox."""
    config = _load(ctx)
    store = _open_store(config)
    try:
        text = format_status(
            config, store.counts("registrations", "status"), len(store.for_review()),
            store.counts("outbox", "status"), store.failed_replies(),
            store.get_state("last_poll"), store.get_state("last_error"))
    finally:
        store.close()
    click.echo(text)


def _open_store(config: config_mod.Config) -> Store:
    """The existing database; a missing one is an error, not a new empty file."""
    if not config.database.exists():
        _fail(f"no database at {config.database} yet: mailbot has not run with this "
              f"configuration ([database] path)", 1)
    return Store(config.database)


def _where(config: config_mod.Config) -> str:
    replies = (f"replies written to {config.smtp.dry_run_dir}/" if config.smtp.dry_run_dir
               else f"replies sent via {config.smtp.host}")
    return f"Database: {config.database} — {replies}"


if __name__ == "__main__":  # pragma: no cover
    main()
