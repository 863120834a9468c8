"""The command line: ``mailbot [--config PATH] COMMAND`` — run, status, review, list,
export, approve, dismiss, add, cancel, resend, preview, check, forget, purge, remind,
announce, sample-replies, serve.

The only place that configures logging and decides exit codes: 0 done, 1 a run that
could not finish, 2 a configuration or connection problem (one line on stderr, no
traceback).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import browse, guard, health
from . import config as config_mod
from .auth import mechanism
from .inbox import InboxError, open_inbox
from .lock import AlreadyRunning
from .outbox import TransportError, open_transport
from .rate import remaining_today
from .report import (
    CSV_COLUMNS,
    LIST_COLUMNS,
    format_review,
    format_status,
    format_table,
    to_csv,
    to_excel_csv,
    zoom_rows,
)
from .store import Store, StoreError, explain, now_utc, prune_backups

if TYPE_CHECKING:
    from .models import Summary
    from .organiser import Outcome

# daemon, organiser and compose (jinja2, icalendar) are imported inside the commands that
# use them: `status`, `list` and `review` start without them (see bench/startup.py).

log = logging.getLogger("mailbot")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S %z")  # local time, with its offset
    # imapclient logs every IMAP line at DEBUG, whole incoming mails included: personal
    # data has no place in the journal, so its commands are never logged
    logging.getLogger("imapclient").setLevel(max(level, logging.INFO))


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


def _load(ctx: click.Context, secrets: bool = True) -> config_mod.Config:
    """The configuration; ``secrets=False`` for commands that only read the database (no
    mail password needed, so they run beside the service without its credentials)."""
    try:
        return config_mod.load(ctx.obj, secrets)
    except config_mod.ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


@main.command()
@click.option("--once", is_flag=True, help="Handle the waiting mail, then exit (for cron).")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Read the inbox, register, answer. Without --once: keep polling until stopped."""
    from .daemon import Control, describe, run_forever, run_once

    config = _load(ctx)
    stop = threading.Event()
    control = Control(stop, lambda: config_mod.load(ctx.obj))

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received: finishing the mail in hand", signal.Signals(signum).name)
        control.terminate()

    def on_hangup(_signum: int, _frame: object) -> None:
        if once:
            log.info("SIGHUP received: finishing the mail in hand")
            control.terminate()
        else:
            log.info("SIGHUP received: finishing the mail in hand, then reading the "
                     "configuration again")
            control.hangup()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    if not once:
        if ctx.parent is not None and not ctx.parent.params.get("verbose"):
            logging.getLogger().setLevel(logging.INFO)  # a service logs one line per mail
        try:
            run_forever(config, stop, control)
        except AlreadyRunning as exc:
            _fail(f"{exc}; not starting a second one", 1)
        except (StoreError, sqlite3.Error) as exc:
            _fail(_database_problem(config, exc))
        return
    def progress(summary: Summary) -> None:  # on a terminal only; cron stays quiet
        click.echo(f"\r{summary.read} mails handled, {summary.sent} replies sent …",
                   nl=False, err=True)

    try:
        summary = run_once(config, stop, progress if sys.stderr.isatty() else lambda _: None)
        if sys.stderr.isatty() and summary.read:
            click.echo("\r\033[K", nl=False, err=True)
    except AlreadyRunning as exc:
        click.echo(f"mailbot: {exc}; nothing to do.", err=True)
        return
    except InboxError as exc:
        _fail(str(exc))
        return
    except (StoreError, OSError, sqlite3.Error) as exc:
        _fail(_database_problem(config, exc))
        return
    if summary.news or sys.stdout.isatty():  # cron mails whatever is printed
        click.echo(describe(summary))
        click.echo(_where(config))


@main.command()
@click.pass_context
def review(ctx: click.Context) -> None:
    """List the mail that waits for a human: questions, unclear mails, and registrations
    that also ask something. They stay flagged in the inbox; answer them from your mail
    program and move them out of the inbox."""
    config = _load(ctx, secrets=False)
    with _store(config) as store:
        rows = store.for_review()
    click.echo(format_review(rows, config.event.tz))


