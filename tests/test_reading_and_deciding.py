"""The pure core with plain values: parse, guard, classify, decide."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from mailbot import config as cfg
from mailbot.core.models import Action, Intent, Participant, Reading, ReplyKind, Situation, Status
from mailbot.reading.classify import classify
from mailbot.reading.names import split_name
from mailbot.reading.parse import parse_from, parse_mail
from mailbot.rules import guard
from mailbot.rules.budget import within_budget
from mailbot.rules.lifecycle import next_registration
from mailbot.rules.policy import decide

ROOT = Path(__file__).resolve().parent.parent
BERLIN = dt.timezone(dt.timedelta(hours=2))
REGISTER = Reading(Intent.REGISTER)


def situation(current=None, confirmed=0, received=None, now=None, **kw):
    received = received or dt.datetime(2021, 5, 20, tzinfo=BERLIN)
    return Situation(current or {}, confirmed, received, now or received, **kw)


def mail(headers: str, body: str = "Hiermit melde ich mich an.", charset: str = "utf-8",
         encoding: str = "utf-8") -> bytes:
    head = headers.strip().replace("\n", "\r\n")
    return (f"{head}\r\nContent-Type: text/plain; charset={charset}\r\n\r\n{body}\r\n"
            .encode(encoding))


@pytest.fixture
def event():
    with (ROOT / "config" / "example.toml").open("rb") as fh:
        data = tomllib.load(fh)
    return cfg.parse(data, secrets=False).event


# -- parse -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("Anna Arndt <Anna@A.example>", ("anna@a.example", "Anna Arndt")),
    ('"Arndt, Anna" <anna@a.example>', ("anna@a.example", "Arndt, Anna")),
    ("anna@a.example", ("anna@a.example", "")),
    ("anna@a.example (Anna Arndt)", ("anna@a.example", "Anna Arndt")),
    ("=?utf-8?q?J=C3=BCrgen_Wei=C3=9F?= <j@k.example>", ("j@k.example", "Jürgen Weiß")),
    ('"anna@a.example" <anna@a.example>', ("anna@a.example", "")),
    # CVE-2023-27043: Python 3.11.7's parser would take alice; it is nobody.
    ("alice@example.org)<bob@example.org>", (None, "")),
    ("a@x.example, b@y.example", (None, "")),
    ("Anna <anna@a.example> <bob@b.example>", (None, "")),
    ("<>", (None, "")),
    ("", (None, "")),
    ("Eve <eve@x.example\r\nBcc: evil@example.com>", (None, "")),
])
def test_from_is_one_plain_address_or_nobody(raw, expected):
    assert parse_from(raw) == expected


def test_display_name_loses_control_characters():
    address, name = parse_from("=?utf-8?q?Eve=0D=0ABcc=3A_evil=40example.com?= <eve@x.example>")
    assert address == "eve@x.example"
    assert "\n" not in name and "\r" not in name


@pytest.mark.parametrize("raw, expected", [
    ("Müller, Thomas", "Thomas Müller"),
    ("Dr. Friedrich, Anna", "Anna Friedrich"),
    ("Prof. Dr. Anna Friedrich", "Anna Friedrich"),
    ("Frau Karin Schulz", "Karin Schulz"),
    ("Anna Arndt", "Anna Arndt"),
])
def test_names_without_titles(raw, expected):
    assert split_name(raw) == expected


def test_latin1_label_on_windows_1252_bytes_is_read_as_windows_1252():
    body = "„Hiermit melde ich mich an“ – Jürgen".encode("cp1252")
    raw = (b"From: j@k.example\r\nTo: n.collinet@isi-innovation.de\r\n"
           b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n" + body)
    assert parse_mail(raw).text == "„Hiermit melde ich mich an“ – Jürgen"


def test_undeclared_charset_is_detected():
    body = ("Guten Tag, hiermit möchte ich mich für das Treffen anmelden. Grüße aus Köln, "
            "Jürgen Weiß").encode("cp1252")
    raw = b"From: j@k.example\r\nTo: n.collinet@isi-innovation.de\r\n\r\n" + body
    assert "Jürgen Weiß" in parse_mail(raw).text


def test_quoted_text_is_not_what_the_person_wrote_now():
    body = ("Ich sage ab.\n\nAm 21.05.2021 um 10:00 schrieb Nathalie Collinet:\n"
            "> Hiermit melde ich Sie an.\n")
    parsed = parse_mail(mail("From: a@b.example\nTo: n.collinet@isi-innovation.de", body))
    assert parsed.text == "Ich sage ab."


def test_mail_without_message_id_is_keyed_by_its_bytes():
    raw = mail("From: a@b.example\nTo: n.collinet@isi-innovation.de")
    parsed = parse_mail(raw)
    assert parsed.message_id is None
    assert parsed.key.startswith("sha256:") and parse_mail(raw).key == parsed.key


def test_malformed_message_id_is_never_copied():
    raw = mail("From: a@b.example\nTo: n.collinet@isi-innovation.de\n"
               "Message-ID: <x@y>\n X-Evil: 1")
    assert parse_mail(raw).message_id is None
    raw = mail("From: a@b.example\nMessage-ID: <a b@c>")
    assert parse_mail(raw).message_id is None


def test_recipients_from_every_delivery_header():
    raw = mail("From: a@b.example\nTo: info@isi-innovation.de\n"
               "Delivered-To: N.Collinet@ISI-innovation.de")
    assert "n.collinet@isi-innovation.de" in parse_mail(raw).recipients


def test_form_fields_give_name_and_organisation():
    body = "ich melde mich an.\n\nName: Dr. Maria Schneider\nOrganisation: Agentur X e.V.\n"
    [person] = parse_mail(mail("From: m@s.example", body)).participants
    assert person == Participant("m@s.example", "Maria Schneider", "Agentur X e.V.")


# -- guard -------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    "Auto-Submitted: auto-replied", "Auto-Submitted: auto-generated", "Precedence: bulk",
    "Precedence: list", "Precedence: junk", "List-Id: <x.example>",
    "List-Unsubscribe: <mailto:x@y.example>", "Return-Path: <>", "X-Autoreply: yes",
])
def test_robot_headers_are_never_answered(header):
    parsed = parse_mail(mail(f"From: a@b.example\nTo: n.collinet@isi-innovation.de\n{header}"))
    assert guard.check(parsed, "n.collinet@isi-innovation.de")


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.example", "postmaster@b.example", "no-reply@zoom.example",
    "noreply@b.example", "do-not-reply@b.example", "n.collinet@isi-innovation.de",
])
def test_robot_senders_are_never_answered(sender):
    parsed = parse_mail(mail(f"From: {sender}\nTo: n.collinet@isi-innovation.de"))
    assert guard.check(parsed, "n.collinet@isi-innovation.de")


def test_a_person_may_be_answered():
    parsed = parse_mail(mail("From: a@b.example\nTo: n.collinet@isi-innovation.de\n"
                             "Auto-Submitted: no\nReturn-Path: <a@b.example>"))
    assert guard.check(parsed, "n.collinet@isi-innovation.de") is None


# -- classify ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, intent", [
    ("Hiermit melde ich mich zum Auftakttreffen an.", Intent.REGISTER),
    ("Gerne nehme ich am Treffen teil.", Intent.REGISTER),
    ("Ich bin dabei!", Intent.REGISTER),
    ("I would like to register for the meeting.", Intent.REGISTER),
    ("Leider muss ich meine Teilnahme absagen.", Intent.CANCEL),
    ("Bitte streichen Sie mich von der Liste.", Intent.CANCEL),
    ("Sorry, I can't make it.", Intent.CANCEL),
    ("Wird das Treffen aufgezeichnet?", Intent.QUESTION),
    ("Vielen Dank für die Bestätigung!", Intent.THANKS),
    ("Sehr geehrte Damen und Herren, wir bieten günstige Kredite.", Intent.UNKNOWN),
])
def test_intent(text, intent):
    assert classify("", text).intent is intent


# -- decide ------------------------------------------------------------------------------

def parsed_registration(*people, sender=None):
    """A list of people sent by the first of them (or by ``sender``)."""
    body = "wir melden uns an:\n" + "\n".join(f"{i}. {n}, {a}" for i, (n, a) in
                                              enumerate(people, 1))
    sender = sender or people[0][1]
    return parse_mail(mail(f"From: {sender}\nTo: n.collinet@isi-innovation.de", body))


def test_capacity_reached_means_waitlist(event):
    event = event.__class__(**{**event.__dict__, "capacity": 1})
    parsed = parsed_registration(("Anna A", "a@a.example"), ("Bernd B", "b@b.example"))
    when = dt.datetime(2021, 5, 20, tzinfo=BERLIN)
    decision = decide(parsed, REGISTER, situation({}, 0, when), event)
    assert [(s.status, s.reply) for s in decision.steps] == [
        (Status.CONFIRMED, ReplyKind.CONFIRMATION), (Status.WAITLISTED, ReplyKind.THIRD_PARTY)]


def test_after_the_deadline_nobody_is_confirmed(event):
    parsed = parsed_registration(("Anna A", "a@a.example"))
    when = dt.datetime(2021, 5, 31, 0, 30, tzinfo=BERLIN)
    decision = decide(parsed, REGISTER, situation({}, 0, when), event)
    assert [(s.status, s.reply) for s in decision.steps] == [(None, ReplyKind.CLOSED)]


def test_registered_twice_is_one_row_and_an_already_registered_reply(event):
    parsed = parsed_registration(("Anna A", "a@a.example"))
    when = dt.datetime(2021, 5, 20, tzinfo=BERLIN)
    decision = decide(parsed, REGISTER, situation({"a@a.example": Status.CONFIRMED}, 1, when),
                      event)
    assert [(s.status, s.reply) for s in decision.steps] == [(None, ReplyKind.DUPLICATE)]


def test_robot_and_unknown_sender(event):
    parsed = parsed_registration(("Anna A", "a@a.example"))
    when = dt.datetime(2021, 5, 20, tzinfo=BERLIN)
    decision = decide(parsed, REGISTER, situation({}, 0, when), event, robot="bounce")
    assert decision.action is Action.IGNORE
    nobody = parse_mail(mail("From: alice@example.org)<bob@example.org>"))
    assert decide(nobody, REGISTER, situation({}, 0, when), event).action is Action.REVIEW


def test_calendar_identity_survives_cancel_and_comeback(event):
    from mailbot.core.models import Step

    person = Participant("a@a.example", "Anna A")
    t0 = dt.datetime(2021, 5, 1, tzinfo=dt.UTC)
    first = next_registration(Step(person, Status.CONFIRMED, None), None, "<m1@x>", t0, "uid-1")
    cancelled = next_registration(Step(person, Status.CANCELLED, None), first, "<m2@x>", t0,
                                  "uid-2")
    again = next_registration(Step(person, Status.CONFIRMED, None), cancelled, "<m3@x>", t0,
                              "uid-3")
    assert [r.ics_uid for r in (first, cancelled, again)] == ["uid-1"] * 3
    assert [r.ics_sequence for r in (first, cancelled, again)] == [0, 1, 2]
    assert next_registration(Step(person, None, ReplyKind.DUPLICATE), first, "<m4@x>", t0,
                             "uid-4") is None


@pytest.mark.parametrize("body, expected", [
    ("Danke!\n\n-----Ursprüngliche Nachricht-----\nVon: N\nAn: A\nBetreff: x\n\nmelde mich an",
     "Danke!"),
    ("Danke!\n\nVon: Nathalie Collinet <n@x.de>\nGesendet: Freitag, 21. Mai 2021 09:00\n"
     "An: a@b.de\nBetreff: Anmeldebestätigung", "Danke!"),
    ("Gerne melde ich mich an.\n\nAnfang der weitergeleiteten Nachricht:\n\nVon: x\n"
     "Möchten Sie teilnehmen?", "Gerne melde ich mich an."),
    ("Ich melde mich an.\n\nGesendet von meinem iPhone", "Ich melde mich an."),
    ("Danke für die Bestätigung.\n\nGuten Tag Anna Arndt,\n\nvielen Dank für Ihre Anmeldung. "
     "Gerne bestätige ich Ihre Teilnahme\n\nIhre Zugangsdaten:\nZoom-Link: https://x",
     "Danke für die Bestätigung."),
])
def test_older_text_is_cut_off(body, expected):
    parsed = parse_mail(mail("From: a@b.example\nTo: n.collinet@isi-innovation.de", body))
    assert parsed.text == expected


def test_reply_to_differing_from_from_is_noted_and_from_is_registered(event):
    raw = mail("From: Anna Arndt <anna@a.example>\nTo: n.collinet@isi-innovation.de\n"
               "Reply-To: office@a.example")
    parsed = parse_mail(raw)
    decision = decide(parsed, REGISTER, situation(), event)
    assert [s.participant.email for s in decision.steps] == ["anna@a.example"]
    assert "Reply-To weicht ab (office@a.example)" in decision.reason


def test_registration_with_a_question_is_answered_and_flagged(event):
    parsed = parse_mail(mail("From: Anna Arndt <anna@a.example>\nTo: n.collinet@isi-innovation.de",
                             "Ich melde mich an. Gibt es eine Gebärdensprachdolmetschung?"))
    reading = classify(parsed.subject, parsed.text)
    decision = decide(parsed, reading, situation(), event)
    assert decision.action is Action.REGISTER and decision.attention
    assert decision.steps[0].reply is ReplyKind.CONFIRMATION


def test_an_old_mail_is_read_like_any_other(event):
    """The age rule is the inbox's first-start baseline (test_old_mail), not a decision."""
    parsed = parsed_registration(("Anna A", "a@a.example"))
    old = dt.datetime(2021, 5, 1, tzinfo=BERLIN)
    decision = decide(parsed, REGISTER, situation(received=old, now=old + dt.timedelta(days=8)),
                      event)
    assert decision.action is Action.REGISTER


