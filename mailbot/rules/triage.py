"""Before a mail is read for what it asks (pure): is it for us, was it handled before, and
what a bounce of one of our replies means — plain values in, a verdict out; the service
only gathers the facts from the store and carries the verdict out."""

from __future__ import annotations

from dataclasses import dataclass

from mailbot.core.models import (
    ALREADY,
    FOREIGN,
    WAITING,
    Action,
    Bounce,
    Decision,
    Plan,
    needs_human,
)


def before_reading(for_us: bool, our_digest: bool,
                   handled: tuple[str, int, bool] | tuple[str, int] | None = None
                   ) -> str | None:
    """FOREIGN for a mail not to the contact address (or our own digest come back: the
    organiser's to read, left as it is); for one recorded before (action, attention and
    whether a human or a later mail settled it), WAITING while it still waits for a human,
    else ALREADY (only moved, never answered twice); None: read it."""
    if not for_us or our_digest:
        return FOREIGN
    if handled is not None:
        return WAITING if needs_human(*handled) else ALREADY
    return None


def copy_of_handled(plan: Plan) -> Plan:
    """The plan for a mail under a Message-ID recorded before for another content from the
    same sender: when it changes nothing (everybody in it registered already, or not at
    all), it is that mail again, altered on the way (a footer, another Date, a crash
    before the move) — recorded, not answered twice. Anything else is read as it is (a
    form mailer that gives every mail one ID)."""
    steps = plan.decision.steps
    if plan.for_human or not steps or any(s.status is not None for s in steps):
        return plan
    return Plan(Decision(Action.NOOP, "dieselbe Mail wie zuvor (Message-ID und Absender), "
                                      "auf dem Weg verändert: keine zweite Antwort"))


def cannot_compose(error: str) -> Decision:
    """A reply that cannot be rendered (a broken template): the mail waits for a human."""
    return Decision(Action.REVIEW, f"Antwort nicht erstellbar ({error})"[:200])


@dataclass(frozen=True)
class BouncedReply:
    """The sent reply a bounce returns (its Message-ID quoted, its address failed)."""

    id: int
    recipient: str
    kind: str
    confirmed_others_wait: bool = False  # the address's row is confirmed, others wait


@dataclass(frozen=True)
class BounceVerdict:
    decision: Decision | None  # None: not a bounce of ours (the robot rule ignores it)
    mark: BouncedReply | None = None  # mark this reply bounced, its address undeliverable


def decide_bounce(found: Bounce, reply: BouncedReply | None, replied_to: list[str],
                  returned: list[str]) -> BounceVerdict:
    """A bounce of one of our replies marks the reply ``bounced`` and the address
    undeliverable, and is left for a human (never answered). A bounce that quotes no
    Message-ID of our reply to an address it reports as failed changes nobody (anyone can
    write one naming a participant): when it names someone we replied to (``replied_to``),
    or quotes a reply of ours to another address (``returned``: a forwarded address
    failed), a human looks; otherwise it is a bounce of mail we did not send."""
    if reply is not None:
        reason = (f"Unzustellbar: {reply.kind} an {reply.recipient} kam zurück"
                  f"{f' ({found.status})' if found.status else ''}; keine Erinnerungen mehr")
        if reply.confirmed_others_wait:
            reason += "; bestätigt, und andere warten auf einen Platz"
        return BounceVerdict(Decision(Action.REVIEW, reason[:200]), reply)
    if not replied_to and not returned:
        return BounceVerdict(None)
    failed = ", ".join(found.failed)
    reason = (f"Unzustellbar-Meldung für {failed} zu unserer Antwort an "
              f"{', '.join(returned)}" if returned else
              f"Unzustellbar-Meldung für {failed} ohne eine Message-ID unserer Antworten")
    return BounceVerdict(Decision(Action.REVIEW, f"{reason}: nichts geändert, bitte prüfen"[:200]))
