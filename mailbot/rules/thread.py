"""A mail read with the one it follows (pure): when a later mail completes a registration
that waited for a person's address, and which names a mail leaves waiting."""

from __future__ import annotations

from dataclasses import replace

from mailbot.core.models import Action, Decision, Intent, Participant, Reading, Request
from mailbot.core.text import quote
from mailbot.rules.guard import may_cancel_for


def completed(request: Request, person: Participant, sentence: str) -> Request | None:
    """The request as a registration of ``person`` (registered by the sender), when the mail
    does nothing but give the address a waiting mail lacked; None when it says more (a
    question, another event, a registration or cancellation of its own) or cannot be
    answered (a robot, a forged or unreadable sender)."""
    reading = request.evidence
    if request.robot or request.limit or request.suspicious or request.sender is None:
        return None
    if reading.intent is not Intent.UNKNOWN or reading.asks or reading.elsewhere:
        return None
    if reading.note and quote(sentence) not in reading.note:
        return None
    if person.email == request.sender:
        return None
    evidence = Reading(Intent.REGISTER, sentence=sentence)
    return replace(request, people=(person,), evidence=evidence)


def may_complete(sender: str, writer: str | None) -> bool:
    """Whether ``sender`` may give the address ``writer``'s waiting mail lacked: she herself,
    or a colleague of her organisation (one domain, not a freemail one) — not whoever
    replies in her thread (its Message-ID is no secret)."""
    return writer is not None and may_cancel_for(sender, writer)


def waits_for(decision: Decision, request: Request, names: list[str]) -> str | None:
    """The names to remember while a mail waits for a human because it spoke of people
    without their address ("; "-joined), or None: only a mail for review, only names that
    are not the sender's own and not among its participants."""
    if decision.action is not Action.REVIEW or request.robot or request.sender is None:
        return None
    own = set(request.sender_name.split()) | {w for p in request.people for w in p.name.split()}
    kept = [n for n in names if n.split()[-1] not in own]
    kept = [n for n in dict.fromkeys(kept)  # "Kılıç" once "Mehmet Kılıç" is there
            if not any(o != n and o.endswith(" " + n) for o in kept)]
    return "; ".join(kept)[:300] or None