def test_dmarc_failure_reported_by_our_own_server_goes_to_review(event):
    ours = ("Authentication-Results: mx.isi-innovation.de; dkim=none; "
            "dmarc=fail header.from=a.example")
    theirs = "Authentication-Results: mx.evil.example; dmarc=pass"
    parsed = parse_mail(mail(f"From: a@a.example\nTo: n.collinet@isi-innovation.de\n{theirs}\n"
                             f"{ours}"))
    assert guard.spoofed(parsed, "mx.isi-innovation.de").startswith("DMARC")
    assert guard.spoofed(parsed, None) is None
    forged = parse_mail(mail("From: a@a.example\nAuthentication-Results: mx.evil.example; "
                             "dmarc=fail"))
    assert guard.spoofed(forged, "mx.isi-innovation.de") is None
    decision = decide(parsed, REGISTER, situation(), event,
                      suspicious=guard.spoofed(parsed, "mx.isi-innovation.de"))
    assert decision.action is Action.REVIEW


def test_over_a_reply_cap_the_whole_mail_goes_to_review(event):
    """Registrations and replies share one budget: no confirmed row without its reply."""
    from collections import Counter

    parsed = parsed_registration(("Anna A", "a@b.example"), ("Bernd B", "b@b.example"))
    decision = decide(parsed, REGISTER, situation(), event)
    assert decision.action is Action.REGISTER
    limits = cfg.LimitsConfig(replies_per_recipient_per_day=5, replies_per_domain_per_day=2)
    full = guard.Usage(Counter({"a@b.example": 5}), Counter({"b.example": 1}))
    capped = within_budget(decision, parsed, full, limits)
    assert capped.action is Action.REVIEW and capped.steps == ()
    assert "Antwortlimit" in capped.reason
    domain = within_budget(decision, parsed, guard.Usage(Counter(), Counter({"b.example": 1})),
                           limits)
    assert domain.action is Action.REVIEW, "the second reply would pass the domain cap"
    assert within_budget(decision, parsed, guard.Usage(), limits) is decision


