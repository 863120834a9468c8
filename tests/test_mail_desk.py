"""The organiser's desk in her mail program (issue 22), against the real Dovecot and
aiosmtpd: mail moved with an IMAP client as a mail program would — into mailbot/Anmelden
(registered and answered), mailbot/Erledigt (settled, no reply) — her own reply in Sent,
and the place held while a human reads."""

from __future__ import annotations

import email.utils
from dataclasses import replace

from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows

from mailbot.cli import main
from mailbot.config import load
from mailbot.core.clock import now_utc
from mailbot.service.digest import build
from mailbot.store import Store

APPROVE, SETTLE = "mailbot.Anmelden", "mailbot.Erledigt"  # Dovecot's Maildir separator: "."
WITH_COLLEAGUE = ("hiermit melde ich mich zum Auftakttreffen an. Mein Kollege Herr Brandt "
                  "möchte auch teilnehmen.")
QUESTION = "wird das Treffen aufgezeichnet? Ich kann erst ab 13 Uhr."


def cli(config, *args, code=0):
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == code, result.output
    return result.output


def move(mailbox, needle: bytes, target: str, copy: bool = False) -> None:
    """Move the inbox mail containing ``needle`` into ``target`` as a mail program does:
    MOVE, or COPY + STORE \\Deleted + EXPUNGE."""
    client = mailbox.client
    client.select_folder("INBOX")
    data = client.fetch(client.search(), ["BODY.PEEK[]"])
    [uid] = [u for u, d in data.items() if needle in d[b"BODY[]"]]
    if copy:
        client.copy([uid], target)
        client.delete_messages([uid])
        client.expunge()
    else:
        client.move([uid], target)
    client.unselect_folder()


def status_of(config, address):
    return rows(config, "SELECT status FROM registrations WHERE email = ?", address)


def test_the_desk_folders_are_made_at_start(mailbox, smtp, make_config):
    config = make_config()
    cli(config, "run", "--once")
    names = {name for _, _, name in mailbox.client.list_folders()}
    assert {APPROVE, SETTLE} <= names


def test_moved_into_anmelden_is_registered_answered_and_moved_on(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Karin Otto", "k.otto@verein.example", WITH_COLLEAGUE))
    cli(config, "run", "--once")
    assert smtp.envelopes == [], "for review: nothing sent"
    assert status_of(config, "k.otto@verein.example") == [("held",)], "her place is kept"
    assert "held" in cli(config, "list")
    assert rows(config, 'SELECT "Status" FROM teilnehmende') == [("vorgemerkt",)]
    move(mailbox, b"Brandt", APPROVE)
    cli(config, "run", "--once")
    [reply] = smtp.envelopes
    assert reply.rcpt_tos == ["k.otto@verein.example"]
    assert status_of(config, "k.otto@verein.example") == [("confirmed",)]
    assert rows(config, "SELECT decided_by, resolved_at IS NOT NULL FROM messages "
                        "WHERE sender = 'k.otto@verein.example'") == [
        ("Ordner mailbot/Anmelden", 1)]
    assert mailbox.folder(APPROVE) == {}, "it left the folder"
    [moved] = [m for m in mailbox.folder("Processed").values() if b"Brandt" in m["raw"]]
    assert b"\\Flagged" not in moved["flags"]
    assert cli(config, "review") == "Nothing waits for review.\n"
    cli(config, "run", "--once")
    assert len(smtp.envelopes) == 1, "never answered twice"


def test_moved_into_erledigt_leaves_review_without_a_reply(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION))
    cli(config, "run", "--once")
    assert "aufgezeichnet" in cli(config, "review")
    move(mailbox, b"aufgezeichnet", SETTLE, copy=True)
    cli(config, "run", "--once")
    assert smtp.envelopes == []
    assert cli(config, "review") == "Nothing waits for review.\n"
    assert rows(config, "SELECT decided_by FROM messages WHERE sender = 'heike@awo.example'"
                ) == [("Ordner mailbot/Erledigt",)]
    assert mailbox.folder(SETTLE) == {} and mailbox.folder("INBOX") == {}
    assert len(mailbox.folder("Processed")) == 1


