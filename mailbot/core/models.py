"""Plain values passed between the stages: inbox → parse → classify → decide → record → send."""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class Action(enum.StrEnum):
    """What was done with an inbound mail (the ``messages.action`` column)."""

    REGISTER = "register"
    CANCEL = "cancel"
    IGNORE = "ignore"  # auto-generated, list or bounce mail: recorded, never answered
    REVIEW = "review"  # a human must answer: left flagged in the inbox
    NOOP = "noop"  # e.g. a thank-you: recorded, no reply


class Intent(enum.StrEnum):
    """What the writer of a mail wants, as read from its text."""

    REGISTER = "register"
    CANCEL = "cancel"
    QUESTION = "question"
    THANKS = "thanks"
    AUTO = "auto"  # written by a machine although not marked as such (out of office)
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Reading:
    """The intent, and whether the mail also asks something a human must answer.

    ``sentence``: the sentence that decided the intent. ``note``: the first sentence that no
    rule explained although it holds a question, a request, a negation, a name, an address
    or a date ("Frage: ‚…'"). ``elsewhere``: a sentence that names another date, event or
    place than this event's. ``others``: a registration or cancellation sentence that speaks
    of somebody other than the writer (who then needs an address of their own).
    ``partstat``: a calendar reply's answer (ACCEPTED, DECLINED, TENTATIVE …)."""

    intent: Intent
    asks: bool = False
    rsvp: bool = False
    reason: str = ""
    sentence: str = ""
    note: str = ""
    elsewhere: str = ""
    others: str = ""
    partstat: str = ""


class Status(enum.StrEnum):
    """A registration's state (the ``registrations.status`` column)."""

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"
    HELD = "held"  # "vorgemerkt": a place kept while a human reads the mail (counts as taken)


class ReplyKind(enum.StrEnum):
    """Which reply template an outbox row was made from (the ``outbox.kind`` column)."""

    CONFIRMATION = "confirmation"
    WAITLISTED = "waitlisted"  # capacity reached: no Zoom details, no calendar entry
    DUPLICATE = "duplicate"  # already registered: the details again, same calendar entry
    CANCELLATION = "cancellation"
    NOT_REGISTERED = "not_registered"  # a cancellation from someone not on the list
    CLOSED = "closed"  # registration deadline passed
    ON_BEHALF = "on_behalf"  # to a sender who registered somebody else
    THIRD_PARTY = "third_party"  # to a person registered by somebody else: who, and undo
    REMINDER = "reminder"  # before the event, with the Zoom details
    UPDATE = "update"  # the organiser changed time or Zoom details: new calendar entry
    EVENT_CANCELLED = "event_cancelled"  # the whole event is off
    ADDRESS_CHANGED = "address_changed"  # to the old address after `mailbot edit --email`


class OrganiserKind(enum.StrEnum):
    """The outbox kind of a mail to the organiser (not a reply to a participant: no
    template of its own, never in `sample-replies`)."""

    DIGEST = "digest"  # the daily overview ([digest] to)
    ALERT = "alert"  # a server refuses mailbot's login


def needs_human(action: str, attention: bool | int, resolved: bool = False) -> bool:
    """A human must read this mail: it waits for review, or was answered and also asks
    something (left flagged) — until it is settled (``resolved``: ``resolved_at`` is set).
    The one rule; :data:`NEEDS_HUMAN_SQL` is its SQL form."""
    return not resolved and (action == Action.REVIEW.value or bool(attention))


NEEDS_HUMAN_SQL = ("((action = 'review' OR needs_attention = 1) AND resolved_at IS NULL)"
                   )  # needs_human() in SQL


@dataclass(frozen=True)
class InboundMail:
    """One mail as the inbox shell hands it over: raw bytes plus where it lives."""

    ref: str  # the inbox's handle: IMAP UID or Maildir file key
    raw: bytes
    received_at: dt.datetime  # IMAP INTERNALDATE / Maildir file time, aware
    oversize: int | None = None  # the size, when only the headers were fetched


@dataclass(frozen=True)
class Participant:
    email: str  # lower-case
    name: str
    organisation: str | None = None


