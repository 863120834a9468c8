"""The triage before a mail is read, and what a bounce means: plain values in, a verdict out."""

from __future__ import annotations

from mailbot.core.models import ALREADY, FOREIGN, WAITING, Action, Bounce
from mailbot.rules.triage import BouncedReply, before_reading, cannot_compose, decide_bounce

BOUNCE = Bounce(("anna@a.example",), "5.1.1", ("<r1@isi-innovation.de>",))


def test_a_mail_not_for_us_or_our_own_digest_is_left_alone():
    assert before_reading(False, False) == FOREIGN
    assert before_reading(True, True) == FOREIGN
    assert before_reading(True, False) is None


def test_a_mail_handled_before_is_only_moved_unless_it_still_waits_for_a_human():
    assert before_reading(True, False, ("register", 0)) == ALREADY
    assert before_reading(True, False, ("register", 1)) == WAITING
    assert before_reading(True, False, ("review", 0)) == WAITING
    assert before_reading(True, False, ("review", 0, True)) == ALREADY, "settled"


def test_a_reply_that_cannot_be_composed_waits_for_a_human():
    decision = cannot_compose("unexpected '}'")
    assert decision.action is Action.REVIEW and "nicht erstellbar" in decision.reason


def test_a_bounce_of_our_reply_marks_it_and_waits_for_a_human():
    reply = BouncedReply(7, "anna@a.example", "confirmation", confirmed_others_wait=True)
    verdict = decide_bounce(BOUNCE, reply, [], [])
    assert verdict.mark == reply and verdict.decision.action is Action.REVIEW
    assert "5.1.1" in verdict.decision.reason and "andere warten" in verdict.decision.reason


def test_a_bounce_without_our_message_id_changes_nobody():
    assert decide_bounce(BOUNCE, None, [], []).decision is None  # not ours: a robot's
    named = decide_bounce(BOUNCE, None, ["anna@a.example"], [])
    assert named.mark is None and named.decision.action is Action.REVIEW
    assert "nichts geändert" in named.decision.reason
    forwarded = decide_bounce(BOUNCE, None, [], ["bernd@b.example"])
    assert forwarded.mark is None and "bernd@b.example" in forwarded.decision.reason
