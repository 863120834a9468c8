"""Corrections by hand: edit a person, the waitlist, move someone up — against a database
made by a real run (Dovecot + aiosmtpd)."""

from __future__ import annotations

import email
import email.policy

from conftest import registration_mail, rows
from test_desk_commands import cli, event_db  # noqa: F401  (the fixture)


def parsed(envelope):
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def calendar_uid(msg) -> str | None:
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            text = part.get_content().replace("\r\n ", "")
            return text.split("UID:", 1)[1].split("\r\n", 1)[0].strip()
    return None


def test_edit_name_sends_the_confirmation_with_the_corrected_name(event_db, smtp):  # noqa: F811
    """A careful secretary tells the person: the confirmation again, its calendar entry
    with the corrected name (and a new sequence, so calendars take it)."""
    out = cli(event_db, "edit", "jan@berg.example", "--name", "Jan van den Berg",
              "--organisation", "Stadtteilbüro Nord")
    assert out.splitlines()[0] == ("jan@berg.example: name: 'Jan van der Berg' → 'Jan van den "
                                   "Berg', organisation: None → 'Stadtteilbüro Nord'; "
                                   "confirmation sent again with the corrected name")
    [sent] = smtp.envelopes
    assert sent.rcpt_tos == ["jan@berg.example"]
    msg = email.message_from_bytes(sent.content, policy=email.policy.default)
    [ics] = [p.get_content() for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert "Jan van den Berg" in ics.replace("\r\n ", "") and "van der" not in ics
    assert rows(event_db, "SELECT ics_sequence FROM registrations WHERE email = "
                          "'jan@berg.example'") == [(1,)]
    assert rows(event_db, "SELECT name, organisation, status FROM registrations WHERE email "
                          "= 'jan@berg.example'") == [("Jan van den Berg", "Stadtteilbüro Nord",
                                                      "confirmed")]
    assert "nothing to change" in cli(event_db, "edit", "jan@berg.example", code=1)


def test_edit_organisation_alone_sends_nothing(event_db, smtp):  # noqa: F811
    cli(event_db, "edit", "jan@berg.example", "--organisation", "Stadtteilbüro Nord")
    assert smtp.envelopes == []


def test_edit_address_moves_the_registration_with_its_calendar_entry(event_db, smtp):  # noqa: F811
    [(uid,)] = rows(event_db, "SELECT ics_uid FROM registrations WHERE email = "
                              "'anna@a.example'")
    out = cli(event_db, "edit", "anna@a.example", "--email", "Anna.Arndt@b.example")
    assert out.splitlines() == ["anna@a.example: address: anna@a.example → anna.arndt@b.example",
                                "2 sent"]
    new, old = sorted(smtp.envelopes, key=lambda e: e.rcpt_tos != ["anna.arndt@b.example"])
    assert new.rcpt_tos == ["anna.arndt@b.example"] and old.rcpt_tos == ["anna@a.example"]
    assert calendar_uid(parsed(new)) == uid, "the same calendar entry"
    note = parsed(old)
    assert note["Subject"].startswith("Neue E-Mail-Adresse für Ihre Anmeldung")
    assert calendar_uid(note) is None
    assert "unter der E-Mail-Adresse anna.arndt@b.example" in note.get_body(
        ("plain",)).get_content()
    assert rows(event_db, "SELECT email, ics_uid FROM registrations WHERE ics_uid = ?", uid) \
        == [("anna.arndt@b.example", uid)]
    assert "registered already" in cli(event_db, "edit", "anna.arndt@b.example", "--email",
                                       "jan@berg.example", code=1)


def test_waitlist_and_move_up_by_hand(event_db, mailbox, smtp):  # noqa: F811
    mailbox.append(registration_mail("Wera Wart", "wera@w.example"))
    mailbox.append(registration_mail("Xaver Xu", "xaver@x.example"))
    cli(event_db, "run", "--once")  # capacity 3 is reached: both wait
    smtp.envelopes.clear()
    table = cli(event_db, "list", "--waitlist").splitlines()
    assert [line.split()[0] for line in table[2:-1]] == ["wera@w.example", "xaver@x.example"]
    assert table[-1] == "2 people"
    out = cli(event_db, "move-up", "xaver@x.example")
    assert out.splitlines() == ["xaver@x.example: confirmed (4 confirmed, 1 more than [event] "
                                "capacity)", "1 sent"]
    [reply] = smtp.envelopes
    assert reply.rcpt_tos == ["xaver@x.example"] and calendar_uid(parsed(reply))
    assert "is not on the waitlist (confirmed)" in cli(event_db, "move-up", "xaver@x.example",
                                                       code=1)


def test_add_stores_the_language_of_the_event_or_of_lang(event_db, smtp):  # noqa: F811
    cli(event_db, "add", "tel@anruf.example", "--name", "Petra Telefon")
    cli(event_db, "add", "guest@abroad.example", "--name", "Jane Guest", "--lang", "en")
    assert rows(event_db, "SELECT email, language FROM registrations WHERE email IN "
                          "('tel@anruf.example', 'guest@abroad.example') ORDER BY email") == [
        ("guest@abroad.example", "en"), ("tel@anruf.example", "de")]


def test_cancelling_a_waitlisted_person_does_not_speak_of_a_calendar_entry(event_db, smtp):  # noqa: F811
    """A waitlisted person has no calendar entry: the question says what really happens."""
    cli(event_db, "add", "late@x.example", "--name", "Lena Spät")  # the 4th of 3 places
    asked = cli(event_db, "cancel", "late@x.example", code=1)
    assert "They get a cancellation mail and leave the waitlist." in asked
    assert "calendar entry" not in asked
    confirmed = cli(event_db, "cancel", "anna@a.example", code=1)
    assert "their calendar entry is removed" in confirmed
