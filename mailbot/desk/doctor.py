"""`mailbot check`, the doctor: every problem of the configuration, the servers and the
database, one line each; and what it warns about in a configuration that loads — a valid
file can still describe the wrong event (a copied example, an event long over).
`warnings()` is pure: the caller gives the time and the number of confirmed people."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mailbot import config as config_mod
from mailbot.config import Config
from mailbot.core import i18n
from mailbot.core.i18n import tr as _
from mailbot.store import DATABASE_ERRORS, Store, explain, now_utc

EXAMPLE_ZOOM_URL = "https://zoom.us/j/84512345678?pwd=..."
_PLACEHOLDER = re.compile(r"\.\.\.|…|(?<![\w-])example(?![\w-])", re.IGNORECASE)


def check(path: Path, echo: Callable[[str], None]) -> int:
    """`mailbot check`: the configuration (every problem, with its key), the login to the
    IMAP and SMTP servers, the processed folder, the database; one line each through
    ``echo``. The exit code: 0 all passes, 1 valid with warnings, 2 something fails."""
    problems = config_mod.problems(path)
    if problems:
        for problem in problems:
            echo(f"✗ {problem}")
        return 2
    config = config_mod.load(path)
    i18n.use(config.event.organiser_language)
    echo("✓ " + _("configuration {path}").format(path=path))
    for line in setup_lines(config):
        echo(f"  {line}")
    results = [_check_templates(config), _check_inbox(config), _check_transport(config),
               _check_database(config)]
    for ok, text in results:
        echo(f"{'✓' if ok else '✗'} {text}")
    if config.imap and not config.imap.authserv_id:
        echo("⚠ " + _("[imap] authserv_id is not set: forged senders are only caught when "
                      "the topmost Authentication-Results header says dmarc=fail; set it to "
                      "your mail server's name as it appears there (e.g. authserv_id = "
                      "\"mx.example.org\")"))
    found = _check_warnings(config)
    for text in found:
        echo(f"! {text}")
    if not all(ok for ok, _ in results):
        return 2
    if found:
        echo(_("Valid, but please look at the lines marked ! before going live."))
    return 1 if found else 0


def warnings(config: Config, now: dt.datetime, confirmed: int | None = None) -> list[str]:
    """One line per thing that is valid but almost certainly not meant."""
    event = config.event
    found = []
    if event.start <= now:
        found.append(_("[event] start: {start} has passed — is this the right event?").format(
            start=_local(event.start)))
    if event.registration_deadline and event.registration_deadline > event.start:
        found.append(_("[event] registration_deadline: {deadline} is after the start "
                       "({start})").format(deadline=_local(event.registration_deadline),
                                          start=_local(event.start)))
    for before in config.reminders:
        due = event.start - before
        if now < event.start and due < now:
            found.append(_("[reminders] before: the reminder {before} before the start was "
                           "due {due}, already past: it will not be sent").format(
                before=_duration(before), due=_local(due)))
    if event.capacity is not None and confirmed is not None and confirmed > event.capacity:
        found.append(_("[event] capacity: {capacity}, but {confirmed} people are already "
                       "confirmed (nobody is moved to the waitlist)").format(
            capacity=event.capacity, confirmed=confirmed))
    found += [_("{key}: {value} looks like a placeholder from the example — put in the real "
                "value").format(key=key, value=repr(value)) for key, value in placeholders(config)]
    return found


def placeholders(config: Config) -> list[tuple[str, str]]:
    """(``[section] key``, value) for every text that is still the example's filler."""
    found = [(key, value) for key, value in _texts(config)
             if value == EXAMPLE_ZOOM_URL or _PLACEHOLDER.search(value)]
    return list(dict.fromkeys(found))  # [oauth2] is read into [imap] and [smtp]: name it once


def _texts(obj: Any, section: str = "") -> Iterator[tuple[str, str]]:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in ("password", "source", "database", "templates"):
            continue
        if dataclasses.is_dataclass(value):
            yield from _texts(value, f.name)
        elif isinstance(value, str) and section:
            yield f"[{section}] {f.name}", value


def _local(moment: dt.datetime) -> str:
    return f"{moment:%d.%m.%Y %H:%M}"


def _duration(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g}h" if hours < 48 else f"{hours / 24:g}d"


def _check_warnings(config: Config) -> list[str]:
    """Valid but unlikely meant: an event in the past, the example's placeholders …"""
    confirmed = None
    if config.database.exists():
        with contextlib.suppress(OSError, *DATABASE_ERRORS), Store(config.database) as store:
            confirmed = store.counts("registrations", "status").get("confirmed", 0)
    return warnings(config, now_utc(), confirmed)