def test_a_cancelled_event_takes_no_registrations(event):
    off = event.__class__(**{**event.__dict__, "cancelled": True})
    decision = decide(parsed_registration(("Anna A", "a@a.example")), REGISTER, situation(), off)
    assert [(s.status, s.reply) for s in decision.steps] == [(None, ReplyKind.CLOSED)]
    assert decision.reason == "Veranstaltung abgesagt"


def test_freemail_bursts_are_counted_per_address_others_per_domain():
    assert guard.burst_key("anna@gmail.com") == "anna@gmail.com"
    assert guard.burst_key("anna@caritas-bonn.de") == "caritas-bonn.de"
    usage = guard.Usage(new_per_key={"bigcorp.example": 19, "anna@gmail.com": 0})
    assert guard.domain_burst(["x@bigcorp.example"], usage, 20) is None
    assert guard.domain_burst(["x@bigcorp.example", "y@bigcorp.example"], usage, 20
                              ).startswith(guard.BURST)
    assert guard.domain_burst([f"p{i}@gmail.com" for i in range(30)], usage, 20) is None


def test_budgets_for_people_registered_by_others():
    two = ["a@x.example", "b@y.example"]
    assert guard.unlisted_sender(two, sender_listed=False)
    assert guard.unlisted_sender(two, sender_listed=True) is None
    assert guard.unlisted_sender(two[:1], sender_listed=False) is None, "one colleague: asked"
    used = guard.Usage(others_by_sender=9, others_overall=29)
    assert guard.others_per_sender(two[:1], used, 10) is None
    assert "max_others_per_sender_per_day" in guard.others_per_sender(two, used, 10)
    assert "max_others_per_hour" in guard.others_per_hour(two, used, 30)
    assert guard.others_per_hour([], used, 0) is None, "nobody else: no budget used"


