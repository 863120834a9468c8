"""The use cases: what mailbot does with a mail, and around each round of the inbox.

One mail's path: parse → is it ours? → already handled? → loop guard → classify → decide →
compose → record (the mail's rows together). The scheduled jobs (promote, remind, announce,
purge, digest) are in jobs.py, sending and the Sent copies in sending.py; the loop that
reads the inbox in batches, moves and flags is loop.py.
A mail that was recorded but not yet moved (a crash, a lost connection) is recognised by
its key on the next run and only moved: never answered twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from mailbot.config import Config
from mailbot.core.models import (
    ATTENTION,
    Action,
    InboundMail,
    OrganiserKind,
    ParsedMail,
    Participant,
    Reading,
    Reply,
    ReplyKind,
    Request,
    Status,
    Summary,
)
from mailbot.core.text import ADDR_RE, unquoted
from mailbot.mail.folder import Baseline
from mailbot.mail.inbox import Inbox, LeftAlone
from mailbot.mail.smtp import Transport
from mailbot.reading import bounce
from mailbot.reading.classify import read
from mailbot.reading.followup import completion, names_spoken_of
from mailbot.reading.keys import other_mail_key
from mailbot.reading.parse import content_key, parse_mail, valid_message_id
from mailbot.replies.compose import ComposeError, Composer
from mailbot.replies.report import mail_date, preview_text
from mailbot.rules import guard, policy, thread
from mailbot.rules.budget import ASKED, HOUR, asked_key, budget_addresses
from mailbot.rules.policy import (
    DAY,
    Decision,
    Plan,
    ReplySpec,
    Situation,
    as_request,
    event_version,
)
from mailbot.rules.triage import (
    BouncedReply,
    before_reading,
    cannot_compose,
    copy_of_handled,
    decide_bounce,
)
from mailbot.service.digest import queue_digest
from mailbot.service.jobs import Jobs
from mailbot.service.sending import Sending
from mailbot.store import DATABASE_ERRORS, Store, iso, now_utc
from mailbot.store.messages import note_row

log = logging.getLogger(__name__)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def excerpt(text: str, lines: int = 8, limit: int = 600) -> str:
    """The first lines of what a person wrote, for the review list."""
    kept = [line for line in text.split("\n") if line.strip()][:lines]
    return "\n".join(kept)[:limit]


class Processor:
    """The use cases for one configuration: build once; the loop (daemon.run_round) hands
    it each mail and calls :meth:`begin_round` and :meth:`end_round` around them."""

    def __init__(self, config: Config, store: Store, transport: Transport | None):
        self.config = config
        self.store = store
        self.composer = Composer(config)
        self.own = config.contact.address
        self.version = event_version(config.event, config.zoom)
        self.sending = Sending(config, store, transport)
        self.jobs = Jobs(config, store, self.composer, self.version, self.compose,
                         self.new_uid)
        store.use_time_zone(config.event.timezone, now_utc())  # the views show local time
        self.settled: list[str] = []  # waiting mails a later one settled: out of the inbox

    # -- one mail ---------------------------------------------------------------------

    def handle(self, mail: InboundMail, summary: Summary) -> str:
        """Record what to do with one mail; returns its action, FOREIGN, ALREADY or WAITING."""
        too_large = (f"zu groß ({mail.oversize / 1e6:.1f} MB), nicht gelesen"
                     if mail.oversize else None)
        try:
            parsed = parse_mail(mail.raw, self.own, too_large)
        except Exception as exc:  # noqa: BLE001 - any input must end as a visible outcome
            log.warning("cannot parse mail %s: %s", mail.ref, type(exc).__name__)
            return self._for_human(mail, f"Mail nicht lesbar ({type(exc).__name__})")
        for_us = self.own in parsed.recipients
        early = before_reading(for_us, for_us and self.our_digest(parsed))
        if early is not None:
            return early
        with self.store.immediate():  # nobody else writes between our reads and our rows
            original, parsed = parsed, self.own_key(parsed)
            early = before_reading(True, False,
                                   self.store.handled(parsed.key, parsed.fingerprint))
            if early is not None:
                return early
            try:
                robot = guard.check(parsed, self.own)  # once per mail: bounce and request
                decision = self.bounced(parsed, mail) if robot else None
                request = self._request(parsed, mail.received_at, None, robot)
                request, follows = self.followed(parsed, request)
                plan = Plan(decision) if decision is not None else self.plan(request)
                if parsed.key != original.key and parsed.sender is not None and \
                        self.store.sender_of(original.key) == parsed.sender:
                    plan = copy_of_handled(plan)
                replies = self.compose(plan.replies, now_utc())
            except ComposeError as exc:
                log.error("cannot compose reply to %s: %s", parsed.key, exc)
                plan = Plan(cannot_compose(str(exc)))
                replies = []
            decision = plan.decision
            row = self._message_row(parsed, mail, plan)
            row["waits_for"] = thread.waits_for(decision, request, self._names(parsed))
            self.store.record(row, list(plan.registrations), replies, now_utc(),
                              notices=list(plan.notices))
            if follows and decision.action is Action.REGISTER:
                self.store.resolve(follows, Action.REVIEW.value, "erledigt: die fehlende "
                                   "Adresse kam mit einer späteren Mail", now_utc())
                self.settled.append(follows)
        for reply in replies:
            summary.replies[reply.kind.value] += 1
        log.info("%s: %s%s", parsed.key, decision.action.value,  # no address: the key says
                 f" ({ADDR_RE.sub('…', unquoted(decision.reason))})" if decision.reason else "")
        if decision.attention:
            return ATTENTION
        return decision.action.value

    def own_key(self, parsed: ParsedMail) -> ParsedMail:
        """The mail under a key of its own when an earlier, different mail (another
        fingerprint) was recorded under its Message-ID: a form mailer that gives every mail
        one ID, a list's altered copy. The same mail delivered again keeps its key."""
        if not self.store.other_content(parsed.key, parsed.fingerprint):
            return parsed
        log.warning("mail %s: its Message-ID was recorded for another mail; read as a new "
                    "one", parsed.key)
        return replace(parsed, key=other_mail_key(parsed.key, parsed.fingerprint))

    def our_digest(self, parsed: ParsedMail) -> bool:
        """Our daily digest, come back to the contact address ([digest] to): the organiser's
        to read in the inbox, left as it is — never answered, never swept into Processed."""
        return (parsed.sender == self.own.lower() and parsed.message_id is not None
                and self.store.is_ours(parsed.message_id, OrganiserKind.DIGEST.value))

    def bounced(self, parsed: ParsedMail, mail: InboundMail) -> Decision | None:
        """A bounce of one of our replies (rules.triage.decide_bounce says what it means);
        None for any other mail. Asked only for a mail the robot rule (guard.check) stops:
        a bounce is a robot's."""
        found = bounce.read(mail.raw)
        if found is None:
            return None
        row = self.store.bounced_reply(found.original_ids, found.failed)
        reply = None
        if row is not None:
            reg = self.store.registrations([row["recipient"]]).get(row["recipient"])
            waits = reg is not None and reg.status is Status.CONFIRMED and \
                self.store.first_waitlisted() is not None
            reply = BouncedReply(row["id"], row["recipient"], row["kind"], waits)
        verdict = decide_bounce(
            found, reply, self.store.replied_to(found.failed) if reply is None else [],
            self.store.quoted_replies(found.original_ids) if reply is None else [])
        if verdict.mark is not None:
            self.store.mark_bounced(verdict.mark.id, verdict.mark.recipient, found.status,
                                    now_utc())
            log.warning("reply %d bounced (%s)", verdict.mark.id, found.status or "-")
        elif verdict.decision is not None:
            log.warning("a bounce quotes no reply of ours to the address it reports: nothing "
                        "changed, left for review")
        return verdict.decision

    def followed(self, parsed: ParsedMail, request: Request) -> tuple[Request, str | None]:
        """The request read with the mail it follows (same sender, or In-Reply-To /
        References to a mail or a reply of ours): a later mail that gives the address a
        waiting mail lacked registers that person. Returns the waiting mail's key, if so."""
        if parsed.sender is None or request.robot:
            return request, None
        refs = [ref for ref in _MESSAGE_ID.findall(" ".join(
            parsed.headers.get(h, "") for h in ("in-reply-to", "references")))
            if valid_message_id(ref)]  # a broken byte there is no key of ours
        for key, names, writer in self.store.waiting_for_people(parsed.sender, refs):
            if not thread.may_complete(parsed.sender, writer):
                continue
            found = completion(parsed.text, names.split("; "), parsed.sender)
            done = found and thread.completed(request, Participant(
                found[0], found[1], parsed.participants[0].organisation
                if parsed.participants else ""), found[2])
            if done:
                return done, key
        return request, None

    def _names(self, parsed: ParsedMail) -> list[str]:
        """The people a mail speaks of by name, the organiser greeted aside."""
        ours = set(self.config.contact.name.split())
        return [n for s in parsed.text.split("\n") for n in names_spoken_of(s)
                if n.split()[-1] not in ours]

    def situation(self, people: tuple[Participant, ...], received_at: dt.datetime,
                  now: dt.datetime, **extra: Any) -> tuple[Situation, dict]:
        """What decide() must know about these people now, and their current rows (the
        first on the waitlist included, who may move up)."""
        existing = self.store.registrations(p.email for p in people)
        head = self.store.first_waitlisted()
        counted = self.config.event.capacity is not None  # only a capacity needs the count
        limits = {"max_participants": self.config.limits.max_participants, **extra}
        situation = Situation(
            current={e: r.status for e, r in existing.items()},
            confirmed_count=self.store.places_taken() if counted else 0,  # held: taken
            received_at=received_at, now=now,
            max_age=self.config.daemon.max_age, waitlist_head=head,
            others_get_details=self.config.limits.others_get_details, **limits)
        if head is not None:
            existing.setdefault(head.email, head)
        return situation, existing

    def request(self, parsed: ParsedMail, arrival: dt.datetime,
                reading: Reading | None = None) -> Request:
        """What a mail asks, read once (classify), with the loop guard's and the sender
        check's verdicts."""
        return self._request(parsed, arrival, reading, guard.check(parsed, self.own))

    def _request(self, parsed: ParsedMail, arrival: dt.datetime, reading: Reading | None,
                 robot: str | None) -> Request:
        """:meth:`request` with the loop guard's verdict already known (``robot``)."""
        authserv = self.config.imap.authserv_id if self.config.imap else None
        return as_request(parsed, reading or read(parsed, self.config.event), arrival,
                          robot=robot, suspicious=guard.suspicious(parsed, authserv))

    def plan(self, request: Request, budget: bool = True, **extra: Any) -> Plan:
        """Decision, rows and replies to compose for one request (nothing is written). The
        same for a mail and an organiser's change (``budget=False``: no abuse budget)."""
        now = now_utc()
        situation, existing = self.situation(request.people, request.arrival, now, **extra)
        usage = self.usage(request, budget_addresses(request, situation), now) if budget \
            else None
        return policy.plan(request, situation, self.config.event, existing, self.version,
                           self.new_uid, usage, self.config.limits)

    def usage(self, request: Request, addresses: list[str], now: dt.datetime) -> guard.Usage:
        """What the abuse budgets have used so far, for these addresses."""
        if not addresses:
            return guard.Usage()
        per_address, per_domain = self.store.replies_since(now - DAY, addresses)
        by_sender = (self.store.count_notices(asked_key(request.sender), now - DAY)
                     if request.sender else 0)
        return guard.Usage(
            per_address, per_domain, others_by_sender=by_sender,
            others_overall=self.store.count_notices(ASKED, now - HOUR),
            others_today=self.store.count_notices(ASKED, now - DAY),
            new_per_key=self.store.new_registrations(
                (guard.burst_key(a) for a in addresses), request.arrival - HOUR))

    def compose(self, specs: Iterable[ReplySpec], now: dt.datetime) -> list[Reply]:
        """The replies of a plan; raises ComposeError when a template cannot be rendered."""
        return [self.composer.reply(s.kind, s.person, s.registration, s.in_reply_to, now,
                                    lang=s.lang, others=list(s.others), by=s.by,
                                    moved_up=s.moved_up) for s in specs]

    def preview(self, raw: bytes) -> str:
        """How mailbot reads a mail and what it would answer, as if it came at its Date —
        on this Processor's store, which should be an in-memory one (nothing is sent)."""
        parsed = parse_mail(raw, self.own)
        reading = read(parsed, self.config.event)
        if self.own not in parsed.recipients:
            return preview_text(self.own, parsed, reading)
        arrived = mail_date(parsed) or now_utc()
        plan = self.plan(self.request(parsed, arrived, reading), age_applies=False)
        return preview_text(self.own, parsed, reading, arrived, plan.decision,
                            self.compose(plan.replies, now_utc()))

    def left_alone(self) -> LeftAlone:
        """The mail a former run left in the IMAP folder (flagged, not ours) — for this
        folder and contact address only: with another address other mail is ours."""
        state = self.store.get_state(self._left_key())
        return LeftAlone.from_text(state[0] if state else None)

    def remember(self, left: LeftAlone | None) -> None:
        if left is None:
            return
        text, key = left.to_text(), self._left_key()
        state = self.store.get_state(key)
        if (state[0] if state else ":") != text:
            self.store.set_state(key, text, now_utc(), limit=None)

    def use_baseline(self, inbox: Inbox) -> None:
        """The inbox leaves alone the mail from before mailbot's first start in it (older
        than [daemon] max_age then): stored at that start (state ``baseline …``) as the
        time and, for IMAP, UIDVALIDITY and UIDNEXT. A database that handled mail before
        there was a baseline takes the arrival of its earliest mail as the start."""
        key = f"baseline {self._left_key().partition(' ')[2]}"
        state = self.store.get_state(key)
        if state is None:
            validity, uid_next = inbox.start_mark()
            started = self.store.earliest_mail() or now_utc()
            state = (Baseline(started, self.config.daemon.max_age, validity,
                              uid_next).to_text(), "")
            self.store.set_state(key, state[0], now_utc())
        inbox.baseline = Baseline.from_text(state[0], self.config.daemon.max_age)

    def _left_key(self) -> str:
        imap = self.config.imap
        where = f"{imap.username}@{imap.host}/{imap.folder}" if imap else "maildir"
        return f"left_alone {where} for {self.own}"

    def new_uid(self) -> str:
        return f"{uuid.uuid4()}@{self.config.contact.domain}"

    def _message_row(self, parsed: ParsedMail, mail: InboundMail, plan: Plan) -> dict:
        decision, for_human = plan.decision, plan.for_human
        return {"message_id": parsed.key, "sender": parsed.sender, "subject": parsed.subject,
                "received_at": iso(mail.received_at), "action": decision.action.value,
                "reason": decision.reason or None, "needs_attention": int(decision.attention),
                "excerpt": excerpt(parsed.text) if for_human else None,
                "fingerprint": parsed.fingerprint or None}

    def _for_human(self, mail: InboundMail, reason: str) -> str:
        """Recorded for review under the key of its bytes (no Message-ID needed)."""
        key = content_key(mail.raw or b"")
        if self.store.handled(key) is None:
            self.store.record(note_row(key, Action.REVIEW, reason, mail.received_at), [], [],
                              now_utc())
        return Action.REVIEW.value

    def handle_safely(self, mail: InboundMail, summary: Summary) -> str:
        """:meth:`handle`, with a mistake of mailbot's own (not of the mail: that one is
        "nicht lesbar") recorded as an internal error, the traceback in the log, and the
        mail left for a human — one such mail must not stop the batch."""
        try:
            return self.handle(mail, summary)
        except DATABASE_ERRORS:
            raise  # the database, not the mail: stop the batch, nothing is moved, retry later
        except Exception as exc:  # noqa: BLE001 - one bad mail must not stop the batch
            log.exception("internal error while handling mail %s", mail.ref)
            return self._for_human(mail, f"Interner Fehler von mailbot ({type(exc).__name__}) "
                                         f"– bitte lesen; Einzelheiten im Log")

    # -- around each round of the inbox -----------------------------------------------

    def begin_round(self, summary: Summary, stop: threading.Event | None
                    ) -> tuple[str, str] | None:
        """Before the inbox is read: free places filled, replies left queued by an earlier
        run sent. Returns the last error as it was (see :meth:`end_round`)."""
        self.store.check_file()
        self.jobs.remember_details()
        error_before = self.store.get_state("last_error")
        self.jobs.fill_places()
        self.sending.flush(summary, stop)  # replies left queued by an earlier run go first
        return error_before

    def end_round(self, inbox: Inbox, summary: Summary, stop: threading.Event | None,
                  error_before: tuple[str, str] | None) -> None:
        """After the inbox was read: reminders, the digest, the retention check, the
        organiser's alert, the Sent copies; an older error marked as resolved."""
        reminders = self.jobs.remind()
        if reminders:
            summary.replies[ReplyKind.REMINDER.value] += reminders
            self.sending.flush(summary, stop)
        if self.config.digest.to and queue_digest(self.config, self.store, now_utc()):
            self.sending.flush(summary, stop)
        self.jobs.purge_if_due(now_utc(), inbox)
        self.store.set_state("last_poll", inbox.description, now_utc())
        self.sending.deliver_alerts(inbox)
        if stop is None or not stop.is_set():  # after a stop: the next round saves them
            self.sending.save_copies(inbox)
        if not summary.send_errors and error_before is not None and \
                self.store.get_state("last_error") == error_before:  # `status`: it is old
            self.store.set_state("last_clean_poll", error_before[1], now_utc())
