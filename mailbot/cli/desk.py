"""The organiser's desk on the command line: approve, dismiss, add, cancel, edit, move-up,
resend, forget, purge — each a change by hand that must not race the running service."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from mailbot import config as config_mod
from mailbot.cli.common import confirm, fail, load, opened
from mailbot.cli.common import fail as _fail
from mailbot.cli.common import load as _load
from mailbot.cli.common import open_store as _open_store
from mailbot.core.i18n import ngettext
from mailbot.core.i18n import tr as _
from mailbot.mail.inbox import InboxError, open_inbox
from mailbot.mail.smtp import open_transport
from mailbot.replies.report import status_word
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
@click.option("--lang", type=click.Choice(["de", "en"]),
              help="The language to write to them in [default: the event's language].")
@click.pass_context
def add(ctx: click.Context, email: str, name: str, organisation: str | None,
        no_mail: bool, lang: str | None) -> None:
    """Register someone by hand (e.g. after a phone call). Capacity and waitlist apply;
    the person gets the usual confirmation with the calendar entry."""
    _desk_call(ctx, lambda desk, _inbox: desk.add(email, name, organisation, not no_mail,
                                                  lang))


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
        confirmed = about["status"] == "confirmed"
        lines = [_("This cancels the registration of {who} <{email}> ({status}).").format(
                     who=about["name"] or email, email=email, status=status_word(about["status"])),
                 "  " + (_("They get no mail (--no-mail).") if no_mail else
                         _("They get a cancellation mail; their calendar entry is removed.")
                         if confirmed else
                         _("They get a cancellation mail and leave the waitlist."))]
        if confirmed and waiting:
            lines.append("  " + _("{who} <{email}> moves up from the waitlist and gets a "
                                  "confirmation.").format(who=waiting[0].name or waiting[0].email,
                                                          email=waiting[0].email))
        if not confirm(lines, _("Cancel this registration?"), yes):
            click.echo(_("Nothing changed."))
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
        fail(_("nothing stored about {email}").format(email=email), 1)
    who = f"{about['name']} <{email}>" if about["name"] else email
    lines = [_("This erases everything about {who}:").format(who=who)]
    if about["status"]:
        lines.append("  " + _("their registration ({status})").format(
            status=status_word(about["status"])))
    lines += ["  " + ngettext("{n} reply to them", "{n} replies to them",
                              about["replies"]).format(n=about["replies"]) + ", "
              + ngettext("{n} mail from them in the log", "{n} mails from them in the log",
                         about["mails"]).format(n=about["mails"]),
              "  " + _mailbox_line(config, _("their mails"))]
    if not confirm(lines, _("Erase it now?"), yes):
        click.echo(_("Nothing erased."))
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
        waiting = store.for_review()
    if now < due and not force:
        click.echo(_("nothing to erase before {due} ([privacy] retain_days_after_event = "
                     "{days})").format(due=f"{due.astimezone(config.event.tz):%d.%m.%Y}",
                                       days=config.privacy.retain_days))
        return
    if force and now < due:
        listed = ", ".join(f"{n} {status_word(s)}" for s, n in sorted(counts.items())) \
            or _("none")
        total = sum(counts.values())
        lines = [ngettext("This erases the personal data of {n} registration ({listed}) and "
                          "every reply, before the retention period ends ({due}).",
                          "This erases the personal data of {n} registrations ({listed}) and "
                          "every reply, before the retention period ends ({due}).",
                          total).format(n=total, listed=listed,
                                        due=f"{due.astimezone(config.event.tz):%d.%m.%Y}"),
                 _mailbox_line(config, ngettext("The {n} mail mailbot handled",
                                                "The {n} mails mailbot handled",
                                                len(keys)).format(n=len(keys))),
                 *_unanswered(waiting, config)]
        if not confirm(lines, _("Erase it all now?"), yes):
            click.echo(_("Nothing erased."))
            return
    _before_erasing(config, keys, None, backup=now < due)  # after it: nothing may stay
    _desk_call(ctx, lambda desk, _: desk.purge(now, True), send=False)


def _unanswered(rows: list[dict], config: config_mod.Config) -> list[str]:
    """The mails still waiting for review (number, date, subject: no body, no sender)."""
    if not rows:
        return []
    n = len(rows)
    lines = [(ngettext("{n} mail still waiting for review will be settled unanswered (it stays "
                       "in the inbox):",
                       "{n} mails still waiting for review will be settled unanswered (they "
                       "stay in the inbox):", n)
              if config.privacy.mailbox == "keep" else
              ngettext("{n} mail still waiting for review will be deleted unanswered:",
                       "{n} mails still waiting for review will be deleted unanswered:",
                       n)).format(n=n)]
    for row in rows:
        when = dt.datetime.fromisoformat(row["received_at"]).astimezone(config.event.tz)
        lines.append(f"  [{row['id']}] {when:%d.%m.%Y %H:%M}  {row['subject'] or '–'}")
    return lines


def _mailbox_line(config: config_mod.Config, what: str) -> str:
    folders = _folders(config)
    if config.privacy.mailbox == "keep":
        return _("{what} stay in {folders} ([privacy] mailbox = \"keep\"): delete them in "
                 "your mail program").format(what=what, folders=folders)
    return _("{what} are deleted from {folders}").format(what=what, folders=folders)


def _folders(config: config_mod.Config) -> str:
    box = config.imap or config.maildir
    assert box is not None
    folder = config.imap.folder if config.imap else _("the Maildir")
    return _("{folder} and {processed}").format(folder=folder, processed=box.processed_folder)


def _before_erasing(config: config_mod.Config, keys: set[str], sender: str | None,
                    backup: bool = True) -> None:
    """The backup, then the mails in the mailbox; a failure stops before the database.
    No backup once the retention period is over: then every copy goes (the service removes
    the older backups then, too)."""
    with opened(config) as store:
        if backup:
            path = store.backup(store.backup_folder, config.privacy.backup_days, now_utc())
            click.echo(ngettext("Backup written: {path} (removed after {n} day)",
                                "Backup written: {path} (removed after {n} days)",
                                config.privacy.backup_days).format(
                path=path, n=config.privacy.backup_days))
        else:
            removed = prune_backups(store.backup_folder, 0, now_utc(), everything=True)
            click.echo(_("No backup: the retention period is over")
                       + (ngettext("; {n} older backup removed", "; {n} older backups removed",
                                   len(removed)).format(n=len(removed)) if removed else ""))
    if config.privacy.mailbox == "keep":
        click.echo(_mailbox_line(config, _("The mails")))
        return
    try:
        inbox = open_inbox(config.imap, config.maildir, 10, config.limits.max_message_bytes,
                           False)
        try:
            erased = inbox.erase(keys, sender)
        finally:
            inbox.close()
    except InboxError as exc:
        fail(_("{error}; nothing was erased. Try again, or set [privacy] mailbox = \"keep\" "
               "and delete the mails yourself").format(error=exc), 2)
        return
    click.echo(ngettext("{n} mail deleted from {folders}", "{n} mails deleted from {folders}",
                        erased).format(n=erased, folders=_folders(config)))


# _desk_call and _desk_run: the desk commands run through locked_or_queued.
def _desk_call(ctx: click.Context, action, need_inbox: bool = False, send: bool = True) -> None:
    from mailbot.desk.organiser import TaskError, locked_or_queued

    config = _load(ctx)

    def run(alone: bool) -> None:  # not alone: the service sends (and moves a settled mail)
        outcome = _desk_run(config, action, need_inbox, send and alone,
                            beside_service=not alone)
        if not alone and outcome is not None and outcome.queued:
            click.echo(_("(mailbot is running right now and sends the mail at its next round)"))

    try:
        locked_or_queued(config, run)
    except TaskError as exc:
        _fail(str(exc), 1)


def _desk_run(config: config_mod.Config, action, need_inbox: bool, send: bool,
              beside_service: bool = False) -> Outcome | None:
    from mailbot.core.models import Summary
    from mailbot.desk.organiser import Desk, LeaveInPlace, OrganiserError
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
                    click.echo("mailbot: " + _("inbox not reachable ({error}); the database "
                                               "is changed, move the mail yourself").format(
                        error=exc), err=True)
            try:
                where = LeaveInPlace(inbox) if beside_service and inbox else inbox
                outcome = action(Desk(processor), where)
            except (OrganiserError, ComposeError) as exc:
                _fail(str(exc), 1)
            except InboxError as exc:  # the database is changed; the mail stays where it is
                _fail(_("{error}; the database is updated, please move the mail "
                        "yourself").format(error=exc), 2)
            except DATABASE_ERRORS as exc:
                _fail(_("database {path}: {error}; nothing was changed, try again").format(
                    path=config.database, error=exc), 2)
            click.echo(outcome.text)
            if send and outcome.queued:
                summary = Summary()
                processor.sending.flush(summary)
                click.echo(_("{n} sent").format(n=summary.sent)
                           + (_(", {n} not yet (queued)").format(n=summary.send_errors)
                              if summary.send_errors else "")
                           + (_(", {n} refused for good (see mailbot status)").format(
                               n=summary.refused) if summary.refused else ""))
            return outcome
        finally:
            if inbox is not None:
                inbox.close()


# registered on cli.main when one of them is used
COMMANDS = (approve, dismiss, add, cancel_, edit, move_up, resend, forget, purge)