@main.command()
@click.pass_context
def remind(ctx: click.Context) -> None:
    """Send the reminders that are due now ([reminders] before = ["24h", "1h"]). The
    service and `run --once` do this by themselves; each person gets each reminder once."""
    config = _load(ctx)
    queued, summary = _run_task(config, "remind")
    if not queued:
        click.echo(f"No reminder due: {_why_no_reminder(config)}.")
        return
    click.echo(_queued(queued, "reminder", summary))


def _why_no_reminder(config: config_mod.Config) -> str:
    event, now = config.event, now_utc()
    if not config.reminders:
        return "none are configured ([reminders] before = [])"
    if event.cancelled:
        return "the event is cancelled"
    if now >= event.start:
        return "the event has begun"
    later = [(event.start - b, b) for b in config.reminders if event.start - b > now]
    if later:
        due, before = min(later)
        hours = before.total_seconds() / 3600
        return (f"the next one ({hours:g} h before the start) is due on "
                f"{due.astimezone(event.tz):%d.%m.%Y %H:%M}")
    return "every confirmed person has had the reminders that are due"


@main.command()
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
@click.pass_context
def announce(ctx: click.Context, yes: bool) -> None:
    """Tell every registered person about a change of the event: after you changed the time
    or the Zoom details in the configuration, each confirmed person gets the new details
    and a calendar entry that replaces the old one. With [event] cancelled = true, everyone
    is told that the event is cancelled. Nobody gets the same announcement twice."""
    config = _load(ctx)
    from .service import Processor

    with _store(config) as store:
        processor = Processor(config, store, None)
        plan = processor.announcement_plan()
        before = {r.email: r.event_version for r in store.with_status("confirmed")}
        changes = {tuple(processor.changes_since(before.get(reg.email))) for reg, _, _ in plan}
    if not plan:
        click.echo("Everybody already has the current details: nothing to send.")
        return
    what = "that the event is cancelled" if config.event.cancelled else "the changed details"
    lines = [f"This tells {_plural(len(plan), 'person', 'people')} {what}:"]
    if len(changes) == 1 and not config.event.cancelled:
        lines += [f"  {field}: {old} → {new}" for field, old, new in next(iter(changes))]
    lines += [f"  {line}" for line in _event_lines(config)]
    if not _confirm(lines, f"Send it to {_plural(len(plan), 'person', 'people')}?", yes):
        click.echo("Nothing sent.")
        return
    queued, summary = _run_task(config, "announce")
    if not queued:
        click.echo("Everybody already has the current details: nothing to send.")
        return
    click.echo(_queued(queued, "announcement", summary))


def _event_lines(config: config_mod.Config) -> list[str]:
    """The details an announcement carries, as the organiser set them now."""
    event, zoom = config.event, config.zoom
    if event.cancelled:
        return [f"{event.title}, {event.start.astimezone(event.tz):%d.%m.%Y %H:%M}: cancelled"]
    return [f"{event.title}",
            f"{event.start.astimezone(event.tz):%d.%m.%Y %H:%M} – "
            f"{event.end.astimezone(event.tz):%H:%M} ({event.timezone})",
            f"Zoom: {zoom.url}, meeting ID {zoom.meeting_id}"
            + (f", passcode {zoom.passcode}" if zoom.passcode else ", no passcode")]


def _run_task(config: config_mod.Config, task: str) -> tuple[int, Summary | None]:
    from .organiser import TaskError, run_task

    try:
        return run_task(config, task)
    except TaskError as exc:
        _fail(str(exc), 1)
        raise  # unreachable
    except (StoreError, sqlite3.Error) as exc:
        _fail(_database_problem(config, exc))
        raise  # unreachable


def _queued(queued: int, word: str, summary: Summary | None) -> str:
    text = f"{queued} {word}{'' if queued == 1 else 's'} queued"
    if summary is None:
        return text + "; the running mailbot service sends them at its next round."
    text += f", {summary.sent} delivered"
    if summary.send_errors:
        text += f", {summary.send_errors} not yet (they stay queued and are retried)"
    if summary.held:
        text += (f", {summary.held} held back by the sending limits ([smtp] max_per_…): "
                 f"they go out over the next hours or days, after the answers to new mail")
    if summary.refused:
        text += f", {summary.refused} refused for good (see mailbot status)"
    return text + "."