@dataclass(frozen=True)
class ParsedMail:
    """What parse.py reads out of the bytes; pure data, no decisions."""

    key: str  # Message-ID, or sha256 of the bytes when there is none
    message_id: str | None  # a validated Message-ID, safe for In-Reply-To
    sender: str | None  # the From address, lower-case, validated; None when unusable
    sender_name: str
    subject: str
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To, lower-case
    headers: dict[str, str]  # lower-case name → value, for the loop guard
    text: str  # what the person wrote now (quotes removed)
    participants: tuple[Participant, ...] = ()
    registered_by: str | None = None  # the sender, when they registered someone else
    participant_issue: str | None = None  # why the participants are unclear
    reply_to: str | None = None  # a Reply-To differing from From ("?" when unreadable)
    calendar_method: str | None = None  # METHOD of a text/calendar part
    # (PARTSTAT, attendee address, attendee name, COMMENT) of a calendar part's ATTENDEE
    calendar_reply: tuple[str, str | None, str, str] | None = None
    limit: str | None = None  # why the mail was not read in full (too large, too complex)
    auth_results: tuple[str, ...] = ()  # every Authentication-Results header, unfolded
    language: str | None = None  # "de" or "en" when the text makes it clear
    # every occurrence of each header (lower-case name → values in order): a robot's mark
    # counts wherever it stands, also behind a harmless first one
    header_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # a hash of what the writer made (From, Subject, Date, body), not of what servers add
    # on the way (Received, Delivered-To, X-…): one Message-ID with other content is
    # another mail; "" when the mail was not read in full
    fingerprint: str = ""
    quoted: str = ""  # the earlier mails it quotes (the first few thousand characters)
    # the sender's name to greet them by: the display name when it names a person, else
    # the signature's ("i. A. Monika Berger" for "Sekretariat Bürgermeisterin"), else ""
    sender_person: str = ""


@dataclass(frozen=True)
class Request:
    """What somebody asks of mailbot, whoever brings it: a mail, or an organiser at the desk
    (`mailbot add`, `cancel`, `approve`). Policy decides on this, never on a mail."""

    key: str  # the mail's key, or "manual:…" for an organiser's change
    people: tuple[Participant, ...]  # whom it is about
    sender: str | None  # who asks (From, or the organiser's stand-in); None when unreadable
    arrival: dt.datetime  # when it came (orders registrations and the waitlist)
    evidence: Reading  # the intent with its deciding sentence (classify)
    sender_name: str = ""
    message_id: str | None = None  # a validated Message-ID to answer to (In-Reply-To)
    reply_to: str | None = None  # a Reply-To differing from From
    language: str | None = None  # "de" / "en" when the text makes it clear
    participant_issue: str | None = None  # why the people are unclear
    calendar_reply: tuple[str, str | None, str, str] | None = None  # see ParsedMail
    limit: str | None = None  # why the mail was not read in full
    robot: str | None = None  # why it must not be answered (guard)
    suspicious: str | None = None  # why a human should check the sender (e.g. DMARC)

    @property
    def intent(self) -> Intent:
        return self.evidence.intent

    @property
    def registered_by(self) -> str | None:
        """The sender, when the request is (also) about somebody else."""
        return self.sender if any(p.email != self.sender for p in self.people) else None


@dataclass(frozen=True)
class Registration:
    """One participant's row: who, in which state, and their calendar entry's identity."""

    email: str
    name: str
    organisation: str | None
    status: Status
    ics_uid: str
    ics_sequence: int
    registered_at: dt.datetime
    message_id: str  # the mail it came from (its key)
    registered_by: str | None = None  # who sent it, when not the participant
    language: str | None = None  # "de" / "en": the language of their mail
    event_version: str | None = None  # which event details their calendar entry shows


@dataclass(frozen=True)
class Reply:
    """A composed reply, ready for the outbox."""

    recipient: str
    subject: str
    kind: ReplyKind | OrganiserKind
    message_id: str
    in_reply_to: str | None
    body: bytes


# What became of a mail besides its Action (the summary counts both).
FOREIGN = "foreign"  # not addressed to the contact address: left exactly as it was
ALREADY = "already"  # recorded by an earlier run but still in the folder: only moved
WAITING = "waiting"  # recorded for review by an earlier run: still waiting for a human
ATTENTION = "attention"  # answered, and left flagged: it also asks something


