"""The commands that act through the service: run (the loop, or one round), remind,
announce, and preview (what `run` would do, nothing stored)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailbot import config as config_mod
from mailbot.cli.common import confirm, fail, load, opened
from mailbot.core.i18n import ngettext
from mailbot.core.i18n import tr as _
from mailbot.desk.doctor import database_problem
from mailbot.host.lock import AlreadyRunning
from mailbot.mail.inbox import InboxError, open_inbox
from mailbot.store import DATABASE_ERRORS, Store, now_utc

if TYPE_CHECKING:
    from mailbot.core.models import Summary

# daemon, organiser and compose (jinja2, icalendar) are imported inside the commands that
# use them (see bench/startup.py).

log = logging.getLogger("mailbot")


@click.command()
@click.option("--once", is_flag=True, help="Handle the waiting mail, then exit (for cron).")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Read the inbox, register, answer. Without --once: keep polling until stopped."""
    from mailbot.host.notify import stopped
    from mailbot.service.loop import Control, describe, run_forever, run_once

    config = load(ctx)
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
        from mailbot.replies.compose import ComposeError

        if ctx.parent is not None and not ctx.parent.params.get("verbose"):
            logging.getLogger().setLevel(logging.INFO)  # a service logs one line per mail
        try:
            run_forever(config, stop, control)
        except AlreadyRunning as exc:
            fail(f"{exc}; not starting a second one", 1)
        except (OSError, *DATABASE_ERRORS) as exc:  # read-only, gone: one line, as --once
            fail(database_problem(config, exc))
        except ComposeError as exc:  # a broken template: every restart would end the same
            fail(f"{exc}; not starting (see `mailbot check`)")
        return
    def progress(summary: Summary) -> None:  # on a terminal only; cron stays quiet
        click.echo(f"\r{summary.read} mails handled, {summary.sent} replies sent …",
                   nl=False, err=True)

    try:
        summary = run_once(config, stop, progress if sys.stderr.isatty() else lambda _: None)
        if sys.stderr.isatty() and summary.read:
            click.echo("\r\033[K", nl=False, err=True)
    except AlreadyRunning as exc:  # the service is at work: cron mails nothing (unless -v)
        if ctx.parent is not None and ctx.parent.params.get("verbose"):
            click.echo(f"mailbot: {exc}; nothing to do.", err=True)
        return
    except InboxError as exc:
        fail(str(exc))
        return
    except (OSError, *DATABASE_ERRORS) as exc:
        fail(database_problem(config, exc))
        return
    finally:
        stopped()  # a SIGTERM's timers (host.notify.stopping): the run ended by itself
    if summary.news or sys.stdout.isatty():  # cron mails whatever is printed
        click.echo(describe(summary))
        click.echo(_where(config))


@click.command()
@click.pass_context
def remind(ctx: click.Context) -> None:
    """Send the reminders that are due now ([reminders] before = ["24h", "1h"]). The
    service and `run --once` do this by themselves; each person gets each reminder once."""
    config = load(ctx)
    queued, summary = _run_task(config, "remind")
    if not queued:
        click.echo(_("No reminder due: {why}.").format(why=_why_no_reminder(config)))
        return
    click.echo(_queued(ngettext("{n} reminder queued", "{n} reminders queued", queued)
                       .format(n=queued), summary))


def _why_no_reminder(config: config_mod.Config) -> str:
    event, now = config.event, now_utc()
    if not config.reminders:
        return _("none are configured ([reminders] before = [])")
    if event.cancelled:
        return _("the event is cancelled")
    if now >= event.start:
        return _("the event has begun")
    later = [(event.start - b, b) for b in config.reminders if event.start - b > now]
    if later:
        due, before = min(later)
        hours = before.total_seconds() / 3600
        return _("the next one ({hours} h before the start) is due on {when}").format(
            hours=f"{hours:g}", when=f"{due.astimezone(event.tz):%d.%m.%Y %H:%M}")
    return _("every confirmed person has had the reminders that are due")


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
@click.pass_context
def announce(ctx: click.Context, yes: bool) -> None:
    """Tell every registered person about a change of the event: after you changed the time
    or the Zoom details in the configuration, each confirmed person gets the new details
    and a calendar entry that replaces the old one. With [event] cancelled = true, everyone
    is told that the event is cancelled. Nobody gets the same announcement twice."""
    config = load(ctx)
    from mailbot.service.processor import Processor

    with opened(config) as store:
        processor = Processor(config, store, None)
        plan = processor.jobs.announcement_plan()
        before = {r.email: r.event_version for r in store.with_status("confirmed")}
        changes = {tuple(processor.jobs.changes_since(before.get(reg.email))) for reg, _, _ in plan}
    if not plan:
        click.echo(_("Everybody already has the current details: nothing to send."))
        return
    people = ngettext("{n} person", "{n} people", len(plan)).format(n=len(plan))
    lines = [(_("This tells {people} that the event is cancelled:") if config.event.cancelled
              else _("This tells {people} the changed details:")).format(people=people)]
    if len(changes) == 1 and not config.event.cancelled:
        lines += [f"  {field}: {old} → {new}" for field, old, new in next(iter(changes))]
    lines += [f"  {line}" for line in _event_lines(config)]
    if not confirm(lines, _("Send it to {people}?").format(people=people), yes):
        click.echo(_("Nothing sent."))
        return
    queued, summary = _run_task(config, "announce")
    if not queued:
        click.echo(_("Everybody already has the current details: nothing to send."))
        return
    click.echo(_queued(ngettext("{n} announcement queued", "{n} announcements queued", queued)
                       .format(n=queued), summary))


