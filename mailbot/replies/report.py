"""Texts for organisers: the status overview and the review list (pure)."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import email.utils
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mailbot.config import Config
from mailbot.core.i18n import N_, language, ngettext
from mailbot.core.i18n import tr as _
from mailbot.core.models import (
    ALREADY,
    ATTENTION,
    FOREIGN,
    WAITING,
    Action,
    Decision,
    ParsedMail,
    Reply,
    StatusFacts,
    Summary,
)
from mailbot.reading.names import PARTICLES

if TYPE_CHECKING:  # annotations only: `status` and `list` need not load the reader
    from mailbot.core.models import Reading


def local(value: str | None, tz: dt.tzinfo) -> str:
    if not value:
        return _("never")
    return f"{dt.datetime.fromisoformat(value).astimezone(tz):%d.%m.%Y %H:%M:%S}"


def format_status(config: Config, facts: StatusFacts) -> str:
    """The overview; refused logins are shown first as NOT WORKING."""
    registrations, review, outbox, failed = (facts.registrations, facts.review, facts.outbox,
                                             facts.failed)
    last_poll, last_error, clean_poll = facts.last_poll, facts.last_error, facts.clean_poll
    burst, refused, budget = facts.burst, facts.refused, facts.budget
    undeliverable = facts.undeliverable
    event, tz = config.event, config.event.tz
    head = [_("State: working")] if not refused else [_("State: NOT WORKING")] + [
        "  " + _("{part} refuses the login since {since}: {error}").format(
            part=part.upper(), since=local(since, tz), error=error)
        for part, error, since in refused]
    if facts.sent_copy:
        if not refused:
            head = [_("State: working, but the copies of replies in Sent FAIL")]
        head.append("  " + _("no copy in the Sent folder since {since}: {error} (the replies "
                             "themselves go out)").format(since=local(facts.sent_copy[1], tz),
                                                         error=facts.sent_copy[0]))
    confirmed, held = registrations.get("confirmed", 0), registrations.get("held", 0)
    places = (_(" of {capacity} places ({free} free)").format(
        capacity=event.capacity, free=max(event.capacity - confirmed - held, 0))
        if event.capacity else _(" (no capacity limit)"))
    lines = head + [
        event.title,
        f"  {event.start:%d.%m.%Y %H:%M}–{event.end:%H:%M} ({event.timezone}), "
        + _("registration until {deadline}").format(deadline=f"{event.deadline:%d.%m.%Y %H:%M}"),
        _("Registrations: {confirmed} confirmed{places}, {waitlisted} waitlisted, "
          "{cancelled} cancelled").format(
            confirmed=confirmed, places=places, waitlisted=registrations.get("waitlisted", 0),
            cancelled=registrations.get("cancelled", 0))
        + (_("; {n} held while you read their mail (vorgemerkt)").format(n=held)
           if held else ""),
        _("Waiting for a human: {n}").format(n=review)
        + (_(" (see: mailbot review)") if review else ""),
        *(["  " + _("of these {n} held as a burst of new registrations from one domain "
                    "([limits] max_new_per_domain_per_hour = {limit}): forged senders?").format(
            n=burst, limit=config.limits.max_new_per_domain_per_hour)] if burst else []),
        _("Outbox: {queued} queued, {sent} sent, {failed} failed").format(
            queued=outbox.get("queued", 0) + outbox.get("sending", 0),
            sent=outbox.get("sent", 0), failed=outbox.get("failed", 0)),
    ]
    for row in failed:
        lines.append("  " + _("failed: {kind} to {recipient}: {error}").format(
            kind=row["kind"], recipient=row["recipient"], error=row["last_error"]))
    if undeliverable:
        lines.append(_("Undeliverable addresses: {n} (their replies bounced; no reminders go "
                       "there; see: mailbot review)").format(n=undeliverable))
    if budget is not None:
        lines.append(_("Sending budget: {left} of {total} replies left for the next 24 hours "
                       "([smtp] max_per_day)").format(left=budget[0], total=budget[1]))
    lines.append(_("Last poll: {when}").format(
        when=local(last_poll[1] if last_poll else None, tz)))
    if last_error and clean_poll and clean_poll[0] == last_error[1]:  # a clean run after it
        lines.append(_("Earlier error (resolved, polls went fine since): {when} {error}").format(
            when=local(last_error[1], tz), error=last_error[0]))
    elif last_error:
        lines.append(_("Last error: {when} {error}").format(when=local(last_error[1], tz),
                                                           error=last_error[0]))
    return "\n".join(lines)


def format_review(rows: list[dict[str, Any]], tz: dt.tzinfo) -> str:
    if not rows:
        return _("Nothing waits for review.")
    lines = [ngettext("{n} mail waits for a human (flagged in the inbox):",
                      "{n} mails wait for a human (flagged in the inbox):",
                      len(rows)).format(n=len(rows))]
    for row in rows:
        number = row.get("id", "?")
        when = dt.datetime.fromisoformat(row["received_at"]).astimezone(tz)
        answered = _(" (registered and answered)") if row["action"] != "review" else ""
        lines += ["", f"[{number}] {when:%d.%m.%Y %H:%M}  "
                      f"{row['sender'] or _('(unreadable sender)')}",
                  "    " + _("Subject: {subject}").format(subject=row["subject"] or "–"),
                  "    " + _("Reason:  {reason}").format(reason=row["reason"] or "–")
                  + answered]
        lines += [f"    | {line}" for line in (row["excerpt"] or "").split("\n") if line]
    return "\n".join(lines)


LIST_COLUMNS = ("email", "name", "organisation", "status", "registered_at")
CSV_COLUMNS = ("email", "name", "organisation", "status", "registered_at", "updated_at",
               "registered_by", "language")


def column_title(column: str) -> str:
    """A column's heading for the organiser (the Excel export, the table of `list`)."""
    titles = {"email": _("email"), "name": _("name"), "organisation": _("organisation"),
              "status": _("status"), "registered_at": _("registered_at"),
              "updated_at": _("updated_at"), "registered_by": _("registered_by"),
              "language": _("language")}
    return titles.get(column, column)


