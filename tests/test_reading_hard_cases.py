"""Hard cases from an adversarial review: what a careful secretary would do with each mail.

Each case runs the pure path (parse → guard → classify → decide) and asserts the action
and the people registered. The worst mistakes come first: answering a robot, registering
someone who did not ask to be registered, mixing up a cancellation and a registration.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mailbot.core.models import Situation
from mailbot.reading.classify import read
from mailbot.reading.parse import parse_mail
from mailbot.rules import guard
from mailbot.rules.policy import decide

OWN = "n.collinet@isi-innovation.de"
PETRA = "p.klein@awo-dortmund.de"
WHEN = dt.datetime(2021, 5, 20, tzinfo=dt.UTC)


def mk(body: str, subject: str = "Auftakttreffen", sender: str = f"Petra Klein <{PETRA}>",
       extra: str = "", ctype: str = "text/plain; charset=utf-8") -> bytes:
    head = (f"From: {sender}\nTo: Nathalie Collinet <{OWN}>\nSubject: {subject}\n"
            f"Message-ID: <{abs(hash(body + subject))}@awo-dortmund.de>\nMIME-Version: 1.0\n"
            f"Content-Type: {ctype}\nContent-Transfer-Encoding: 8bit\n{extra}")
    return (head.rstrip("\n") + "\n\n" + body).replace("\n", "\r\n").encode("utf-8")


@pytest.fixture(scope="module")
def event(example_config):
    config = example_config
    return config.event


def outcome(raw: bytes, event, current=None):
    parsed = parse_mail(raw, OWN)
    reading = read(parsed, event)  # as the daemon reads: dates checked against the event
    decision = decide(parsed, reading, Situation(current or {}, 0, WHEN, WHEN), event,
                      robot=guard.check(parsed, OWN))
    people = [s.participant.email for s in decision.steps if s.status is not None]
    return decision.action.value, people, decision, parsed


SIG = "\n\nViele Grüße\nPetra Klein\nAWO Unterbezirk Dortmund"

CASES = [
    # 1 — robots without the headers that say so
    ("ooo-subject-names-stand-in",
     mk("ich bin bis 6.12. nicht im Büro. In dringenden Fällen wenden Sie sich bitte an meine "
        "Kollegin Anna Schmidt, a.schmidt@awo-dortmund.de.",
        "Abwesenheitsnotiz: Einladung und Anmeldung: Auftakttreffen"), "ignore", []),
    ("ooo-english-body",
     mk("I am out of the office until 6 December and won't be able to respond until my "
        "return. Please contact Jane Smith (jane.smith@example.org)."), "ignore", []),
    ("ooo-reply-to-our-cancellation",
     mk("Ich bin bis 6.12. nicht im Büro.",
        "Automatische Antwort: Abmeldung bestätigt: Digitales Auftakttreffen"), "ignore", []),
    ("ooo-reply-to-not-registered",
     mk("Ich nehme vom 1. bis 5.12. an einer Fortbildung teil.",
        "Automatische Antwort: Keine Anmeldung gefunden: Digitales Auftakttreffen"),
     "ignore", []),
    ("precedence-auto-reply", mk("Danke für Ihre Nachricht.", extra="Precedence: auto_reply"),
     "ignore", []),
    ("read-receipt-subject",
     mk("Ihre Nachricht wurde gelesen.", "Gelesen: Anmeldung nicht mehr möglich: Treffen"),
     "ignore", []),
    ("read-receipt-mdn",
     mk("--b\nContent-Type: text/plain\n\nAnmeldung gelesen.\n--b--",
        "Anmeldung Auftakttreffen",
        ctype='multipart/report; report-type=disposition-notification; boundary="b"'),
     "ignore", []),
    ("out-of-office-english-subject",
     mk("Thank you for your message.", "Out of Office: Registration"), "ignore", []),
    # 2 — nobody is registered who did not ask
    ("gmx-quote-cut",
     mk("leider habe ich an dem Tag schon einen anderen Termin.\n\n"
        "Gesendet: Montag, 17. Mai 2021 um 10:00 Uhr\n"
        'Von: "Nathalie Collinet" <n.collinet@isi-innovation.de>\nAn: p.klein@awo-dortmund.de\n'
        "Betreff: Einladung: Auftakttreffen\n\nBitte melden Sie sich bis zum 30.5. an. "
        "Bei Fragen: Max Weber, m.weber@isi-innovation.de"), "review", []),
    ("t-online-quote-cut",
     mk("Ich kann leider nicht.\n\n-----Original-Nachricht-----\nBetreff: Einladung\n"
        "Bitte melden Sie sich an. Kontakt: Max Weber, m.weber@isi-innovation.de"),
     "cancel", [PETRA]),
    ("invoice-address-is-no-participant",
     mk("hiermit melde ich mich an. Die Rechnung bitte an unsere Buchhaltung "
        "buchhaltung@awo-dortmund.de." + SIG), "register", [PETRA]),
    ("deputy-in-signature",
     mk("hiermit melde ich mich an." + SIG
        + "\nVertretung: Anna Schmidt, a.schmidt@awo-dortmund.de"),
     "register", [PETRA]),
    ("office-address-in-signature",
     mk("hiermit melde ich mich an." + SIG + "\nGeschäftsstelle | info@awo-dortmund.de"),
     "register", [PETRA]),
    ("colleague-for-questions-only",
     mk("ich nehme gerne teil. Bei Rückfragen erreichen Sie auch meine Kollegin Anna Schmidt "
        "(a.schmidt@awo-dortmund.de)." + SIG), "register", [PETRA]),
    ("question-about-fee", mk("ist die Teilnahme für uns Ehrenamtliche kostenlos?" + SIG),
     "review", []),
    ("question-english", mk("can I join online as well?" + SIG), "review", []),
    ("indirect-question", mk("ich möchte nachfragen, ob man auch online teilnehmen kann." + SIG),
     "review", []),
    ("indirect-question-2",
     mk("ich würde gern wissen, ob ich auch nur am Nachmittag teilnehmen kann." + SIG),
     "review", []),
    ("tentative", mk("ich würde gerne teilnehmen, muss das aber erst mit meiner Chefin "
                     "abklären." + SIG), "review", []),
    ("will-write-again", mk("ich melde mich nächste Woche noch einmal, wenn ich weiß, wer von "
                            "uns an dem Termin Zeit hat." + SIG), "review", []),
    ("ich-nehme-an-dass", mk("ich nehme an, dass ein Teil des Treffens online stattfindet."
                             + SIG), "review", []),
    ("other-event-invitation",
     mk("Liebe Engagierte,\n\nBitte melden Sie sich bis zum 1.3. über unsere Webseite an.",
        "Einladung Ehrenamtstag", "Freiwilligenagentur <veranstaltungen@fwa-bochum.de>"),
     "review", []),
    ("registers-the-mayor-without-address",
     mk("ich melde Herrn Bürgermeister Dr. Weber zum Auftakttreffen an." + SIG), "review", []),
    ("mayor-takes-part-without-address",
     mk("Herr Dr. Weber nimmt gerne am Auftakttreffen teil." + SIG, "Anmeldung"), "review", []),
    ("office-address-field-in-signature",
     mk("ich melde mich an." + SIG + "\nE-Mail: info@awo-dortmund.de"), "register", [PETRA]),
    # 3 — cancellation and registration are not confused
    ("nicht-dabei", mk("diesmal sind wir leider nicht dabei." + SIG), "cancel", [PETRA]),
    ("nicht-teil", mk("wir nehmen dieses Mal leider nicht teil." + SIG), "cancel", [PETRA]),
    ("verhindert", mk("leider bin ich an dem Tag verhindert." + SIG, "Anmeldung"), "cancel",
     [PETRA]),
    ("zurueckziehen", mk("leider muss ich meine Anmeldung zurückziehen." + SIG), "cancel",
     [PETRA]),
    ("nicht-zum-treffen-kommen", mk("ich kann leider nicht zum Treffen kommen." + SIG),
     "cancel", [PETRA]),
    ("link-does-not-work",
     mk("der Zoom-Link klappt bei mir nicht, können Sie ihn nochmal schicken?" + SIG),
     "review", []),
    ("a-bit-late", mk("danke für die Bestätigung! Ich schaffe es leider nicht ganz pünktlich, "
                      "komme 15 Min. später." + SIG), "noop", []),
    ("sage-bescheid-ab-wann", mk("Ich sage Ihnen noch Bescheid, ab wann ich genau da bin."
                                 + SIG), "review", []),
    ("melde-mich-ab-wann", mk("ich melde mich nochmal, sobald ich weiß, ab wann ich kommen "
                              "kann." + SIG), "review", []),
    ("substitute", mk("ich kann leider nicht teilnehmen. Statt meiner kommt meine Kollegin "
                      "Anna Schmidt (a.schmidt@awo-dortmund.de)." + SIG), "review", []),
    ("thanks-then-cancel", mk("vielen Dank für die Bestätigung. Leider bin ich nun doch "
                              "verhindert." + SIG), "cancel", [PETRA]),
    # 4 — registrations are not lost
    ("komme-gerne", mk("vielen Dank für die Einladung, ich komme gerne." + SIG), "register",
     [PETRA]),
    ("me-and-a-colleague",
     mk("ich melde mich an. Bitte melden Sie auch meine Kollegin Anna Schmidt "
        "(a.schmidt@awo-dortmund.de) an." + SIG), "register",
     [PETRA, "a.schmidt@awo-dortmund.de"]),
    ("colleague-without-address",
     mk("wir melden uns zu zweit an: ich und Herr Thomas Becker." + SIG), "review", []),
    ("conditional-cancel", mk("ich melde mich hiermit an. Falls ich doch nicht kommen kann, "
                              "sage ich rechtzeitig ab." + SIG), "register", [PETRA]),
]


@pytest.mark.parametrize("raw, action, people", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_case(raw, action, people, event):
    current = {PETRA: "confirmed"} if action == "cancel" else {}
    got_action, got_people, decision, _ = outcome(raw, event, current)
    assert (got_action, got_people) == (action, people), decision.reason


@pytest.mark.parametrize("sender, body, name", [
    ('"van der Berg, Jan" <j.vdb@x.example>', "ich melde mich an.", "Jan van der Berg"),
    ('"Schmidt, Anna (Caritas Bochum)" <a@x.example>', "ich melde mich an.", "Anna Schmidt"),
    ("Petra Klein <p@x.example>", "ich melde mich an.\nTeilnehmer: 1 Person", "Petra Klein"),
])
def test_names(sender, body, name, event):
    *_, parsed = outcome(mk(body, sender=sender), event)
    assert [p.name for p in parsed.participants] == [name]


def test_list_with_particles_keeps_the_whole_name(event):
    raw = mk("wir melden folgende Personen an:\n1. Jan van der Berg, j.vdb@x.example\n"
             "2. Anna Schmidt, a.s@x.example" + SIG)
    *_, parsed = outcome(raw, event)
    assert [p.name for p in parsed.participants] == ["Jan van der Berg", "Anna Schmidt"]


def test_event_name_is_not_an_organisation(event):
    *_, parsed = outcome(mk("hiermit melde ich mich für das Auftakttreffen des Netzwerks "
                            "Ehrenamt an.\n\nViele Grüße\nPetra Klein"), event)
    assert parsed.participants[0].organisation is None


def test_a_list_line_without_a_readable_name_goes_to_a_human(event):
    raw = mk("wir melden uns an:\n1. anna.b@verein.example\n2. Petra Lange, lange@x.example"
             + SIG)
    action, people, decision, _ = outcome(raw, event)
    assert (action, people) == ("review", [])
    assert decision.reason == "Liste nicht vollständig lesbar (anna.b@verein.example)"


# -- issue 12: evidence, this event only, no silent move, every sentence accounted for ------

ISSUE_12 = [
    ("third-person-cancel-without-address",
     mk("Frau Brandt ist leider erkrankt und kann am 31. nicht dabei sein. Ich komme aber."
        + SIG), "review", []),
    ("third-person-cancel-with-address",
     mk("meine Kollegin Anna Schmidt (a.schmidt@awo-dortmund.de) kann leider nicht teilnehmen."
        " Ich selbst bleibe angemeldet." + SIG), "cancel", ["a.schmidt@awo-dortmund.de"]),
    ("registers-someone-who-has-no-address",
     mk("ich möchte Herrn Günter Pieper aus unserem Vorstand anmelden. Er hat keine eigene "
        "Adresse, bitte schicken Sie alles an mich." + SIG), "review", []),
    ("address-in-the-next-sentence",
     mk("Frau Dr. Elisabeth Kampmann nimmt gern am Auftakttreffen teil. Bitte senden Sie den "
        "Zoom-Link an e.kampmann@kreis-soest.de." + SIG,
        sender="Büro der Landrätin <buero@kreis-soest.de>"), "register",
     ["e.kampmann@kreis-soest.de"]),
    ("another-event", mk("hiermit melde ich mich zum Fachtag am 17. Juni an." + SIG), "review",
     []),
    ("another-date", mk("ich melde mich für das Treffen am 7.6. an." + SIG), "review", []),
    ("in-person-elsewhere",
     mk("Es soll im Herbst eine Präsenzveranstaltung geben. Dafür würde ich mich gern anmelden."
        + SIG), "review", []),
    ("the-events-own-day-agrees",
     mk("hiermit melde ich mich für Montag, den 31.05., zum Auftakttreffen an." + SIG),
     "register", [PETRA]),
    ("thanks-next-to-a-request-is-a-registration",
     mk("danke für die Einladung, bitte setzen Sie mich auf die Teilnehmerliste." + SIG),
     "register", [PETRA]),
    ("thanks-with-a-correction-is-no-thank-you",
     mk("danke für die Bestätigung! Mein Name wird übrigens mit Doppelnamen geschrieben, bitte "
        "korrigieren Sie das auf dem Namensschild." + SIG), "review", []),
    ("bescheid-ob-is-a-question",
     mk("geben Sie mir Bescheid, ob noch Plätze frei sind. Dann würde ich mich anmelden." + SIG),
     "review", []),
    ("clipped-lower-case", mk("hirmit meld ich mich an für den 31.5. online\n\ngruß petra"),
     "register", [PETRA]),
    ("english-put-me-down", mk("please put me down for the kick-off meeting." + SIG),
     "register", [PETRA]),
    ("out-of-office-with-a-question-is-a-persons",
     mk("ich bin bis 28.5. im Urlaub. Wird das Treffen aufgezeichnet?" + SIG), "review", []),
]


@pytest.mark.parametrize("raw, action, people", [c[1:] for c in ISSUE_12],
                         ids=[c[0] for c in ISSUE_12])
def test_issue_12_case(raw, action, people, event):
    current = {PETRA: "confirmed", "a.schmidt@awo-dortmund.de": "confirmed"} if (
        action == "cancel") else {}
    got_action, got_people, decision, _ = outcome(raw, event, current)
    assert (got_action, got_people) == (action, people), decision.reason


def outcome_12(raw: bytes, event, current=None):
    """The decision alone (``outcome`` reads the mail the same way)."""
    return outcome(raw, event, current)[2]


def test_the_reason_names_the_deciding_sentence(event):
    decision = outcome_12(mk("vielen Dank! Hiermit melde ich mich zum Auftakttreffen an." + SIG),
                          event)
    assert decision.reason == "Anmeldung: ‚Hiermit melde ich mich zum Auftakttreffen an.‘"


def test_a_leftover_sentence_flags_a_certain_registration_and_is_named(event):
    decision = outcome_12(mk("hiermit melde ich mich an. Mein Mann Hans hat keine Adresse."
                             + SIG), event)
    assert decision.action.value == "register" and decision.attention
    assert "‚Mein Mann Hans hat keine Adresse.‘" in decision.reason


def test_format_flowed_reads_the_same_as_one_line(event):
    flowed = mk("hiermit melde ich mich zum Digitalen Auftakttreffen am 31. Mai \nan, mit "
                "Grüßen \naus Solingen.", ctype="text/plain; charset=utf-8; format=flowed")
    parsed = parse_mail(flowed, OWN)
    assert "31. Mai an, mit Grüßen aus Solingen." in parsed.text
    assert outcome_12(flowed, event).action.value == "register"


def calendar_reply(partstat: str, comment: str = "") -> bytes:
    ics = ("BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\n"
           f"ATTENDEE;PARTSTAT={partstat};CN=Petra Klein:mailto:{PETRA}\n"
           + (f"COMMENT:{comment}\n" if comment else "") + "END:VEVENT\nEND:VCALENDAR\n")
    body = f"--b\nContent-Type: text/calendar; method=REPLY; charset=utf-8\n\n{ics}--b--"
    return mk(body, "Abgelehnt: Auftakttreffen", ctype='multipart/alternative; boundary="b"')


@pytest.mark.parametrize("partstat, comment, action, attention", [
    ("ACCEPTED", "", "noop", False),
    ("ACCEPTED", "Kann ich eine Kollegin mitbringen?", "review", False),
    ("DECLINED", "", "cancel", False),
    ("DECLINED", "Schicken Sie mir bitte die Folien?", "cancel", True),
    ("TENTATIVE", "", "review", False),
])
def test_calendar_replies_by_partstat(partstat, comment, action, attention, event):
    decision = outcome_12(calendar_reply(partstat, comment), event, {PETRA: "confirmed"})
    assert (decision.action.value, decision.attention) == (action, attention), decision.reason
    if action == "cancel":
        assert [s.participant.email for s in decision.steps if s.status] == [PETRA]


def test_the_word_hints_never_hide_a_match():
    """classify tests a few words before its long patterns (for speed): on every sentence
    of the corpora and of these tests, a pattern that matches has its words there."""
    import re as regex
    from pathlib import Path

    from conftest import MAILS, SAMPLES

    from mailbot.reading import classify, conditions, eventfacts, hints
    from mailbot.reading.sentences import has_any, sentences

    texts = [parse_mail(p.read_bytes(), OWN).text for folder in (SAMPLES, MAILS, MAILS / "blind")
             for p in sorted(folder.glob("*.eml"))]
    for test in Path(__file__).parent.glob("test_*.py"):
        texts += regex.findall(r'"([^"\n]{8,})"', test.read_text(encoding="utf-8"))
    pairs = [*classify.WORD_HINTS, *hints.WORD_HINTS, *conditions.WORD_HINTS,
             (eventfacts.DATE, eventfacts.DATE_WORDS + tuple("0123456789"))]
    assert len(pairs) == 19
    for sentence in (s for t in texts for s in sentences(t)):
        for pattern, words in pairs:
            assert not pattern.search(sentence) or has_any(sentence.lower(), words), sentence
        assert not hints.TITLED.search(sentence) or has_any(sentence, hints.TITLE_WORDS), \
            sentence


@pytest.mark.parametrize("body, organisation", [
    ("please put me down as Caritas Essen instead of Diakonie Essen. Thanks!"
     "\n\nBest regards\nPetra Klein\nDiakonie Essen e.V.", "Caritas Essen"),
    ("Correction: I registered last week - my organisation is now the Volunteer Centre Leeds."
     "\n\nBest\nPetra Klein", "Volunteer Centre Leeds"),
    ("ich bin ehrenamtlich im Hospizverein Unna aktiv und melde mich hiermit an.\n\nViele Grüße"
     "\nPetra Klein",
     "Hospizverein Unna"),
])
def test_a_correction_of_ones_own_registration_updates_the_organisation(body, organisation,
                                                                       event):
    decision = outcome_12(mk(body), event, {PETRA: "confirmed"})
    [step] = decision.steps
    assert step.participant.organisation == organisation
    if "Correction" in body or "put me down" in body:
        assert step.reply.value == "duplicate", "already registered: the row is corrected"