def test_people_registered_by_the_sender_are_asked_not_confirmed(event):
    parsed = parsed_registration(("Anna A", "a@a.example"), ("Bernd B", "b@b.example"),
                                 sender="eve@evil.example")
    decision = decide(parsed, REGISTER, situation(), event)
    assert [(s.participant.email, s.reply, s.registered_by) for s in decision.steps] == [
        ("a@a.example", ReplyKind.THIRD_PARTY, "eve@evil.example"),
        ("b@b.example", ReplyKind.THIRD_PARTY, "eve@evil.example"),
        ("eve@evil.example", ReplyKind.ON_BEHALF, None)]
    budget = within_budget(decision, parsed, guard.Usage(), cfg.LimitsConfig())
    assert budget.action is Action.REVIEW and "andere Personen" in budget.reason
    asked = decide(parsed, REGISTER, situation(others_get_details=False), event)
    assert [s.status for s in asked.steps] == [None, None, None], "no row until they answer"


def test_without_authserv_id_only_a_fail_in_the_topmost_header_counts():
    top_fail = parse_mail(mail("From: a@a.example\nAuthentication-Results: mx.our.example; "
                               "dmarc=fail\nAuthentication-Results: mx.x.example; dmarc=pass"))
    below_fail = parse_mail(mail("From: a@a.example\nAuthentication-Results: mx.our.example; "
                                 "dmarc=pass\nAuthentication-Results: mx.x.example; dmarc=fail"))
    assert guard.spoofed(top_fail, None).startswith("DMARC")
    assert guard.spoofed(below_fail, None) is None


