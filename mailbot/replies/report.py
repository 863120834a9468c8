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
        return "never"
    return f"{dt.datetime.fromisoformat(value).astimezone(tz):%d.%m.%Y %H:%M:%S}"


def format_status(config: Config, facts: StatusFacts) -> str:
    """The overview; refused logins are shown first as NOT WORKING."""
    registrations, review, outbox, failed = (facts.registrations, facts.review, facts.outbox,
                                             facts.failed)
    last_poll, last_error, clean_poll = facts.last_poll, facts.last_error, facts.clean_poll
    burst, refused, budget = facts.burst, facts.refused, facts.budget
    undeliverable = facts.undeliverable
    event, tz = config.event, config.event.tz
    head = ["State: working"] if not refused else ["State: NOT WORKING"] + [
        f"  {part.upper()} refuses the login since {local(since, tz)}: {error}"
        for part, error, since in refused]
    if facts.sent_copy:
        if not refused:
            head = ["State: working, but the copies of replies in Sent FAIL"]
        head.append(f"  no copy in the Sent folder since {local(facts.sent_copy[1], tz)}: "
                    f"{facts.sent_copy[0]} (the replies themselves go out)")
    confirmed = registrations.get("confirmed", 0)
    places = (f" of {event.capacity} places ({max(event.capacity - confirmed, 0)} free)"
              if event.capacity else " (no capacity limit)")
    lines = head + [
        event.title,
        f"  {event.start:%d.%m.%Y %H:%M}–{event.end:%H:%M} ({event.timezone}), "
        f"registration until {event.deadline:%d.%m.%Y %H:%M}",
        f"Registrations: {confirmed} confirmed{places}, "
        f"{registrations.get('waitlisted', 0)} waitlisted, "
        f"{registrations.get('cancelled', 0)} cancelled",
        f"Waiting for a human: {review}" + (" (see: mailbot review)" if review else ""),
        *([f"  of these {burst} held as a burst of new registrations from one domain "
           f"([limits] max_new_per_domain_per_hour = "
           f"{config.limits.max_new_per_domain_per_hour}): forged senders?"] if burst else []),
        f"Outbox: {outbox.get('queued', 0) + outbox.get('sending', 0)} queued, "
        f"{outbox.get('sent', 0)} sent, {outbox.get('failed', 0)} failed",
    ]
    for row in failed:
        lines.append(f"  failed: {row['kind']} to {row['recipient']}: {row['last_error']}")
    if undeliverable:
        lines.append(f"Undeliverable addresses: {undeliverable} (their replies bounced; no "
                     f"reminders go there; see: mailbot review)")
    if budget is not None:
        lines.append(f"Sending budget: {budget[0]} of {budget[1]} replies left for the next "
                     f"24 hours ([smtp] max_per_day)")
    lines.append(f"Last poll: {local(last_poll[1] if last_poll else None, tz)}")
    if last_error and clean_poll and clean_poll[0] == last_error[1]:  # a clean run after it
        lines.append(f"Earlier error (resolved, polls went fine since): "
                     f"{local(last_error[1], tz)} {last_error[0]}")
    elif last_error:
        lines.append(f"Last error: {local(last_error[1], tz)} {last_error[0]}")
    return "\n".join(lines)


def format_review(rows: list[dict[str, Any]], tz: dt.tzinfo) -> str:
    if not rows:
        return "Nothing waits for review."
    lines = [f"{len(rows)} {'mail waits' if len(rows) == 1 else 'mails wait'} for a human "
             f"(flagged in the inbox):"]
    for row in rows:
        number = row.get("id", "?")
        when = dt.datetime.fromisoformat(row["received_at"]).astimezone(tz)
        answered = " (registered and answered)" if row["action"] != "review" else ""
        lines += ["", f"[{number}] {when:%d.%m.%Y %H:%M}  "
                      f"{row['sender'] or '(unreadable sender)'}",
                  f"    Subject: {row['subject'] or '–'}",
                  f"    Reason:  {row['reason'] or '–'}{answered}"]
        lines += [f"    | {line}" for line in (row["excerpt"] or "").split("\n") if line]
    return "\n".join(lines)