def setup_lines(config: Config) -> list[str]:
    """What mailbot will use: servers, logins, limits, copies in Sent (presets filled in)."""
    from mailbot.mail.auth import mechanism  # urllib and http: only for `check`, not for `status`

    lines = []
    imap, smtp = config.imap, config.smtp
    if imap is not None:
        preset = _(" (preset {provider})").format(provider=imap.provider) if imap.provider \
            else ""
        lines.append(f"IMAP {imap.host}:{imap.port} {imap.security}{preset}, " + _(
            "login {user} with {mechanism}, copy of each reply in Sent: {copy}").format(
            user=imap.username, mechanism=mechanism(imap),
            copy=_("yes") if imap.save_sent else _("no")))
    if smtp.host:
        limits = [f"{n}/{w}" for n, w in ((smtp.max_per_minute, _("minute")),
                                          (smtp.max_per_hour, _("hour")),
                                          (smtp.max_per_day, _("day"))) if n]
        login = _("login {user} with {mechanism}").format(
            user=smtp.username, mechanism=mechanism(smtp)) if smtp.username else _("no login")
        pace = _("at most {limits}").format(limits=", ".join(limits)) if limits else \
            _("no sending limit")
        lines.append(f"SMTP {smtp.host}:{smtp.port} {smtp.security}, {login}, {pace}, "
                     + i18n.ngettext("{n} connection", "{n} connections",
                                     smtp.connections).format(n=smtp.connections))
    return lines


def _check_templates(config: Config) -> tuple[bool, str]:
    from mailbot.replies.compose import template_problems  # jinja2: only for check

    broken = template_problems(config)
    where = config.templates or _("packaged")
    if broken:
        more = _(" (and {n} more)").format(n=len(broken) - 1) if len(broken) > 1 else ""
        return False, _("templates ({where}): {problem}").format(where=where,
                                                                problem=broken[0]) + more
    return True, _("templates ({where}): all compile").format(where=where)


def _check_inbox(config: Config) -> tuple[bool, str]:
    from mailbot.mail.imap import ImapInbox
    from mailbot.mail.inbox import InboxError, open_inbox  # imapclient: only for check

    try:
        inbox = open_inbox(config.imap, config.maildir, 10, config.limits.max_message_bytes,
                           False)
    except InboxError as exc:
        return False, str(exc)
    try:
        count = sum(len(batch) for batch in inbox.batches())
        if config.imap:
            processed = inbox.processed
        else:
            assert config.maildir is not None  # open_inbox opened one of them
            processed = config.maildir.processed_folder
        mails = i18n.ngettext("{n} mail", "{n} mails", count).format(n=count)
        from mailbot.mail.auth import mechanism

        login = (_("logged in as {user} with {mechanism}, ").format(
            user=config.imap.username, mechanism=mechanism(config.imap))
            if config.imap else "")
        sent = (_(", copies in Sent: {folder} takes them").format(
            folder=repr(inbox.check_sent()))
            if isinstance(inbox, ImapInbox) and config.imap and config.imap.save_sent
            else "")
        return True, f"{inbox.description}: " + _(
            "reachable, {login}{mails} in the folder, processed folder {processed} "
            "ready{sent}").format(login=login, mails=mails, processed=repr(processed),
                                  sent=sent)
    except InboxError as exc:
        return False, str(exc)
    finally:
        inbox.close()


def _check_transport(config: Config) -> tuple[bool, str]:
    from mailbot.mail.smtp import TransportError, open_transport  # aiosmtplib: only for check

    try:
        return True, open_transport(config.smtp, config.contact.address).probe()
    except TransportError as exc:
        return False, str(exc)


def _check_database(config: Config) -> tuple[bool, str]:
    if not config.database.exists():
        folder = config.database.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if os.access(folder, os.W_OK):
            return True, _("database {path}: not there yet, it is made (mode 0600) at the "
                           "first run").format(path=config.database)
        return False, _("database {path}: cannot be created ({folder} not writable)").format(
            path=config.database, folder=folder)
    try:
        store = Store(config.database)
    except DATABASE_ERRORS as exc:
        return False, database_problem(config, exc)
    except OSError as exc:
        return False, _("database {path}: {error}").format(path=config.database, error=exc)
    with store:
        try:
            version = store.schema_version()
            mode = config.database.stat().st_mode & 0o777
            if mode & 0o077:
                return False, _("database {path}: readable by others (mode {mode}); run: "
                                "chmod 600 {path}").format(path=config.database,
                                                           mode=f"{mode:o}")
            rows = sum(store.counts("registrations", "status").values())
            return True, _("database {path}: schema {version}, {rows} registrations, mode "
                           "{mode}").format(path=config.database, version=version, rows=rows,
                                            mode=f"{mode:o}")
        except DATABASE_ERRORS as exc:
            return False, database_problem(config, exc)


def database_problem(config: Config, exc: Exception) -> str:
    """One line about a database that cannot be used, with what to do."""
    text = str(exc).lower()
    if not isinstance(exc, OSError) and "readonly" not in text and "unable to open" not in text:
        return explain(exc, config.database)  # locked, full, damaged, foreign, deleted
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return _("database {path}: {reason} (run mailbot as the user that owns it; see "
             "docs/operations.md, \"Organiser commands beside the systemd service\")").format(
        path=config.database, reason=reason)
