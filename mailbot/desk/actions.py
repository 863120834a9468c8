"""The browser desk's actions (``mailbot serve``): approve, dismiss, edit, cancel, add,
move up, resend — each the organiser's command of the same name (desk/organiser.py's
:class:`Desk`), run through :func:`locked_or_queued` as on the command line: holding the
lock it sends (and moves the mail) itself; while the service runs, the change is recorded
beside it and the service sends and moves at its next round.

:func:`perform` never raises: it gives one German line for the page, whatever happened.
The log names the action and the kind of error only (no address, no mail text).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mailbot.config import Config
from mailbot.core.clock import now_utc
from mailbot.core.models import Registration, Summary
from mailbot.desk.organiser import (
    Desk,
    LeaveInPlace,
    OrganiserError,
    Outcome,
    TaskError,
    locked_or_queued,
)
from mailbot.mail.inbox import InboxError, open_inbox
from mailbot.mail.smtp import open_transport
from mailbot.replies.compose import ComposeError
from mailbot.service.processor import Processor
from mailbot.store import DATABASE_ERRORS, Store

log = logging.getLogger(__name__)

SHOWN = ("confirmed", "held", "waitlisted", "cancelled")  # the states the desk lists
STATUS_DE = {"confirmed": "bestätigt", "held": "vorgemerkt (Mail wartet auf Sie)",
             "waitlisted": "auf der Warteliste", "cancelled": "abgemeldet"}


@dataclass(frozen=True)
class Action:
    """One button of the desk: which fields of the form it needs and what it does."""

    needs: tuple[str, ...]
    run: Callable[[Desk, Any, Mapping[str, str]], Outcome]  # Any: an Inbox or LeaveInPlace
    unchanged: str  # the outcome when no registration changed ({nr}, {email} of the form)
    inbox: bool = False


def _field(form: Mapping[str, str], key: str) -> str | None:
    value = (form.get(key) or "").strip()
    return value or None


ACTIONS: dict[str, Action] = {
    "approve": Action(("nr",), lambda d, inbox, f: d.approve(f["nr"], inbox, None, None, None),
                      "Die Mail Nr. {nr} ist freigegeben; an den Anmeldungen hat sich nichts "
                      "geändert.", inbox=True),
    "dismiss": Action(("nr",), lambda d, inbox, f: d.dismiss(f["nr"], inbox),
                      "Die Mail Nr. {nr} ist als erledigt vermerkt, ohne Antwort.",
                      inbox=True),
    "add": Action(("email", "name"), lambda d, _, f: d.add(
        f["email"], f["name"], _field(f, "organisation"), True),
        "{email} war schon angemeldet: nichts geändert."),
    "cancel": Action(("email",), lambda d, _, f: d.cancel(f["email"], True),
                     "{email} war schon abgemeldet: nichts geändert."),
    "edit": Action(("email",), lambda d, _, f: d.edit(
        f["email"], _field(f, "name"), f.get("organisation"), _field(f, "new_email")),
        "Nichts geändert: die Angaben von {email} waren schon so."),
    "move_up": Action(("email",), lambda d, _, f: d.move_up(f["email"]),
                      "Nichts geändert bei {email}."),
    "resend": Action(("email",), lambda d, _, f: d.resend(f["email"]),
                     "{email} bekommt die letzte Mail noch einmal, mit demselben "
                     "Kalendereintrag."),
}
MISSING = {"nr": "die Nummer der Mail", "email": "die E-Mail-Adresse", "name": "den Namen"}


def perform(config: Config, name: str, form: Mapping[str, str]) -> tuple[bool, str]:
    """Run the action ``name`` with the fields of ``form``: (done, one German line)."""
    action = ACTIONS.get(name)
    if action is None:
        return False, "Unbekannte Aktion: nichts geändert."
    missing = [MISSING[key] for key in action.needs if not _field(form, key)]
    if missing:
        return False, f"Nichts geändert: bitte {' und '.join(missing)} angeben."
    fields = {key: value.strip() if key != "organisation" else value
              for key, value in form.items()}
    try:
        return True, locked_or_queued(config, lambda alone: _run(config, action, fields, alone))
    except (OrganiserError, ComposeError, TaskError) as exc:
        return False, f"Nicht ausgeführt: {exc}"
    except InboxError:
        log.warning("desk %s: the inbox failed after the database was changed", name)
        return True, ("Die Datenbank ist geändert, aber das Postfach war nicht erreichbar: "
                      "bitte verschieben Sie die Mail selbst in den Ordner für Erledigtes.")
    except DATABASE_ERRORS as exc:
        log.warning("desk %s: database error %s", name, type(exc).__name__)
        return False, ("Nichts geändert: die Datenbank war gerade nicht verfügbar. Bitte "
                       "versuchen Sie es gleich noch einmal.")
    except Exception as exc:  # the browser gets a line, never a traceback
        log.error("desk %s failed: %s", name, type(exc).__name__)
        return False, ("Nicht ausgeführt: ein unerwarteter Fehler. Bitte versuchen Sie es "
                       "noch einmal; bleibt der Fehler, sagen Sie der technischen Betreuung "
                       f"Bescheid (Zeitpunkt: {now_utc():%d.%m.%Y %H:%M} UTC).")


def _run(config: Config, action: Action, form: Mapping[str, str], alone: bool) -> str:
    with Store(config.database) as store:
        processor = Processor(config, store, open_transport(config.smtp,
                                                            config.contact.address))
        inbox = _inbox(config) if action.inbox else None
        try:
            before = _people(store)
            where = LeaveInPlace(inbox) if inbox is not None and not alone else inbox
            outcome = action.run(Desk(processor), where, form)
            changes = _changes(before, _people(store))
            sent = ""
            if outcome.queued and alone:
                summary = Summary()
                processor.sending.flush(summary)
                sent = _sent(summary)
            elif outcome.queued:
                sent = ("mailbot läuft gerade und verschickt die Mail bei seiner nächsten "
                        "Runde.")
        finally:
            if inbox is not None:
                inbox.close()
    unchanged = action.unchanged.format(nr=form.get("nr", ""), email=form.get("email", ""))
    return " ".join(part for part in (changes or unchanged, sent) if part)


def _inbox(config: Config):
    try:
        return open_inbox(config.imap, config.maildir, 10, config.limits.max_message_bytes,
                          False)
    except InboxError:
        log.warning("desk: inbox not reachable; the mail stays where it is")
        return None


def _people(store: Store) -> dict[str, Registration]:
    return {r.email: r for r in store.with_status(*SHOWN)}


def _who(reg: Registration) -> str:
    return f"{reg.name} <{reg.email}>" if reg.name else reg.email


def _changes(before: dict[str, Registration], after: dict[str, Registration]) -> str:
    """What changed among the registrations, in German: who is now what."""
    lines = []
    gone = [email for email in before if email not in after]
    for email, reg in after.items():
        old = before.get(email)
        if old is None:
            renamed = [g for g in gone if before[g].ics_uid == reg.ics_uid]
            lines.append(f"{_who(reg)}: neue Adresse (vorher {renamed[0]})" if renamed
                         else f"{_who(reg)}: {_status(reg)}")
        elif old.status != reg.status:
            lines.append(f"{_who(reg)}: {_status(reg)}")
        else:
            lines += [f"{what} jetzt „{new or '–'}“ (vorher „{was or '–'}“)" for what, was, new
                      in (("Name", old.name, reg.name),
                          ("Organisation", old.organisation, reg.organisation)) if was != new]
    return "; ".join(lines) + "." if lines else ""


def _status(reg: Registration) -> str:
    return STATUS_DE.get(reg.status.value, reg.status.value)


def _sent(summary: Summary) -> str:
    if summary.send_errors:
        return ("Die Mail konnte noch nicht verschickt werden; mailbot versucht es später "
                "noch einmal.")
    if summary.refused:
        return "Der Mailserver hat die Mail abgelehnt (siehe Antworten)."
    return "Die Mail ist verschickt." if summary.sent == 1 else \
        f"{summary.sent} Mails sind verschickt."
