"""Health you cannot miss: a refused login (IMAP, SMTP or the OAuth2 token endpoint) is
kept in the ``state`` table until the same server takes mailbot again; ``mailbot status``
shows it and exits non-zero; the organiser gets one mail per refusal (nobody reads
journald): over SMTP when only IMAP refuses, into the inbox (flagged) when only SMTP
refuses, and when both refuse, it waits in the outbox until SMTP takes mailbot again.

The alert mail is recorded as a message for review under its own Message-ID, so when it
arrives in the inbox mailbot reads, it stays there, flagged, and is listed by `review`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from email.message import EmailMessage

from mailbot.config import Config
from mailbot.core.i18n import tr as _
from mailbot.core.i18n import translated
from mailbot.core.models import Action, OrganiserKind, Reply, StatusFacts
from mailbot.replies.report import format_status
from mailbot.rules import guard
from mailbot.rules.lifecycle import PURGE_REASONS
from mailbot.rules.rate import remaining_today
from mailbot.store import Store, iso

# the alert mail is German: the parts in its words
PARTS = {"imap": "IMAP (Mails lesen)", "smtp": "SMTP (Antworten verschicken)"}


ALERT = OrganiserKind.ALERT.value  # the outbox kind and notice key prefix of these mails


def _key(part: str) -> str:
    return f"refused:{part}"


def refused(store: Store, part: str, error: str, now: dt.datetime) -> bool:
    """Record that ``part`` refuses the login; True when it did not before (a new
    refusal: the organiser is told)."""
    before = store.get_state(_key(part))
    if before and before[0]:
        if before[0] != error:
            store.set_state(_key(part), error, dt.datetime.fromisoformat(before[1]))
        return False
    store.set_state(_key(part), error, now)
    return True


def working(store: Store, part: str, now: dt.datetime) -> None:
    """``part`` took the login: clear a refusal."""
    before = store.get_state(_key(part))
    if before and before[0]:
        store.set_state(_key(part), "", now)


COPY_KEY = "failing:sent_copy"  # the state row while copies into the Sent folder fail


def copy_failing(store: Store, error: str | None, now: dt.datetime) -> None:
    """Copies into the Sent folder fail (``error``) or work again (None): for `status`."""
    before = store.get_state(COPY_KEY)
    if error is None:
        if before and before[0]:
            store.set_state(COPY_KEY, "", now)
    elif not before or not before[0]:
        store.set_state(COPY_KEY, error, now)
    elif before[0] != error:
        store.set_state(COPY_KEY, error, dt.datetime.fromisoformat(before[1]))


def problems(store: Store) -> list[tuple[str, str, str]]:
    """(part, error, since) of every current refusal."""
    found = []
    for part in PARTS:
        state = store.get_state(_key(part))
        if state and state[0]:
            found.append((part, state[0], state[1]))
    return found


def alert(config: Config, part: str, error: str, since: str,
          now: dt.datetime) -> tuple[Reply, dict]:
    """The organiser's mail about a refused login and its ``messages`` row (review)."""
    contact = config.contact
    msg = EmailMessage()
    msg["From"] = email.utils.formataddr((f"mailbot ({contact.name})", contact.address))
    msg["To"] = email.utils.formataddr((contact.name, contact.address))
    msg["Subject"] = f"mailbot arbeitet nicht: {PARTS[part]} lehnt die Anmeldung ab"
    msg["Date"] = email.utils.format_datetime(now)
    message_id = email.utils.make_msgid("mailbot-alert", domain=contact.domain)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(
        f"Guten Tag,\n\n"
        f"mailbot kann seit {since[:16].replace('T', ' ')} UTC nicht mehr arbeiten: der "
        f"Server für {PARTS[part]} lehnt die Anmeldung ab. Solange das so ist, "
        + ("werden keine Anmeldungen gelesen und beantwortet.\n\n" if part == "imap" else
           "bleiben alle Antworten in der Warteschlange und werden nicht verschickt.\n\n")
        + f"Die Meldung des Servers und was zu tun ist:\n\n  {error}\n\n"
        f"Danach prüfen Sie es mit `mailbot check`; `mailbot status` zeigt, ob mailbot "
        f"wieder arbeitet. Es geht keine Anmeldung verloren: alles Liegengebliebene wird "
        f"danach erledigt.\n\n"
        f"Diese Nachricht kommt einmal je Störung. Sie bleibt markiert im Posteingang; "
        f"`mailbot dismiss` nimmt sie von der Liste.\n\n-- \nmailbot\n", cte="quoted-printable")
    body = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    from mailbot.reading.parse import (
        valid_message_id,  # alerts are rare; `status` need not load the parser
    )

    key = valid_message_id(message_id) or message_id
    reply = Reply(recipient=contact.address, subject=str(msg["Subject"]),
                  kind=OrganiserKind.ALERT,
                  message_id=message_id, in_reply_to=None, body=body)
    row = {"message_id": key, "sender": contact.address, "subject": str(msg["Subject"]),
           "received_at": iso(now), "action": Action.REVIEW.value,
           "reason": f"mailbot-Warnung: {PARTS[part]} lehnt die Anmeldung ab",
           "needs_attention": 0, "excerpt": error[:600]}
    return reply, row