def test_the_inbox_verdict():
    from mailbot.core.models import ALREADY, ATTENTION, FOREIGN, WAITING
    from mailbot.rules.policy import inbox_verdict

    assert [inbox_verdict(o) for o in ("review", ATTENTION, WAITING)] == ["flag"] * 3
    assert [inbox_verdict(o) for o in ("register", "ignore", "noop", ALREADY)] == ["move"] * 4
    assert inbox_verdict(FOREIGN) == "leave"


def test_a_reason_for_the_log_keeps_no_word_of_the_mail():
    """The log gets the reason without its quotes; a sentence with its own typographic
    quotes, or one cut off by a length limit, leaks no word either."""
    from mailbot.core.text import quote, unquoted

    reason = f"Anmeldung: {quote('ich komme zum ‚Workshop‘ trotz Chemo')}; Reply-To weicht ab"
    assert unquoted(reason) == "Anmeldung: ‚…‘; Reply-To weicht ab"
    assert unquoted(reason[:25]) == "Anmeldung: ‚…‘"
    assert "Chemo" in reason  # the database keeps the quote


def test_a_note_naming_a_person_beside_the_participant_is_still_read(event):
    """The note is dropped only when every titled name in it is a participant's."""
    parsed = parse_mail(mail("From: Bernd Schulz <schulz@a.example>\n"
                             "To: n.collinet@isi-innovation.de"))
    known = Reading(Intent.REGISTER, note="Person: „Herr Schulz wird am Vormittag teilnehmen“")
    assert not decide(parsed, known, situation(), event).attention
    other = Reading(Intent.REGISTER,
                    note="Person: „Herr Schulz und Frau Meier werden am Vormittag teilnehmen“")
    assert decide(parsed, other, situation(), event).attention