@main.command("sample-replies")
@click.option("--output", "folder", default="var/sample-replies", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the .eml files.")
@click.pass_context
def sample_replies(ctx: click.Context, folder: str) -> None:
    """Write one example of every reply kind, in German and English, as .eml files, made
    from your configuration and templates for a fictional participant. Open them in a mail
    program to see exactly what people will receive. Sends nothing, stores nothing."""
    config = _load(ctx, secrets=False)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    from .compose import example_replies

    for name, body in example_replies(config):
        (out / name).write_bytes(body)
    click.echo(f"{len(list(out.glob('*.eml')))} example replies in {out}/")


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Overview: whether mailbot works, registrations and free places, mail waiting for a
    human, replies not yet sent or refused, and when mailbot last looked at the inbox.
    Exit code 1 when it does not work (a server refuses its login), for monitoring."""
    config = _load(ctx, secrets=False)
    with _store(config) as store:
        refused = health.problems(store)
        text = format_status(
            config, store.counts("registrations", "status"), len(store.for_review()),
            store.counts("outbox", "status"), store.failed_replies(),
            store.get_state("last_poll"), store.get_state("last_error"),
            store.get_state("last_clean_poll"), burst=store.held_for_review(guard.BURST),
            refused=refused, budget=_budget(config, store),
            undeliverable=store.undeliverable_count())
    click.echo(text)
    if refused:
        sys.exit(1)


def _budget(config: config_mod.Config, store: Store) -> tuple[int, int] | None:
    """(left, max_per_day) of the 24-hour sending budget, if there is one."""
    most = config.smtp.max_per_day
    if most is None:
        return None
    now = now_utc()
    sent = store.sent_since(now - dt.timedelta(days=1, seconds=2))
    return remaining_today(sent, now, most) or 0, most


def _open_store(config: config_mod.Config) -> Store:
    """The existing database; a missing one is an error, not a new empty file."""
    if not config.database.exists():
        _fail(f"no database at {config.database} yet: mailbot has not run with this "
              f"configuration ([database] path)", 1)
    try:
        return Store(config.database)
    except (StoreError, OSError, sqlite3.Error) as exc:  # e.g. read-only: one line
        _fail(_database_problem(config, exc))
        raise  # unreachable


def _database_problem(config: config_mod.Config, exc: Exception) -> str:
    """One line about a database that cannot be used, with what to do."""
    text = str(exc).lower()
    if not isinstance(exc, OSError) and "readonly" not in text and "unable to open" not in text:
        return explain(exc, config.database)  # locked, full, damaged, foreign, deleted
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return (f"database {config.database}: {reason} (run mailbot as the user that owns it; "
            f"see README, \"Organiser commands beside the systemd service\")")


@main.command("list")
@click.option("--status", type=click.Choice(["confirmed", "waitlisted", "cancelled"]),
              help="Only people with this status.")
@click.option("--waitlist", is_flag=True, help="Only the waitlist, in the order people move "
                                               "up (the same as --status waitlisted).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.pass_context
def list_(ctx: click.Context, status: str | None, fmt: str, waitlist: bool) -> None:
    """The registered people, in order of arrival."""
    if waitlist:
        status = "waitlisted"
    config = _load(ctx, secrets=False)
    with _store(config) as store:
        rows = store.registration_rows(status)
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in CSV_COLUMNS} for r in rows],
                              ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(to_csv(rows, CSV_COLUMNS, CSV_COLUMNS), nl=False)
    else:
        click.echo(format_table(rows, LIST_COLUMNS, config.event.tz))
        click.echo(f"{len(rows)} {'person' if len(rows) == 1 else 'people'}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["zoom-csv", "csv"]), default="csv",
              show_default=True, help="zoom-csv: confirmed people for Zoom's registrant "
                                      "import; csv: everybody, every column.")
@click.option("--output", type=click.Path(dir_okay=False), help="File (default: the screen).")
@click.option("--excel", is_flag=True, help="For German Excel: ';' between fields, a BOM "
                                            "(umlauts), local times like 31.05.2027 10:00 "
                                            "(with zoom-csv: only the BOM).")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: str | None, excel: bool) -> None:
    """Export the participants as CSV: for Zoom, for name lists, for Excel."""
    config = _load(ctx, secrets=False)
    with _store(config) as store:
        if fmt == "zoom-csv":
            rows = zoom_rows(store.registration_rows("confirmed"))
            text = to_csv(rows, ("email", "first", "last", "org"),
                          ("Email", "First Name", "Last Name", "Organization"), excel)
        elif excel:
            rows = store.registration_rows()
            text = to_excel_csv(rows, CSV_COLUMNS, CSV_COLUMNS, config.event.tz)
        else:
            rows = store.registration_rows()
            text = to_csv(rows, CSV_COLUMNS, CSV_COLUMNS)
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before, with another mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        click.echo(f"{len(rows)} rows written to {output}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("message")
@click.option("--email", help="Register this address instead of the one in the mail.")
@click.option("--name", help="The person's name.")
@click.option("--organisation", help="The person's organisation.")
@click.pass_context
def approve(ctx: click.Context, message: str, email: str | None, name: str | None,
            organisation: str | None) -> None:
    """Register the person of a mail from the review list and send the confirmation.
    MESSAGE is its number in `mailbot review` (it does not change) or its Message-ID. The
    mail is moved to the processed folder and unflagged (by the service, when it runs)."""
    _desk_call(ctx, lambda desk, inbox: desk.approve(message, inbox, email, name,
                                                     organisation), need_inbox=True)


@main.command()
@click.argument("message")
@click.pass_context
def dismiss(ctx: click.Context, message: str) -> None:
    """Mark a mail from the review list as handled, without a reply (you answered it
    yourself, or it needs none). MESSAGE: its number in `mailbot review` or Message-ID.
    While the service runs, it moves the mail at its next round."""
    _desk_call(ctx, lambda desk, inbox: desk.dismiss(message, inbox), need_inbox=True)


@main.command()
@click.argument("email")
@click.option("--name", required=True, help="The person's name.")
@click.option("--organisation", help="The person's organisation.")
@click.option("--no-mail", is_flag=True, help="Record only; send no confirmation.")
@click.pass_context
def add(ctx: click.Context, email: str, name: str, organisation: str | None,
        no_mail: bool) -> None:
    """Register someone by hand (e.g. after a phone call). Capacity and waitlist apply;
    the person gets the usual confirmation with the calendar entry."""
    _desk_call(ctx, lambda desk, _: desk.add(email, name, organisation, not no_mail))


@main.command("cancel")
@click.argument("email")
@click.option("--no-mail", is_flag=True, help="Record only; send no cancellation mail.")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.pass_context
def cancel_(ctx: click.Context, email: str, no_mail: bool, yes: bool) -> None:
    """Cancel someone's registration by hand; their calendar entry is removed and the first
    person on the waitlist moves up. Shows what will happen and asks."""
    config = _load(ctx)
    email = email.strip().lower()
    with _store(config) as store:
        about = store.about(email)
        waiting = store.with_status("waitlisted")
    if about["status"] in ("confirmed", "waitlisted"):
        lines = [f"This cancels the registration of {about['name'] or email} <{email}> "
                 f"({about['status']}).",
                 "  They get no mail (--no-mail)." if no_mail else
                 "  They get a cancellation mail; their calendar entry is removed."]
        if about["status"] == "confirmed" and waiting:
            lines.append(f"  {waiting[0].name or waiting[0].email} <{waiting[0].email}> "
                         f"moves up from the waitlist and gets a confirmation.")
        if not _confirm(lines, "Cancel this registration?", yes):
            click.echo("Nothing changed.")
            return
    _desk_call(ctx, lambda desk, _: desk.cancel(email, not no_mail))


@main.command()
@click.argument("email")
@click.option("--name", help="The corrected name.")
@click.option("--organisation", help="The corrected organisation ('' to remove it).")
@click.option("--email", "new_email", metavar="NEW",
              help="A new address: it gets the confirmation again (same calendar entry), "
                   "the old address a short note.")
@click.pass_context
def edit(ctx: click.Context, email: str, name: str | None, organisation: str | None,
         new_email: str | None) -> None:
    """Correct a registration: a misspelt name, the organisation, an address typo."""
    _desk_call(ctx, lambda desk, _: desk.edit(email, name, organisation, new_email))


@main.command("move-up")
@click.argument("email")
@click.pass_context
def move_up(ctx: click.Context, email: str) -> None:
    """Give a person on the waitlist a place by hand (also when the event is full); they
    get the confirmation with the Zoom details and the calendar entry."""
    _desk_call(ctx, lambda desk, _: desk.move_up(email))


@main.command()
@click.argument("email")
@click.pass_context
def resend(ctx: click.Context, email: str) -> None:
    """Send someone their confirmation (or waitlist notice) again, with the same calendar
    entry — e.g. when it landed in their spam folder."""
    _desk_call(ctx, lambda desk, _: desk.resend(email))


@main.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.pass_context
def forget(ctx: click.Context, email: str, yes: bool) -> None:
    """Erase a person's data (DSGVO Art. 17): registration, replies, their name and address
    in the log; the database file is cleaned so nothing remains on disk. Their mails are
    deleted from the inbox and the processed folder ([privacy] mailbox = "delete"). A
    backup of the database is written first. Shows what goes and asks."""
    config = _load(ctx)
    email = email.strip().lower()
    with _store(config) as store:
        about = store.about(email)
        keys = store.message_keys(email)
    if not (about["status"] or about["replies"] or about["mails"]):
        _fail(f"nothing stored about {email}", 1)
    who = f"{about['name']} <{email}>" if about["name"] else email
    lines = [f"This erases everything about {who}:"]
    if about["status"]:
        lines.append(f"  their registration ({about['status']})")
    lines += [f"  {_plural(about['replies'], 'reply', 'replies')} to them, "
              f"{_plural(about['mails'], 'mail')} from them in the log",
              f"  {_mailbox_line(config, 'their mails')}"]
    if not _confirm(lines, "Erase it now?", yes):
        click.echo("Nothing erased.")
        return
    _before_erasing(config, keys, email)
    _desk_call(ctx, lambda desk, _: desk.forget(email), send=False)


@main.command()
@click.option("--now", "force", is_flag=True,
              help="Erase now, even before retain_days_after_event have passed.")
@click.option("--yes", is_flag=True, help="Do not ask before erasing with --now (needed "
                                          "without a terminal).")
@click.pass_context
def purge(ctx: click.Context, force: bool, yes: bool) -> None:
    """Erase all personal data of the event once [privacy] retain_days_after_event (30)
    have passed since it ended. The service does this by itself once a day. With --now it
    shows what goes and asks. A backup of the database is written first, and the mails
    are deleted from the inbox and the processed folder ([privacy] mailbox = "delete")."""
    config = _load(ctx)
    now = now_utc()
    from .service import Processor

    with _store(config) as store:
        due = Processor(config, store, None).purge_due()
        counts = store.counts("registrations", "status")
        keys = store.message_keys()
    if now < due and not force:
        click.echo(f"nothing to erase before {due.astimezone(config.event.tz):%d.%m.%Y} "
                   f"([privacy] retain_days_after_event = {config.privacy.retain_days})")
        return
    if force and now < due:
        listed = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
        lines = [f"This erases the personal data of {sum(counts.values())} registrations "
                 f"({listed}) and every reply, before the retention period ends "
                 f"({due.astimezone(config.event.tz):%d.%m.%Y}).",
                 _mailbox_line(config, f"The {len(keys)} mails mailbot handled")]
        if not _confirm(lines, "Erase it all now?", yes):
            click.echo("Nothing erased.")
            return
    _before_erasing(config, keys, None, backup=now < due)  # after it: nothing may stay
    _desk_call(ctx, lambda desk, _: desk.purge(now, True), send=False)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm(lines: list[str], question: str, yes: bool) -> bool:
    """Show what will happen and ask, on a terminal; without one (cron, a script) only
    --yes goes ahead (and then nothing is shown but the outcome)."""
    if yes:
        return True
    for line in lines:
        click.echo(line)
    if not _interactive():
        _fail("not asked, nothing done: there is no terminal to ask on; add --yes to go "
              "ahead", 1)
    return click.confirm(question, default=False)


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


def _mailbox_line(config: config_mod.Config, what: str) -> str:
    folders = _folders(config)
    if config.privacy.mailbox == "keep":
        return (f"{what} stay in {folders} ([privacy] mailbox = \"keep\"): delete them in "
                f"your mail program")
    return f"{what} are deleted from {folders}"


def _folders(config: config_mod.Config) -> str:
    box = config.imap or config.maildir
    assert box is not None
    folder = config.imap.folder if config.imap else "the Maildir"
    return f"{folder} and {box.processed_folder}"


def _before_erasing(config: config_mod.Config, keys: set[str], sender: str | None,
                    backup: bool = True) -> None:
    """The backup, then the mails in the mailbox; a failure stops before the database.
    No backup once the retention period is over: then every copy goes (the service removes
    the older backups then, too)."""
    with _store(config) as store:
        if backup:
            path = store.backup(store.backup_folder, config.privacy.backup_days, now_utc())
            click.echo(f"Backup written: {path} (removed after "
                       f"{config.privacy.backup_days} days)")
        else:
            removed = prune_backups(store.backup_folder, 0, now_utc(), everything=True)
            click.echo("No backup: the retention period is over"
                       + (f"; {_plural(len(removed), 'older backup')} removed" if removed
                          else ""))
    if config.privacy.mailbox == "keep":
        click.echo(_mailbox_line(config, "The mails"))
        return
    try:
        inbox = open_inbox(config.imap, config.maildir, 10, config.limits.max_message_bytes,
                           False)
        try:
            removed = inbox.erase(keys, sender)
        finally:
            inbox.close()
    except InboxError as exc:
        _fail(f"{exc}; nothing was erased. Try again, or set [privacy] mailbox = \"keep\" "
              f"and delete the mails yourself", 2)
        return
    click.echo(f"{_plural(removed, 'mail')} deleted from {_folders(config)}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--inbox", "from_inbox", is_flag=True,
              help="Read the real inbox instead and show what `run` would do with each mail "
                   "now: nothing is sent, moved, flagged or stored.")
@click.pass_context
def preview(ctx: click.Context, file: str | None, from_inbox: bool) -> None:
    """Show what mailbot would do with a mail saved as FILE.eml — how it reads it, who it
    would register and the full text of each reply — without touching the network or the
    database (the person counts as new). With --inbox: the dry run before going live."""
    if from_inbox:
        _preview_inbox(_load(ctx))
        return
    if file is None:
        _fail("give a saved mail (FILE.eml) or --inbox", 2)
    config = _load(ctx, secrets=False)
    from .service import Processor

    raw = Path(file).read_bytes()
    store = Store(":memory:")
    try:
        processor = Processor(config, store, transport=None)
        click.echo(processor.preview(raw))
    finally:
        store.close()


def _preview_inbox(config: config_mod.Config) -> None:
    from .organiser import inbox_preview
    from .service import Processor

    try:
        store = Store.in_memory_copy(config.database)
    except (OSError, sqlite3.Error) as exc:
        _fail(_database_problem(config, exc))
        return
    try:
        inbox = open_inbox(config.imap, config.maildir, config.daemon.batch_size,
                           config.limits.max_message_bytes, False, readonly=True)
    except InboxError as exc:
        store.close()
        _fail(str(exc))
        return
    try:
        lines = inbox_preview(Processor(config, store, None), inbox)
    except InboxError as exc:
        _fail(str(exc))
        return
    finally:
        inbox.close()
        store.close()
    mails = sum(1 for line in lines if line.startswith("  → ") and "would send" not in line)
    replies = sum(1 for line in lines if "would send" in line)
    click.echo(f"{inbox.description}: {_plural(mails, 'mail')} — what `mailbot run` would do "
               f"now (a dry run: nothing sent, moved, flagged or stored)")
    for line in lines:
        click.echo(line)
    click.echo(f"\n{_plural(replies, 'reply', 'replies')} would be sent.")


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the setup: the configuration (every problem, with its key), the login to the
    IMAP and SMTP servers, the processed folder, the database. One line per check; exit
    code 0 only when everything passes."""
    path = ctx.obj
    problems = config_mod.problems(path)
    if problems:
        for problem in problems:
            click.echo(f"✗ {problem}")
        sys.exit(2)
    config = config_mod.load(path)
    click.echo(f"✓ configuration {path}")
    for line in _setup_lines(config):
        click.echo(f"  {line}")
    results = [_check_inbox(config), _check_transport(config), _check_database(config)]
    for ok, text in results:
        click.echo(f"{'✓' if ok else '✗'} {text}")
    if config.imap and not config.imap.authserv_id:
        click.echo("⚠ [imap] authserv_id is not set: forged senders are only caught when the "
                   "topmost Authentication-Results header says dmarc=fail; set it to your mail "
                   "server's name as it appears there (e.g. authserv_id = \"mx.example.org\")")
    warnings = _check_warnings(config)
    for text in warnings:
        click.echo(f"! {text}")
    if not all(ok for ok, _ in results):
        sys.exit(2)
    if warnings:
        click.echo("Valid, but please look at the lines marked ! before going live.")
    sys.exit(1 if warnings else 0)


def _check_warnings(config: config_mod.Config) -> list[str]:
    """Valid but unlikely meant: an event in the past, the example's placeholders …"""
    from .doctor import warnings

    confirmed = None
    if config.database.exists():
        with contextlib.suppress(OSError, sqlite3.Error):
            store = Store(config.database)
            try:
                confirmed = store.counts("registrations", "status").get("confirmed", 0)
            finally:
                store.close()
    return warnings(config, now_utc(), confirmed)


def _setup_lines(config: config_mod.Config) -> list[str]:
    """What mailbot will use: servers, logins, limits, copies in Sent (presets filled in)."""
    lines = []
    imap, smtp = config.imap, config.smtp
    if imap is not None:
        preset = f" (preset {imap.provider})" if imap.provider else ""
        lines.append(f"IMAP {imap.host}:{imap.port} {imap.security}{preset}, login "
                     f"{imap.username} with {mechanism(imap)}, copy of each reply in Sent: "
                     f"{'yes' if imap.save_sent else 'no'}")
    if smtp.host:
        limits = [f"{n}/{w}" for n, w in ((smtp.max_per_minute, "minute"),
                                          (smtp.max_per_hour, "hour"),
                                          (smtp.max_per_day, "day")) if n]
        login = f"login {smtp.username} with {mechanism(smtp)}" if smtp.username else \
            "no login"
        lines.append(f"SMTP {smtp.host}:{smtp.port} {smtp.security}, {login}, at most "
                     f"{', '.join(limits) or 'no limit'}, {smtp.connections} connection"
                     f"{'s' if smtp.connections != 1 else ''}")
    return lines


def _check_inbox(config: config_mod.Config) -> tuple[bool, str]:
    try:
        inbox = open_inbox(config.imap, config.maildir, 10, config.limits.max_message_bytes,
                           False)
    except InboxError as exc:
        return False, str(exc)
    try:
        count = sum(len(batch) for batch in inbox.batches())
        processed = (config.imap.processed_folder if config.imap
                     else config.maildir.processed_folder)
        mails = "1 mail" if count == 1 else f"{count} mails"
        login = (f"logged in as {config.imap.username} with {mechanism(config.imap)}, "
                 if config.imap else "")
        return True, (f"{inbox.description}: reachable, {login}{mails} in the folder, "
                      f"processed folder {processed!r} ready")
    except InboxError as exc:
        return False, str(exc)
    finally:
        inbox.close()


def _check_transport(config: config_mod.Config) -> tuple[bool, str]:
    try:
        return True, open_transport(config.smtp, config.contact.address).probe()
    except TransportError as exc:
        return False, str(exc)


def _check_database(config: config_mod.Config) -> tuple[bool, str]:
    if not config.database.exists():
        folder = config.database.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if os.access(folder, os.W_OK):
            return True, (f"database {config.database}: not there yet, it is made (mode 0600)"
                          f" at the first run")
        return False, f"database {config.database}: cannot be created ({folder} not writable)"
    try:
        store = Store(config.database)
    except (StoreError, sqlite3.Error) as exc:
        return False, _database_problem(config, exc)
    except OSError as exc:
        return False, f"database {config.database}: {exc}"
    try:
        version = store.db.execute("PRAGMA user_version").fetchone()[0]
        mode = config.database.stat().st_mode & 0o777
        if mode & 0o077:
            return False, (f"database {config.database}: readable by others (mode "
                           f"{mode:o}); run: chmod 600 {config.database}")
        rows = sum(store.counts("registrations", "status").values())
        return True, f"database {config.database}: schema {version}, {rows} registrations, " \
                     f"mode {mode:o}"
    except sqlite3.Error as exc:
        return False, _database_problem(config, exc)
    finally:
        store.close()


def _desk_call(ctx: click.Context, action, need_inbox: bool = False, send: bool = True) -> None:
    from .organiser import TaskError, locked_or_queued

    config = _load(ctx)

    def run(alone: bool) -> None:  # not alone: the service sends (and moves a settled mail)
        outcome = _desk_run(config, action, need_inbox, send and alone,
                            beside_service=not alone)
        if not alone and outcome is not None and outcome.queued:
            click.echo("(mailbot is running right now and sends the mail at its next round)")

    try:
        locked_or_queued(config, run)
    except TaskError as exc:
        _fail(str(exc), 1)


def _desk_run(config: config_mod.Config, action, need_inbox: bool, send: bool,
              beside_service: bool = False) -> Outcome | None:
    from .compose import ComposeError
    from .models import Summary
    from .organiser import Desk, OrganiserError
    from .service import Processor

    store = _open_store(config)
    inbox = None
    try:
        processor = Processor(config, store, open_transport(config.smtp, config.contact.address))
        if need_inbox:
            try:
                inbox = open_inbox(config.imap, config.maildir, 10,
                                   config.limits.max_message_bytes, False)
            except InboxError as exc:
                click.echo(f"mailbot: inbox not reachable ({exc}); the database is changed, "
                           f"move the mail yourself", err=True)
        try:
            outcome = action(Desk(processor), _LeaveInPlace(inbox) if beside_service and inbox
                             else inbox)
        except (OrganiserError, ComposeError) as exc:
            _fail(str(exc), 1)
            return
        except InboxError as exc:  # the database is changed; the mail stays where it is
            _fail(f"{exc}; the database is updated, please move the mail yourself", 2)
            return
        except sqlite3.Error as exc:
            _fail(f"database {config.database}: {exc}; nothing was changed, try again", 2)
            return
        click.echo(outcome.text)
        if send and outcome.queued:
            summary = Summary()
            processor.flush(summary)
            click.echo(f"{summary.sent} sent"
                       + (f", {summary.send_errors} not yet (queued)"
                          if summary.send_errors else "")
                       + (f", {summary.refused} refused for good (see mailbot status)"
                          if summary.refused else ""))
        return outcome
    finally:
        if inbox is not None:
            inbox.close()
        store.close()


class _LeaveInPlace:
    """The inbox while the service runs: a mail is read (for its names) but not moved —
    the service finds it settled in the database and moves it at its next round, so two
    processes never move mail in the same folder."""

    moves_later = True

    def __init__(self, inbox):
        self.inbox = inbox

    def find(self, message_id: str):
        return self.inbox.find(message_id)

    def release(self, ref: str) -> None:
        self.inbox.unflag([ref])  # settled: not flagged for a human any more


@main.command()
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="Port on 127.0.0.1.")
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False),
              help="datasette metadata [default: config/datasette-metadata.json].")