def notice_key(part: str, since: str) -> str:
    """Once per refusal: the part and when it began."""
    return f"{ALERT}:{part}:{since}"


def note_refusal(store: Store, config: Config, part: str, error: str,
                 now: dt.datetime) -> bool:
    """Record that ``part`` refuses the login; True for a new refusal. When IMAP refuses,
    the organiser's alert is queued in the outbox at once (SMTP takes it now, or when it
    works again); when SMTP refuses, :func:`inbox_alert` has it for the inbox."""
    with store.immediate():
        if not refused(store, part, error, now):
            return False
        if part == "imap":
            state = store.get_state(_key(part))
            since = state[1] if state else iso(now) or ""
            given(store, config, "imap", since, *alert(config, part, error, since, now), now,
                  queue=True)
    return True


def inbox_alert(store: Store, config: Config,
                now: dt.datetime) -> tuple[str, Reply, dict] | None:
    """(since, mail, review row) of the alert about a refused SMTP login that is not in
    the inbox yet; after the APPEND, :func:`given` records it."""
    state = store.get_state(_key("smtp"))
    if not state or not state[0]:
        return None
    if (config.contact.address, notice_key("smtp", state[1])) in store.notices(ALERT):
        return None
    return (state[1], *alert(config, "smtp", state[0], state[1], now))


def given(store: Store, config: Config, part: str, since: str, reply: Reply, row: dict,
          now: dt.datetime, queue: bool = False) -> None:
    """Record an alert as given (its notice, and its review row so that it waits, flagged,
    when it arrives in the inbox); ``queue``: into the outbox, to be sent."""
    with store.immediate():
        if store.record_notice(config.contact.address, notice_key(part, since),
                               reply if queue else None, now) and \
                store.handled(row["message_id"]) is None:
            store.record(row, [], [], now)


def status_text(config: Config, store: Store) -> tuple[str, list[tuple[str, str, str]]]:
    """The overview `mailbot status` prints and the digest carries (one text for both),
    and the refused logins (non-empty: not working)."""
    refused = problems(store)
    text = format_status(config, StatusFacts(
        store.counts("registrations", "status"), len(store.for_review()),
        store.counts("outbox", "status"), store.failed_replies(),
        store.get_state("last_poll"), store.get_state("last_error"),
        store.get_state("last_clean_poll"), burst=store.held_for_review(guard.BURST),
        refused=tuple(refused), budget=_budget(config, store),
        undeliverable=store.undeliverable_count(),
        sent_copy=_copies_failing(store)))
    purge = store.get_state("purge")  # jobs.purge_if_due: announced or refused
    if purge and purge[0]:
        text += "\n" + _("Retention: {reason}").format(
            reason=translated(purge[0], PURGE_REASONS))
    return text, refused


def _copies_failing(store: Store) -> tuple[str, str] | None:
    state = store.get_state(COPY_KEY)
    return state if state and state[0] else None


def _budget(config: Config, store: Store) -> tuple[int, int] | None:
    """(left, max_per_day) of the 24-hour sending budget, if there is one."""
    most = config.smtp.max_per_day
    if most is None:
        return None
    now = dt.datetime.now(dt.UTC)
    sent = store.sent_since(now - dt.timedelta(days=1, seconds=2))
    return remaining_today(sent, now, most) or 0, most
