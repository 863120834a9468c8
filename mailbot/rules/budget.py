"""The abuse budgets of one plan (pure): registrations and replies share one budget;
whose use of it a request needs; which notices record people registered by someone else."""

from __future__ import annotations

import datetime as dt
import hashlib

from mailbot.config import LimitsConfig
from mailbot.core.models import Action, Decision, Intent, ParsedMail, Request, Situation, Status
from mailbot.rules import guard
from mailbot.rules.guard import Usage


def within_budget(decision: Decision, mail: Request | ParsedMail, usage: Usage,
                  limits: LimitsConfig) -> Decision:
    """Registrations and replies share one budget: a mail that would go beyond any of the
    abuse limits goes to a human whole — never a row without its reply, never a mail to
    strangers beyond the small budget for people registered by someone else."""
    if not decision.steps:
        return decision
    recipients = [s.participant.email for s in decision.steps if s.reply is not None]
    others = [s.participant.email for s in decision.steps
              if s.registered_by and s.reply is not None]
    people = mail.people if isinstance(mail, Request) else mail.participants
    listed = mail.sender in {p.email for p in people}
    new = [s.participant.email for s in decision.steps
           if decision.action is Action.REGISTER
           and s.status in (Status.CONFIRMED, Status.WAITLISTED)]
    reason = (guard.reply_cap(recipients, usage, limits.replies_per_recipient_per_day,
                              limits.replies_per_domain_per_day)
              or guard.unlisted_sender(others, listed)
              or guard.others_per_sender(others, usage, limits.max_others_per_sender_per_day)
              or guard.others_per_hour(others, usage, limits.max_others_per_hour)
              or guard.others_per_day(others, usage, limits.max_others_per_day)
              or guard.domain_burst(new, usage, limits.max_new_per_domain_per_hour))
    return Decision(Action.REVIEW, reason) if reason else decision


ASKED = "asked:"  # notice key prefix: a person registered by someone else was mailed
HOUR = dt.timedelta(hours=1)


def asked_key(sender: str) -> str:
    """The notice key for people registered by ``sender`` — by whose budget the sender
    draws on (:func:`guard.burst_key`: all of one domain's or one mailbox's spellings);
    a hash: no address in keys."""
    return ASKED + hashlib.sha256(guard.burst_key(sender.lower()).encode()).hexdigest()[:16]


def asked(decision: Decision) -> list[tuple[str, str]]:
    """(email, notice key) of each person registered by someone else and mailed now."""
    return [(s.participant.email, asked_key(s.registered_by)) for s in decision.steps
            if s.registered_by and s.reply is not None]


def budget_addresses(request: Request, situation: Situation) -> list[str]:
    """Whose use of the abuse budgets a plan for this request may need: everyone it could
    write to or register; none when it cannot lead to a reply or a row."""
    reading = request.evidence
    if request.robot or request.limit or request.sender is None or request.suspicious or \
            not (reading.rsvp or reading.intent in (Intent.REGISTER, Intent.CANCEL)):
        return []
    found = [p.email for p in request.people] + [request.sender]
    if situation.waitlist_head is not None:
        found.append(situation.waitlist_head.email)
    if request.calendar_reply and request.calendar_reply[1]:
        found.append(request.calendar_reply[1])
    return list(dict.fromkeys(found))
