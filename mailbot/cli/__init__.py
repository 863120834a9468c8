"""The command line: ``mailbot [--config PATH] COMMAND`` — run, status, review, list,
export, approve, dismiss, add, cancel, edit, move-up, resend, preview, check, forget, purge,
remind, announce, sample-replies, serve.

The only place that configures logging and decides exit codes: 0 done, 1 a run that
could not finish, 2 a configuration or connection problem (one line on stderr, no
traceback). Here: the group and the read-only commands; the desk's changes by hand are in
cli/desk.py, the commands that act through the service in cli/run.py (both imported only
when one of their commands is used), the shared parts in cli/common.py, `check` in
doctor.py.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from pathlib import Path

import click

from mailbot import config as config_mod
from mailbot.cli.common import fail, load, opened
from mailbot.core.i18n import ngettext
from mailbot.core.i18n import tr as _
from mailbot.replies.report import (
    CSV_COLUMNS,
    LIST_COLUMNS,
    csv_header,
    format_review,
    format_table,
    to_csv,
    to_excel_csv,
    zoom_rows,
)
from mailbot.service import health
from mailbot.store import DATABASE_ERRORS, now_utc

# daemon, organiser and compose (jinja2, icalendar) are imported inside the commands that
# use them: `status`, `list` and `review` start without them (see bench/startup.py).


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S %z")  # local time, with its offset
    # imapclient logs every IMAP line at DEBUG, whole incoming mails included: personal
    # data has no place in the journal, so its commands are never logged
    logging.getLogger("imapclient").setLevel(max(level, logging.INFO))


class _Group(click.Group):
    """The commands; those of cli/run.py and cli/desk.py are imported when one of them is
    used (or listed by --help): `status`, `list` and `review` start without the mail
    libraries (imapclient, aiosmtplib) those modules need."""

    ELSEWHERE = {"run": ("run", "remind", "announce", "preview"),
                 "desk": ("approve", "dismiss", "add", "cancel", "edit", "move-up",
                              "resend", "forget", "purge")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *(n for ns in self.ELSEWHERE.values() for n in ns)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module, names in self.ELSEWHERE.items():
            if cmd_name in names and cmd_name not in self.commands:
                for command in importlib.import_module(f".{module}", __package__).COMMANDS:
                    self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Configuration file [default: $MAILBOT_CONFIG, else config/mailbot.toml].")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """mailbot: answers event registrations that arrive by e-mail."""
    os.umask(0o077)  # the database, replies and logs hold personal data
    _setup_logging(verbose)
    ctx.obj = config_mod.resolve_path(config_path)


@main.command()
@click.pass_context
def review(ctx: click.Context) -> None:
    """List the mail that waits for a human: questions, unclear mails, and registrations
    that also ask something. They stay flagged in the inbox; answer them from your mail
    program and move them out of the inbox."""
    config = load(ctx, secrets=False)
    with opened(config) as store:
        rows = store.for_review()
    click.echo(format_review(rows, config.event.tz))


@main.command("sample-replies")
@click.option("--output", "folder", default="var/sample-replies", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the .eml files.")
@click.pass_context
def sample_replies(ctx: click.Context, folder: str) -> None:
    """Write one example of every reply kind, in German and English, as .eml files, made
    from your configuration and templates for a fictional participant. Open them in a mail
    program to see exactly what people will receive. Sends nothing, stores nothing."""
    config = load(ctx, secrets=False)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    from mailbot.replies.compose import example_replies

    for name, body in example_replies(config):
        (out / name).write_bytes(body)
    count = len(list(out.glob("*.eml")))
    click.echo(ngettext("{n} example reply in {folder}/", "{n} example replies in {folder}/",
                        count).format(n=count, folder=out))


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Overview: whether mailbot works, registrations and free places, mail waiting for a
    human, replies not yet sent or refused, and when mailbot last looked at the inbox.
    Exit code 1 when it does not work (a server refuses its login), for monitoring."""
    config = load(ctx, secrets=False)
    with opened(config) as store:
        text, refused = health.status_text(config, store)
    click.echo(text)
    if refused:
        sys.exit(1)


@main.command("list")
@click.option("--status", type=click.Choice(["confirmed", "waitlisted", "cancelled", "held"]),
              help="Only people with this status (held: a place kept while you read their "
                   "mail, \"vorgemerkt\").")