LIST_COLUMNS = ("email", "name", "organisation", "status", "registered_at")
CSV_COLUMNS = ("email", "name", "organisation", "status", "registered_at", "updated_at",
               "registered_by", "language")


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...], tz: dt.tzinfo) -> str:
    """An aligned text table (umlauts count as one character, as they show)."""
    cells = [[_cell(row.get(c), c, tz) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def _cell(value: Any, column: str, tz: dt.tzinfo) -> str:
    if value is None:
        return ""
    if column.endswith("_at"):
        return f"{dt.datetime.fromisoformat(value).astimezone(tz):%d.%m.%Y %H:%M}"
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


def preview_text(own: str, parsed: ParsedMail, reading: Reading,
                 arrived: dt.datetime | None = None, decision: Decision | None = None,
                 replies: Sequence[Reply] = ()) -> str:
    """How mailbot reads a mail and what it would answer (``decision`` None: not ours)."""
    lines = [f"From:          {parsed.sender or '(unreadable)'}"
             + (f" ({parsed.sender_name})" if parsed.sender_name else ""),
             f"Subject:       {parsed.subject}",
             f"Language:      {parsed.language or '–'}",
             f"Intent:        {reading.intent.value}" + (" (also asks something)"
                                                           if reading.asks else "")]
    if decision is None or arrived is None:
        lines.append(f"Outcome:       not addressed to {own}: left alone")
        return "\n".join(lines)
    lines.append(f"Arrived:       {arrived:%d.%m.%Y %H:%M} (its Date header)")
    lines += [f"Outcome:       {decision.action.value}"
              + (" – answered and left flagged for you" if decision.attention else ""),
              f"Reason:        {decision.reason or '–'}", "Participants:"]
    lines += [f"  {p.name or '(no name)'} <{p.email}>"
              + (f" – {p.organisation}" if p.organisation else "") for p in parsed.participants]
    if not parsed.participants:
        lines.append("  (none)")
    for number, reply in enumerate(replies, 1):
        msg = email.message_from_bytes(reply.body, policy=email.policy.default)
        calendar = any(p.get_content_type() == "text/calendar" for p in msg.walk())
        text = msg.get_body(("plain",))
        lines += ["", f"Reply {number} of {len(replies)}: {reply.kind.value} to "
                      f"{reply.recipient}" + (" (with calendar entry)" if calendar else ""),
                  f"Subject: {reply.subject}", "-" * 60,
                  text.get_content().rstrip() if text else "(no plain text)"]
    if not replies:
        lines += ["", "No reply."]
    return "\n".join(lines)


# what became of one mail, as `preview --inbox` says it (the one home of these words;
# MAIL_WORDS below counts them for a run's summary)
OUTCOME_WORDS = {
    Action.REGISTER: "register", Action.CANCEL: "cancel",
    Action.IGNORE: "no reply (automatic mail or too old)",
    Action.REVIEW: "left flagged for you (review)", Action.NOOP: "no reply needed",
    FOREIGN: "not addressed to us: left alone", ALREADY: "handled before: only moved",
    WAITING: "handled before: still waiting for review",
    ATTENTION: "answered, and left flagged for you (it also asks something)",
}


def outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, outcome)


_MAIL_WORDS = (
    (Action.REGISTER, "registration{s}"), (Action.CANCEL, "cancellation{s}"),
    (Action.IGNORE, "automatic (ignored)"), (Action.REVIEW, "for review (flagged in the inbox)"),
    (Action.NOOP, "needing no reply"), (FOREIGN, "not for us (left alone)"),
    (ATTENTION, "answered but flagged (they also ask something)"),
    (ALREADY, "handled before"), (WAITING, "still waiting for review"),
)


_REPLY_WORDS = {
    "confirmation": "confirmation{s}", "waitlisted": "waitlist notice{s}",
    "duplicate": "'already registered' notice{s}", "cancellation": "cancellation{s}",
    "not_registered": "'not registered' notice{s}", "closed": "'registration closed' notice{s}",
    "third_party": "note{s} to people registered by someone else",
    "on_behalf": "note{s} to who registered them", "reminder": "reminder{s}",
    "update": "changed-details mail{s}", "event_cancelled": "event-cancelled mail{s}",
    "address_changed": "new-address note{s}",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word.format(s='' if n == 1 else 's')}"


def describe(summary: Summary) -> str:
    """One line: what a run did, leaving out what did not happen."""
    if not summary.read and not summary.sent and not summary.send_errors \
            and not summary.refused and not summary.held:
        return "No new mail."
    m = summary.mails
    parts = [_plural(m[key], word) for key, word in _MAIL_WORDS if m[key]]
    text = _plural(summary.read, "mail{s} read") + (": " + ", ".join(parts) if parts else "") + "."
    if summary.replies:
        kinds = ", ".join(_plural(n, _REPLY_WORDS.get(kind, kind))
                          for kind, n in sorted(summary.replies.items()))
        text += f" New replies: {kinds}."
    text += f" {summary.sent} {'reply' if summary.sent == 1 else 'replies'} delivered."
    if summary.send_errors:
        text += f" {summary.send_errors} could not be sent yet (they stay queued)."
    if summary.held:
        text += (f" {summary.held} held back by the sending limits ([smtp] max_per_…); "
                 f"they go out as the limits allow.")
    if summary.refused:
        text += (f" {summary.refused} refused for good by the receiving server (see "
                 f"`mailbot status`).")
    return text