@click.pass_context
def serve(ctx: click.Context, port: int, metadata: str | None) -> None:
    """Look at the database in the browser (datasette): participants, waitlist, mail to
    answer, replies — in German, times in the event's time zone. Read-only, and only on
    127.0.0.1: from another computer, use an SSH tunnel (see README). Ctrl-C stops it."""
    config = _load(ctx, secrets=False)
    try:
        with _store(config) as store:  # the views of the current schema, the event's zone
            store.use_time_zone(config.event.timezone, now_utc())
    except (OSError, sqlite3.Error) as exc:
        _fail(f"database {config.database}: {exc}")
    try:
        data = browse.load_metadata(Path(metadata) if metadata else browse.default_metadata())
        ds = browse.make_datasette(config.database, data)
        browse.check_port(port)
    except browse.BrowseError as exc:
        _fail(str(exc))
        return
    click.echo(f"The database in your browser: http://{browse.HOST}:{port}/{browse.NAME} "
               f"(read-only; Ctrl-C stops)", err=True)
    browse.run(ds, port)


@contextlib.contextmanager
def _store(config: config_mod.Config):
    """The database for a command; any database error is one line, exit 2."""
    store = _open_store(config)
    try:
        yield store
    except sqlite3.Error as exc:
        _fail(_database_problem(config, exc))
    finally:
        store.close()


def _where(config: config_mod.Config) -> str:
    replies = (f"replies written to {config.smtp.dry_run_dir}/" if config.smtp.dry_run_dir
               else f"replies sent via {config.smtp.host}")
    return f"Database: {config.database} — {replies}"


if __name__ == "__main__":  # pragma: no cover
    main()