def _event_lines(config: config_mod.Config) -> list[str]:
    """The details an announcement carries, as the organiser set them now."""
    event, zoom = config.event, config.zoom
    if event.cancelled:
        return [f"{event.title}, {event.start.astimezone(event.tz):%d.%m.%Y %H:%M}: "
                + _("cancelled")]
    return [f"{event.title}",
            f"{event.start.astimezone(event.tz):%d.%m.%Y %H:%M} – "
            f"{event.end.astimezone(event.tz):%H:%M} ({event.timezone})",
            _("Zoom: {url}, meeting ID {id}").format(url=zoom.url, id=zoom.meeting_id)
            + (_(", passcode {code}").format(code=zoom.passcode) if zoom.passcode
               else _(", no passcode"))]


def _run_task(config: config_mod.Config, task: str) -> tuple[int, Summary | None]:
    from mailbot.desk.organiser import TaskError, run_task

    try:
        return run_task(config, task)
    except TaskError as exc:
        fail(str(exc), 1)
        raise  # unreachable
    except DATABASE_ERRORS as exc:
        fail(database_problem(config, exc))
        raise  # unreachable


def _queued(text: str, summary: Summary | None) -> str:
    """``text`` ("3 reminders queued") with what became of them."""
    if summary is None:
        return text + _("; the running mailbot service sends them at its next round.")
    text += _(", {n} delivered").format(n=summary.sent)
    if summary.send_errors:
        text += _(", {n} not yet (they stay queued and are retried)").format(
            n=summary.send_errors)
    if summary.held:
        text += _(", {n} held back by the sending limits ([smtp] max_per_…): they go out over "
                  "the next hours or days, after the answers to new mail").format(n=summary.held)
    if summary.refused:
        text += _(", {n} refused for good (see mailbot status)").format(n=summary.refused)
    return text + "."


@click.command()
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
        _preview_inbox(load(ctx))
        return
    if file is None:
        fail("give a saved mail (FILE.eml) or --inbox", 2)
    config = load(ctx, secrets=False)
    from mailbot.service.processor import Processor

    raw = Path(file).read_bytes()
    with Store(":memory:") as store:
        click.echo(Processor(config, store, transport=None).preview(raw))


def _preview_inbox(config: config_mod.Config) -> None:
    from mailbot.desk.preview import inbox_preview
    from mailbot.service.processor import Processor

    try:
        store = Store.in_memory_copy(config.database)
    except (OSError, *DATABASE_ERRORS) as exc:
        fail(database_problem(config, exc))
        return
    with store:
        try:
            inbox = open_inbox(config.imap, config.maildir, config.daemon.batch_size,
                               config.limits.max_message_bytes, False, readonly=True)
        except InboxError as exc:
            fail(str(exc))
            return
        try:
            lines, mails, replies = inbox_preview(Processor(config, store, None), inbox)
        except InboxError as exc:
            fail(str(exc))
            return
        finally:
            inbox.close()
    click.echo(f"{inbox.description}: " + ngettext(
        "{n} mail — what `mailbot run` would do now (a dry run: nothing sent, moved, flagged "
        "or stored)", "{n} mails — what `mailbot run` would do now (a dry run: nothing sent, "
        "moved, flagged or stored)", mails).format(n=mails))
    for line in lines:
        click.echo(line)
    click.echo("\n" + ngettext("{n} reply would be sent.", "{n} replies would be sent.",
                               replies).format(n=replies))


def _where(config: config_mod.Config) -> str:
    replies = (_("replies written to {folder}/").format(folder=config.smtp.dry_run_dir)
               if config.smtp.dry_run_dir
               else _("replies sent via {host}").format(host=config.smtp.host))
    return _("Database: {path} — {replies}").format(path=config.database, replies=replies)


# registered on cli.main when one of them is used
COMMANDS = (run, remind, announce, preview)