def csv_header(columns: tuple[str, ...] = CSV_COLUMNS) -> tuple[str, ...]:
    return tuple(column_title(c) for c in columns)


def status_word(status: str) -> str:
    """confirmed / waitlisted / cancelled in the organiser's words."""
    words = {"confirmed": _("confirmed"), "waitlisted": _("waitlisted"),
             "cancelled": _("cancelled")}
    return words.get(status, status)


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...], tz: dt.tzinfo) -> str:
    """An aligned text table (umlauts count as one character, as they show)."""
    cells = [[_cell(row.get(c), c, tz) for c in columns] for row in rows]
    titles = [column_title(c) for c in columns]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(titles)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(titles, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def _cell(value: Any, column: str, tz: dt.tzinfo) -> str:
    if value is None:
        return ""
    if column.endswith("_at"):
        return f"{dt.datetime.fromisoformat(value).astimezone(tz):%d.%m.%Y %H:%M}"
    if column == "status":
        return status_word(str(value))
    return str(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell as a spreadsheet must not run it (OWASP, CSV injection): text that starts
    like a formula (= + - @ tab CR) is prefixed with ', so Excel and LibreOffice show it
    as text instead of running ``=HYPERLINK(…)`` or ``=cmd|…``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], header: tuple[str, ...],
           bom: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return ("\ufeff" if bom else "") + out.getvalue()


def to_excel_csv(rows: list[dict[str, Any]], columns: tuple[str, ...],
                 header: tuple[str, ...], tz: dt.tzinfo) -> str:
    """CSV as German Excel opens it by double-click: ``;`` between fields, a BOM (so
    umlauts show), times local like ``31.05.2027 10:00``; cells through csv_cell, so no
    name from a stranger's mail runs as a formula."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(_cell(row.get(c), c, tz)) for c in columns])
    return "\ufeff" + out.getvalue()





def split_first_last(name: str) -> tuple[str, str]:
    """ "Jan van der Berg" → ("Jan", "van der Berg"): what Zoom wants as first/last name."""
    words = name.split()
    if len(words) < 2:
        return name, ""
    i = len(words) - 1
    while i > 1 and words[i - 1].lower() in PARTICLES:
        i -= 1
    return " ".join(words[:i]), " ".join(words[i:])


def zoom_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Confirmed participants in the columns of Zoom's registrant import."""
    out = []
    for row in rows:
        first, last = split_first_last(row.get("name") or "")
        out.append({"email": row["email"], "first": first, "last": last,
                    "org": row.get("organisation") or ""})
    return out


def mail_date(parsed: ParsedMail) -> dt.datetime | None:
    """When a mail says it was written (its Date header), if readable and with a zone."""
    try:
        found = email.utils.parsedate_to_datetime(parsed.headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return found if found and found.tzinfo else None


# internal names as the organiser reads them in `preview`
KIND_WORDS = {
    "confirmation": N_("confirmation"), "waitlisted": N_("waitlist notice"),
    "duplicate": N_("'already registered' notice"), "cancellation": N_("cancellation"),
    "not_registered": N_("'not registered' notice"),
    "closed": N_("'registration closed' notice"),
    "third_party": N_("note to a person registered by someone else"),
    "on_behalf": N_("note to who registered others"), "reminder": N_("reminder"),
    "update": N_("changed-details mail"), "event_cancelled": N_("event-cancelled mail"),
    "address_changed": N_("new-address note"), "digest": N_("daily digest"),
    "alert": N_("alert to the organiser"),
    # intents
    "register": N_("register"), "cancel": N_("cancel"), "question": N_("question"),
    "thanks": N_("thanks"), "auto": N_("automatic mail"), "unknown": N_("unclear"),
}


def kind_word(value: str) -> str:
    """An internal name in German words; in English the name itself (as documented)."""
    if language() == "en" or value not in KIND_WORDS:
        return value
    return _(KIND_WORDS[value])


def preview_text(own: str, parsed: ParsedMail, reading: Reading,
                 arrived: dt.datetime | None = None, decision: Decision | None = None,
                 replies: Sequence[Reply] = ()) -> str:
    """How mailbot reads a mail and what it would answer (``decision`` None: not ours)."""
    lines = [_("From:          {sender}").format(sender=parsed.sender or _("(unreadable)"))
             + (f" ({parsed.sender_name})" if parsed.sender_name else ""),
             _("Subject:       {subject}").format(subject=parsed.subject),
             _("Language:      {language}").format(language=parsed.language or "–"),
             _("Intent:        {intent}").format(intent=kind_word(reading.intent.value))
             + (_(" (also asks something)") if reading.asks else "")]
    if decision is None or arrived is None:
        lines.append(_("Outcome:       not addressed to {own}: left alone").format(own=own))
        return "\n".join(lines)
    lines.append(_("Arrived:       {when} (its Date header)").format(
        when=f"{arrived:%d.%m.%Y %H:%M}"))
    lines += [_("Outcome:       {action}").format(action=outcome_words(decision.action.value))
              + (_(" – answered and left flagged for you") if decision.attention else ""),
              _("Reason:        {reason}").format(reason=decision.reason or "–"),
              _("Participants:")]
    lines += [f"  {p.name or _('(no name)')} <{p.email}>"
              + (f" – {p.organisation}" if p.organisation else "") for p in parsed.participants]
    if not parsed.participants:
        lines.append("  " + _("(none)"))
    for number, reply in enumerate(replies, 1):
        msg = email.message_from_bytes(reply.body, policy=email.policy.default)
        calendar = any(p.get_content_type() == "text/calendar" for p in msg.walk())
        text = msg.get_body(("plain",))
        lines += ["", _("Reply {number} of {total}: {kind} to {recipient}").format(
                      number=number, total=len(replies), kind=kind_word(reply.kind.value),
                      recipient=reply.recipient)
                  + (_(" (with calendar entry)") if calendar else ""),
                  _("Subject: {subject}").format(subject=reply.subject), "-" * 60,
                  text.get_content().rstrip() if text else _("(no plain text)")]
    if not replies:
        lines += ["", _("No reply.")]
    return "\n".join(lines)


# what became of one mail, as `preview --inbox` says it (the one home of these words;
# MAIL_WORDS below counts them for a run's summary)
OUTCOME_WORDS = {
    Action.REGISTER: N_("register"), Action.CANCEL: N_("cancel"),
    Action.IGNORE: N_("no reply (automatic mail or too old)"),
    Action.REVIEW: N_("left flagged for you (review)"), Action.NOOP: N_("no reply needed"),
    FOREIGN: N_("not addressed to us: left alone"), ALREADY: N_("handled before: only moved"),
    WAITING: N_("handled before: still waiting for review"),
    ATTENTION: N_("answered, and left flagged for you (it also asks something)"),
}


def outcome_words(outcome: str) -> str:
    return _(OUTCOME_WORDS[outcome]) if outcome in OUTCOME_WORDS else outcome


_MAIL_WORDS = (
    (Action.REGISTER, (N_("registration"), N_("registrations"))),
    (Action.CANCEL, (N_("cancellation"), N_("cancellations"))),
    (Action.IGNORE, N_("automatic (ignored)")),
    (Action.REVIEW, N_("for review (flagged in the inbox)")),
    (Action.NOOP, N_("needing no reply")), (FOREIGN, N_("not for us (left alone)")),
    (ATTENTION, N_("answered but flagged (they also ask something)")),
    (ALREADY, N_("handled before")), (WAITING, N_("still waiting for review")),
)


_REPLY_WORDS = {
    "confirmation": (N_("confirmation"), N_("confirmations")),
    "waitlisted": (N_("waitlist notice"), N_("waitlist notices")),
    "duplicate": (N_("'already registered' notice"), N_("'already registered' notices")),
    "cancellation": (N_("cancellation"), N_("cancellations")),
    "not_registered": (N_("'not registered' notice"), N_("'not registered' notices")),
    "closed": (N_("'registration closed' notice"), N_("'registration closed' notices")),
    "third_party": (N_("note to people registered by someone else"),
                    N_("notes to people registered by someone else")),
    "on_behalf": (N_("note to who registered them"), N_("notes to who registered them")),
    "reminder": (N_("reminder"), N_("reminders")),
    "update": (N_("changed-details mail"), N_("changed-details mails")),
    "event_cancelled": (N_("event-cancelled mail"), N_("event-cancelled mails")),
    "address_changed": (N_("new-address note"), N_("new-address notes")),
}


def _plural(n: int, word: str | tuple[str, str]) -> str:
    if isinstance(word, str):
        return f"{n} {_(word)}"
    return f"{n} {_(word[0]) if n == 1 else _(word[1])}"


def describe(summary: Summary) -> str:
    """One line: what a run did, leaving out what did not happen."""
    if not summary.read and not summary.sent and not summary.send_errors \
            and not summary.refused and not summary.held:
        return _("No new mail.")
    m = summary.mails
    parts = [_plural(m[key], word) for key, word in _MAIL_WORDS if m[key]]
    text = _plural(summary.read, (N_("mail read"), N_("mails read"))) + (
        ": " + ", ".join(parts) if parts else "") + "."
    if summary.replies:
        kinds = ", ".join(_plural(n, _REPLY_WORDS.get(kind, (kind, kind)))
                          for kind, n in sorted(summary.replies.items()))
        text += " " + _("New replies: {kinds}.").format(kinds=kinds)
    text += " " + ngettext("{n} reply delivered.", "{n} replies delivered.",
                           summary.sent).format(n=summary.sent)
    if summary.send_errors:
        text += " " + _("{n} could not be sent yet (they stay queued).").format(
            n=summary.send_errors)
    if summary.held:
        text += " " + _("{n} held back by the sending limits ([smtp] max_per_…); they go out "
                        "as the limits allow.").format(n=summary.held)
    if summary.refused:
        text += " " + _("{n} refused for good by the receiving server (see `mailbot "
                        "status`).").format(n=summary.refused)
    return text