@dataclass
class Summary:
    """What one run did, for the closing line and for tests."""

    mails: Counter[str] = field(default_factory=Counter)  # action, foreign, already
    replies: Counter[str] = field(default_factory=Counter)  # reply kind
    sent: int = 0
    send_errors: int = 0  # replies not sent in this run (each counted once: len(unsent))
    unsent: set[int] = field(default_factory=set)  # their outbox ids
    refused: int = 0  # refused for good by the receiving server (5xx): failed
    held: int = 0  # replies kept back by the sending limits ([smtp] max_per_…)

    def not_sent(self, reply_ids: Iterable[int]) -> None:
        self.unsent.update(reply_ids)
        self.send_errors = len(self.unsent)

    @property
    def read(self) -> int:
        return sum(self.mails.values())

    @property
    def news(self) -> bool:
        """Whether the run did anything worth a line: new mail handled, a reply sent or a
        send failed. Mail still waiting for review and foreign mail, seen again on every
        poll, are not news (cron would mail the organiser every few minutes)."""
        new = sum(n for kind, n in self.mails.items() if kind not in (FOREIGN, WAITING))
        return bool(new or self.sent or self.send_errors or self.refused)


# -- what policy decides (policy.py) ----------------------------------------------------

@dataclass(frozen=True)
class Step:
    participant: Participant
    status: Status | None  # the status to record; None leaves the row as it is
    reply: ReplyKind | None
    registered_by: str | None = None  # the sender, when registering someone else


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    steps: tuple[Step, ...] = ()
    attention: bool = False  # answered, but a human should read it too (left flagged)


@dataclass(frozen=True)
class Situation:
    """What a decision needs to know besides the mail itself."""

    current: Mapping[str, Status]  # the participants' present status, by address
    confirmed_count: int
    received_at: dt.datetime  # when the mail arrived (IMAP INTERNALDATE)
    now: dt.datetime
    max_age: dt.timedelta = dt.timedelta(days=7)
    max_participants: int = 10
    waitlist_head: Registration | None = None  # who moves up when a place becomes free
    deadline_applies: bool = True  # False for an organiser's own additions
    age_applies: bool = True  # False for an organiser's additions and for a preview
    others_get_details: bool = True  # people registered by someone else: details at once
    decided: bool = False  # a human decided the mail (approve): a held place is confirmed


@dataclass(frozen=True)
class ReplySpec:
    """A reply to compose (compose.Composer.reply takes these as they are)."""

    kind: ReplyKind
    person: Participant
    registration: Registration | None
    in_reply_to: str | None
    lang: str | None
    others: tuple[str, ...] = ()
    moved_up: bool = False
    by: str | None = None


@dataclass(frozen=True)
class Plan:
    decision: Decision
    registrations: tuple[Registration, ...] = ()
    replies: tuple[ReplySpec, ...] = ()
    notices: tuple[tuple[str, str], ...] = ()  # (email, key): people asked for someone else

    @property
    def for_human(self) -> bool:
        """Left flagged in the inbox (the inbox verdict): a human must read it."""
        return needs_human(self.decision.action.value, self.decision.attention)


@dataclass(frozen=True)
class StatusFacts:
    """What `mailbot status` and the digest report, read from the store in one place
    (service.health.status_text) and written out in another (replies.report)."""

    registrations: Mapping[str, int]  # status -> count
    review: int  # mails waiting for a human
    outbox: Mapping[str, int]  # outbox status -> count
    failed: list[dict]  # replies given up on: kind, recipient, last_error
    last_poll: tuple[str, str] | None  # (where, when)
    last_error: tuple[str, str] | None  # (error, when)
    clean_poll: tuple[str, str] | None = None  # (the error it followed, when)
    burst: int = 0  # of the review mails, held as a burst from one domain
    refused: tuple[tuple[str, str, str], ...] = ()  # (part, error, since) of refused logins
    budget: tuple[int, int] | None = None  # (left, max_per_day) of the sending budget
    undeliverable: int = 0  # addresses whose replies bounced
    sent_copy: tuple[str, str] | None = None  # (error, since) while copies to Sent fail


@dataclass(frozen=True)
class Bounce:
    """What a delivery status report says (reading.bounce reads it)."""

    failed: tuple[str, ...]  # addresses reported as failed for good, lower-case
    status: str  # the DSN status code, e.g. "5.1.1" ("" when the report gives none)
    original_ids: tuple[str, ...]  # Message-IDs quoted from the returned mail