def test_a_held_place_is_kept_against_later_writers(mailbox, smtp, make_config):
    config = make_config(capacity=2)
    mailbox.append(registration_mail("Karin Otto", "k.otto@verein.example", WITH_COLLEAGUE))
    cli(config, "run", "--once")
    mailbox.append(registration_mail("Bernd Lutz", "bernd@b.example"))
    mailbox.append(registration_mail("Clara Sommer", "clara@c.example"))
    cli(config, "run", "--once")
    assert status_of(config, "bernd@b.example") == [("confirmed",)]
    assert status_of(config, "clara@c.example") == [("waitlisted",)], "the held place counts"
    assert sorted(r.rcpt_tos[0] for r in smtp.envelopes) == ["bernd@b.example",
                                                             "clara@c.example"]
    smtp.envelopes.clear()
    [(number,)] = rows(config, "SELECT rowid FROM messages WHERE action = 'review'")
    out = cli(config, "approve", str(number))
    assert out.startswith("k.otto@verein.example: confirmed"), out
    assert [r.rcpt_tos for r in smtp.envelopes] == [["k.otto@verein.example"]]
    assert rows(config, "SELECT count(*) FROM registrations WHERE status = 'confirmed'"
                ) == [(2,)], "capacity is never exceeded"
    assert rows(config, "SELECT decided_by FROM messages WHERE rowid = ?", number) == [
        ("mailbot approve",)]


def test_dismissing_releases_the_held_place_to_the_waitlist(mailbox, smtp, make_config):
    config = make_config(capacity=1)
    mailbox.append(registration_mail("Karin Otto", "k.otto@verein.example", WITH_COLLEAGUE))
    cli(config, "run", "--once")
    mailbox.append(registration_mail("Clara Sommer", "clara@c.example"))
    cli(config, "run", "--once")
    assert status_of(config, "clara@c.example") == [("waitlisted",)]
    move(mailbox, b"Brandt", SETTLE)
    smtp.envelopes.clear()
    cli(config, "run", "--once")
    assert status_of(config, "k.otto@verein.example") == [], "released: no reply to her"
    assert status_of(config, "clara@c.example") == [("confirmed",)], "the waitlist moved up"
    assert [r.rcpt_tos for r in smtp.envelopes] == [["clara@c.example"]]


def test_her_own_reply_in_sent_marks_it_answered_by_hand(mailbox, smtp, make_config):
    config = make_config()
    msgid = email.utils.make_msgid(domain="awo.example")
    other = email.utils.make_msgid(domain="b.example")
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION, msgid))
    mailbox.append(registration_mail("Bernd Lutz", "bernd@b.example", QUESTION, other))
    sent = "Gesendete Objekte"  # the mail program's Sent folder (\\Sent in the test Dovecot)
    mailbox.client.create_folder(sent)
    cli(config, "run", "--once")
    mailbox.append((f"From: Nathalie Collinet <{CONTACT}>\r\nTo: heike@awo.example\r\n"
                    f"Subject: Re: Anmeldung\r\nIn-Reply-To: {msgid}\r\nMessage-ID: "
                    f"<answer@isi-innovation.de>\r\n\r\nJa, es wird aufgezeichnet.\r\n"
                    ).encode(), folder=sent)
    mailbox.append((f"From: {CONTACT}\r\nTo: bernd@b.example\r\nSubject: Re: Anmeldung\r\n"
                    f"In-Reply-To: {other}\r\nAuto-Submitted: auto-replied\r\n"
                    f"Message-ID: <robot@isi-innovation.de>\r\n\r\nAutomatisch.\r\n"
                    ).encode(), folder=sent)
    cli(config, "run", "--once")
    assert rows(config, "SELECT sender, decided_by FROM messages WHERE resolved_at IS NOT "
                        "NULL") == [("heike@awo.example", "eigene Antwort im Ordner Gesendet")]
    review = cli(config, "review")
    assert "bernd@b.example" in review and "heike@awo.example" not in review
    assert [b"awo.example" in m["raw"] for m in mailbox.folder("INBOX").values()] == [False]
    assert smtp.envelopes == []


