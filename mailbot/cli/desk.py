"""The organiser's desk on the command line: approve, dismiss, add, cancel, edit, move-up,
resend, forget, purge — each a change by hand that must not race the running service."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mailbot import config as config_mod
from mailbot.cli.common import confirm, fail, load, opened, plural
from mailbot.cli.common import fail as _fail
from mailbot.cli.common import load as _load
from mailbot.cli.common import open_store as _open_store
from mailbot.mail.inbox import InboxError, open_inbox
from mailbot.mail.smtp import open_transport
from mailbot.store import DATABASE_ERRORS, now_utc, prune_backups

if TYPE_CHECKING:
    from mailbot.desk.organiser import Outcome

# daemon, organiser and compose are imported inside the commands (see bench/startup.py).


@click.command()
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


@click.command()
@click.argument("message")
@click.pass_context
def dismiss(ctx: click.Context, message: str) -> None:
    """Mark a mail from the review list as handled, without a reply (you answered it
    yourself, or it needs none). MESSAGE: its number in `mailbot review` or Message-ID.
    While the service runs, it moves the mail at its next round."""
    _desk_call(ctx, lambda desk, inbox: desk.dismiss(message, inbox), need_inbox=True)


@click.command()
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


@click.command("cancel")
@click.argument("email")
@click.option("--no-mail", is_flag=True, help="Record only; send no cancellation mail.")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.pass_context
def cancel_(ctx: click.Context, email: str, no_mail: bool, yes: bool) -> None:
    """Cancel someone's registration by hand; their calendar entry is removed and the first
    person on the waitlist moves up. Shows what will happen and asks."""
    config = load(ctx)
    email = email.strip().lower()
    with opened(config) as store:
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
        if not confirm(lines, "Cancel this registration?", yes):
            click.echo("Nothing changed.")
            return
    _desk_call(ctx, lambda desk, _: desk.cancel(email, not no_mail))


@click.command()
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


@click.command("move-up")
@click.argument("email")
@click.pass_context
def move_up(ctx: click.Context, email: str) -> None:
    """Give a person on the waitlist a place by hand (also when the event is full); they
    get the confirmation with the Zoom details and the calendar entry."""
    _desk_call(ctx, lambda desk, _: desk.move_up(email))


@click.command()
@click.argument("email")
@click.pass_context
def resend(ctx: click.Context, email: str) -> None:
    """Send someone their confirmation (or waitlist notice) again, with the same calendar
    entry — e.g. when it landed in their spam folder."""
    _desk_call(ctx, lambda desk, _: desk.resend(email))


@click.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask (needed without a terminal).")
@click.pass_context
def forget(ctx: click.Context, email: str, yes: bool) -> None:
    """Erase a person's data (DSGVO Art. 17): registration, replies, their name and address
    in the log; the database file is cleaned so nothing remains on disk. Their mails are
    deleted from the inbox and the processed folder ([privacy] mailbox = "delete"). A
    backup of the database is written first. Shows what goes and asks."""
    from mailbot.replies.compose import body_forms  # the name as it stands in a reply

    config = load(ctx)
    email = email.strip().lower()
    with opened(config) as store:
        about = store.about(email)
        names = [about["name"], *body_forms(about["name"])] if about["name"] else []
        keys = store.message_keys(email) | store.own_mail_keys(email, [email, *names])
    if not (about["status"] or about["replies"] or about["mails"]):
        fail(f"nothing stored about {email}", 1)
    who = f"{about['name']} <{email}>" if about["name"] else email
    lines = [f"This erases everything about {who}:"]
    if about["status"]:
        lines.append(f"  their registration ({about['status']})")
    lines += [f"  {plural(about['replies'], 'reply', 'replies')} to them, "
              f"{plural(about['mails'], 'mail')} from them in the log",
              f"  {_mailbox_line(config, 'their mails')}"]
    if not confirm(lines, "Erase it now?", yes):
        click.echo("Nothing erased.")
        return
    _before_erasing(config, keys, email)
    _desk_call(ctx, lambda desk, _: desk.forget(email), send=False)


@click.command()
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
    config = load(ctx)
    now = now_utc()
    from mailbot.service.processor import Processor

    with opened(config) as store:
        due = Processor(config, store, None).jobs.purge_due()
        counts = store.counts("registrations", "status")
        keys = store.message_keys() | store.own_mail_keys()
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
        if not confirm(lines, "Erase it all now?", yes):
            click.echo("Nothing erased.")
            return
    _before_erasing(config, keys, None, backup=now < due)  # after it: nothing may stay
    _desk_call(ctx, lambda desk, _: desk.purge(now, True), send=False)


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
    with opened(config) as store:
        if backup:
            path = store.backup(store.backup_folder, config.privacy.backup_days, now_utc())
            click.echo(f"Backup written: {path} (removed after "
                       f"{config.privacy.backup_days} days)")
        else:
            removed = prune_backups(store.backup_folder, 0, now_utc(), everything=True)
            click.echo("No backup: the retention period is over"
                       + (f"; {plural(len(removed), 'older backup')} removed" if removed
                          else ""))
    if config.privacy.mailbox == "keep":
        click.echo(_mailbox_line(config, "The mails"))
        return
    try:
        inbox = open_inbox(config.imap, config.maildir, 10, config.limits.max_message_bytes,
                           False)
        try:
            erased = inbox.erase(keys, sender)
        finally:
            inbox.close()
    except InboxError as exc:
        fail(f"{exc}; nothing was erased. Try again, or set [privacy] mailbox = \"keep\" "
             f"and delete the mails yourself", 2)
        return
    click.echo(f"{plural(erased, 'mail')} deleted from {_folders(config)}")


# _desk_call, _desk_run and _LeaveInPlace: moved here from cli.py as they were.
def _desk_call(ctx: click.Context, action, need_inbox: bool = False, send: bool = True) -> None:
    from mailbot.desk.organiser import TaskError, locked_or_queued

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
    from mailbot.core.models import Summary
    from mailbot.desk.organiser import Desk, OrganiserError
    from mailbot.replies.compose import ComposeError
    from mailbot.service.processor import Processor

    inbox = None
    with _open_store(config) as store:
        try:
            transport = open_transport(config.smtp, config.contact.address)
            processor = Processor(config, store, transport)
            if need_inbox:
                try:
                    inbox = open_inbox(config.imap, config.maildir, 10,
                                       config.limits.max_message_bytes, False)
                except InboxError as exc:
                    click.echo(f"mailbot: inbox not reachable ({exc}); the database is changed, "
                               f"move the mail yourself", err=True)
            try:
                where = _LeaveInPlace(inbox) if beside_service and inbox else inbox
                outcome = action(Desk(processor), where)
            except (OrganiserError, ComposeError) as exc:
                _fail(str(exc), 1)
            except InboxError as exc:  # the database is changed; the mail stays where it is
                _fail(f"{exc}; the database is updated, please move the mail yourself", 2)
            except DATABASE_ERRORS as exc:
                _fail(f"database {config.database}: {exc}; nothing was changed, try again", 2)
            click.echo(outcome.text)
            if send and outcome.queued:
                summary = Summary()
                processor.sending.flush(summary)
                click.echo(f"{summary.sent} sent"
                           + (f", {summary.send_errors} not yet (queued)"
                              if summary.send_errors else "")
                           + (f", {summary.refused} refused for good (see mailbot status)"
                              if summary.refused else ""))
            return outcome
        finally:
            if inbox is not None:
                inbox.close()


class _LeaveInPlace:
    """The inbox while the service runs: a mail is read (for its names) but not moved —
    the service finds it settled in the database and moves it at its next round, so two
    processes never move mail in the same folder."""

    moves_later = True

    def __init__(self, inbox):
        self.inbox = inbox

    def find(self, message_id: str, fingerprint: str | None = None):
        return self.inbox.find(message_id, fingerprint)

    def release(self, ref: str) -> None:
        self.inbox.unflag([ref])  # settled: not flagged for a human any more


# registered on cli.main when one of them is used
COMMANDS = (approve, dismiss, add, cancel_, edit, move_up, resend, forget, purge)