@click.option("--waitlist", is_flag=True, help="Only the waitlist, in the order people move "
                                               "up (the same as --status waitlisted).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.pass_context
def list_(ctx: click.Context, status: str | None, fmt: str, waitlist: bool) -> None:
    """The registered people, in order of arrival."""
    if waitlist:
        status = "waitlisted"
    config = load(ctx, secrets=False)
    with opened(config) as store:
        rows = store.registration_rows(status)
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in CSV_COLUMNS} for r in rows],
                              ensure_ascii=False, indent=2))
    elif fmt == "csv":
        click.echo(to_csv(rows, CSV_COLUMNS, CSV_COLUMNS), nl=False)
    else:
        click.echo(format_table(rows, LIST_COLUMNS, config.event.tz))
        click.echo(ngettext("{n} person", "{n} people", len(rows)).format(n=len(rows)))


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
    config = load(ctx, secrets=False)
    with opened(config) as store:
        if fmt == "zoom-csv":
            rows = zoom_rows(store.registration_rows("confirmed"))
            text = to_csv(rows, ("email", "first", "last", "org"),
                          ("Email", "First Name", "Last Name", "Organization"), excel)
        elif excel:
            rows = store.registration_rows(held=False)  # a held place is not decided yet
            text = to_excel_csv(rows, CSV_COLUMNS, csv_header(), config.event.tz)
        else:
            rows = store.registration_rows(held=False)
            text = to_csv(rows, CSV_COLUMNS, CSV_COLUMNS)
    if output:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the file was there before, with another mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        click.echo(ngettext("{n} row written to {file}", "{n} rows written to {file}",
                            len(rows)).format(n=len(rows), file=output), err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check the setup: the configuration (every problem, with its key), the login to the
    IMAP and SMTP servers, the processed folder, the database. One line per check; exit
    code 0 only when everything passes."""
    from mailbot.desk.doctor import check as run_check

    sys.exit(run_check(ctx.obj, click.echo))


@main.command()
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="Port on 127.0.0.1 (with the login of [serve] password_file).")
@click.option("--socket", "socket_path", is_flag=False, flag_value="", default=None,
              type=click.Path(dir_okay=False),
              help="Serve on a Unix socket (mode 0600) instead, for an SSH tunnel or a "
                   "reverse proxy [PATH default: mailbot-serve.sock beside the database].")
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False),
              help="datasette metadata [default: config/datasette-metadata.json].")
@click.pass_context
def serve(ctx: click.Context, port: int, socket_path: str | None,
          metadata: str | None) -> None:
    """Look at the database in the browser (datasette): participants, waitlist, mail to
    answer, replies — in German, times in the event's time zone. Read-only, the views
    only (no free SQL), on 127.0.0.1 behind a login, or on a Unix socket (--socket); from
    another computer, use an SSH tunnel (see docs/reference.md). Ctrl-C stops it."""
    from mailbot.desk import browse  # asyncio and datasette: only for this command

    config = load(ctx, secrets=False)
    try:
        password = config_mod.serve_password(config)
    except config_mod.ConfigError as exc:
        fail(str(exc))
    try:
        with opened(config) as store:  # the views of the current schema, the event's zone
            store.use_time_zone(config.event.timezone, now_utc())
    except (OSError, *DATABASE_ERRORS) as exc:
        fail(_("database {path}: {error}").format(path=config.database, error=exc))
    path = None if socket_path is None else Path(socket_path or browse.default_socket(
        config.database))
    try:
        data = browse.load_metadata(Path(metadata) if metadata else browse.default_metadata())
        ds = browse.make_datasette(config.database, data, password,
                                   port=None if path else port, login=bool(password or not path),
                                   config=_desk_config(ctx, config))
        if path:
            sock = browse.bind_socket(path)
        else:
            browse.check_port(port)
    except browse.BrowseError as exc:
        fail(str(exc))
        return
    login = _("log in with the password of [serve]") if password else \
        _("no login: mode 0600")
    if path:
        click.echo(_("The database on the socket {path} (read-only, {login}; e.g. ssh -L "
                     "8001:{path} this-host, then {url}; Ctrl-C stops)").format(
            path=path, login=login, url=f"http://localhost:8001/{browse.NAME}"), err=True)
        browse.run_socket(ds, sock, path)
        return
    click.echo(_("The database in your browser: {url} (read-only, {login}; Ctrl-C "
                 "stops)").format(url=f"http://{browse.HOST}:{port}/{browse.NAME}",
                                  login=login), err=True)
    browse.run(ds, port)


def _desk_config(ctx: click.Context, config: config_mod.Config) -> config_mod.Config:
    """The configuration the browser desk's buttons act with: with the mail passwords, so
    that a change sends its mail itself when the service does not run; without them (not
    readable here), the change is recorded and the service sends it at its next round."""
    try:
        return config_mod.load(ctx.obj, True)
    except config_mod.ConfigError:
        click.echo(_("(the mail passwords are not readable here: the service sends the mails "
                     "of changes made in the browser)"), err=True)
        return config


if __name__ == "__main__":  # pragma: no cover
    main()