def test_a_mail_mailbot_never_read_comes_back_flagged(mailbox, smtp, make_config):
    config = make_config()
    cli(config, "run", "--once")
    mailbox.append(registration_mail("Dora Falk", "dora@d.example"), folder=APPROVE)
    cli(config, "run", "--once")
    assert smtp.envelopes == [], "not acted on blindly"
    assert mailbox.folder(APPROVE) == {}
    [back] = mailbox.folder("INBOX").values()
    assert b"\\Flagged" in back["flags"]
    assert "bevor mailbot die Mail gelesen hatte" in cli(config, "review")
    move(mailbox, b"Dora Falk", APPROVE)
    cli(config, "run", "--once")
    assert [r.rcpt_tos for r in smtp.envelopes] == [["dora@d.example"]]
    assert status_of(config, "dora@d.example") == [("confirmed",)]


def test_the_digest_says_what_was_decided_by_hand(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Karin Otto", "k.otto@verein.example", WITH_COLLEAGUE))
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION))
    mailbox.append(registration_mail("Bernd Lutz", "bernd@b.example", QUESTION))
    cli(config, "run", "--once")
    move(mailbox, b"Brandt", APPROVE)
    move(mailbox, b"Heike", SETTLE)
    cli(config, "run", "--once")
    [(number,)] = rows(config, "SELECT rowid FROM messages WHERE sender = 'bernd@b.example'")
    cli(config, "dismiss", str(number))
    with Store(config.parent / "mailbot.sqlite") as store:
        loaded = load(config)
        with_digest = replace(loaded, digest=replace(loaded.digest, to="orga@isi.example"))
        digest = build(with_digest, store, now_utc())
    text = email.message_from_bytes(digest.body).get_payload(0).get_payload(decode=True)
    assert "Von Hand angemeldet: 1, erledigt: 2" in text.decode()


def test_a_reply_that_cannot_be_made_sends_the_mail_back_and_the_round_goes_on(
        mailbox, smtp, make_config, tmp_path):
    """Approving from mailbot/Anmelden when the reply cannot be rendered (a template that
    fails for this mail) refuses as any approval that cannot be done: the mail comes back
    flagged with the reason, and the round reads the inbox as always."""
    import shutil

    from mailbot.replies.compose import default_templates

    config = make_config()
    mailbox.append(registration_mail("Karin Otto", "k.otto@verein.example", WITH_COLLEAGUE))
    cli(config, "run", "--once")
    folder = tmp_path / "templates"
    folder.mkdir()
    shutil.copy(default_templates() / "confirmation.de.txt", folder)
    (folder / "confirmation.de.txt").write_text("{{ person.name.gibt.es_nicht }}\n")
    config.write_text(config.read_text() + f'\n[templates]\npath = "{folder}"\n')
    move(mailbox, b"Brandt", APPROVE)
    mailbox.append(registration_mail("Bernd Lutz", "bernd@b.example"))

    cli(config, "run", "--once")

    assert smtp.envelopes == []
    assert status_of(config, "k.otto@verein.example") == [("held",)], "still held"
    [back] = [m for m in mailbox.folder("INBOX").values() if b"Brandt" in m["raw"]]
    assert b"\\Flagged" in back["flags"]
    [(reason,)] = rows(config, "SELECT reason FROM messages WHERE sender = ?",
                       "k.otto@verein.example")
    assert reason.startswith("aus mailbot/Anmelden zurück") and "nicht erstellbar" in reason
    assert rows(config, "SELECT action FROM messages WHERE sender = 'bernd@b.example'") == [
        ("review",)], "the inbox was read"


def test_an_internal_error_with_a_moved_mail_sends_it_back_and_the_round_goes_on(
        mailbox, smtp, make_config, monkeypatch):
    """A mistake of mailbot's own while deciding one moved mail must not stop every round
    after it (the desk folders are read before the inbox): that mail comes back flagged,
    the traceback is logged, and the inbox is read as always."""
    from mailbot.service import deskround

    config = make_config()
    mailbox.append(registration_mail("Karin Otto", "k.otto@verein.example", WITH_COLLEAGUE))
    cli(config, "run", "--once")
    move(mailbox, b"Brandt", APPROVE)
    mailbox.append(registration_mail("Bernd Lutz", "bernd@b.example"))

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(deskround, "approve", broken)
    cli(config, "run", "--once")

    [back] = [m for m in mailbox.folder("INBOX").values() if b"Brandt" in m["raw"]]
    assert b"\\Flagged" in back["flags"]
    assert mailbox.folder(APPROVE) == {}
    assert rows(config, "SELECT action FROM messages WHERE sender = 'bernd@b.example'") == [
        ("register",)], "the inbox was read and answered"
