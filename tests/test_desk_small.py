"""Issue 22 point 7, the smaller points: the greeting of an office, purge naming the mail
it deletes unanswered, review after an erase, marks of a locked database while sending.
Real Dovecot and aiosmtpd; a fake only for a stall."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import email.utils
import sqlite3
import threading

from click.testing import CliRunner
from conftest import CONTACT, registration_mail, rows, wait_for, with_port
from servers import RecordingHandler, free_port
from test_desk_commands import cli, event_db  # noqa: F401  (the fixture)

from mailbot import config as config_mod
from mailbot.cli import common as cli_mod
from mailbot.cli import main
from mailbot.core.models import Participant, Registration, ReplyKind, Status
from mailbot.mail import sentfile
from mailbot.mail import smtp as smtp_mod
from mailbot.replies.compose import Composer
from mailbot.service.loop import run_once

NOW = dt.datetime(2021, 5, 21, 8, 0, tzinfo=dt.UTC)


def invoke(config, *args, **kwargs):
    return CliRunner().invoke(main, ["--config", str(config), *args], **kwargs)


def text_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


# -- (b) "Guten Tag Sekretariat Bürgermeisterin" -------------------------------------------

def test_an_office_is_greeted_neutrally(example_config):
    composer = Composer(example_config)
    for office in ("Sekretariat Bürgermeisterin", "Büro Dr. Lange", "Vorzimmer Landrat",
                   "Geschäftsstelle Kreisverband", "Team Quartiersarbeit", "Info",
                   "Verwaltung"):
        reg = Registration("sek@stadt.example", office, None, Status.CONFIRMED,
                           "uid-1@isi-innovation.de", 0, NOW, "<m@stadt.example>")
        reply = composer.reply(ReplyKind.CONFIRMATION, Participant(reg.email, office), reg,
                               "<m@stadt.example>", NOW)
        assert text_of(reply.body).startswith("Guten Tag,\n"), office
    reply = composer.reply(ReplyKind.CONFIRMATION, Participant("anna@a.example", "Anna Arndt"),
                           None, None, NOW)
    assert text_of(reply.body).startswith("Guten Tag Anna Arndt,"), "a person by name"


OFFICE_MAIL = (
    "From: {sender}\r\n"
    "To: Nathalie Collinet <{to}>\r\nSubject: Anmeldung Auftakttreffen\r\n"
    "Date: Fri, 21 May 2021 09:00:00 +0200\r\nMessage-ID: <{mid}@stadt.example>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nGuten Tag,\r\n\r\n{text}\r\n\r\n"
    "Mit freundlichen Grüßen\r\n{sig}Stadt Gladbeck\r\n")


def office_mail(text: str, sig: str = "", mid: str = "a1",
                office: str = "Sekretariat Bürgermeisterin",
                address: str = "sekretariat@stadt.example") -> bytes:
    sender = email.utils.formataddr((office, address), charset="utf-8")
    return OFFICE_MAIL.format(sender=sender, to=CONTACT, mid=mid, text=text, sig=sig).encode()


def test_a_secretary_is_greeted_by_her_signature_and_an_office_neutrally(mailbox, smtp,
                                                                       make_config):
    config = make_config()
    mailbox.append(office_mail(
        "im Auftrag von Frau Bürgermeisterin Karin Schulz melde ich sie an: "
        "k.schulz@stadt.example", "i. A. Monika Berger\r\n"))
    mailbox.append(office_mail("hiermit melde ich mich an.", mid="a2",
                               office="Büro Bürgermeisterin", address="buero@stadt.example"))

    result = invoke(config, "run", "--once")

    assert result.exit_code == 0, result.output
    texts = {e.rcpt_tos[0]: text_of(e.content) for e in smtp.envelopes}
    assert texts["sekretariat@stadt.example"].startswith("Guten Tag Monika Berger,"), texts
    assert texts["k.schulz@stadt.example"].startswith("Guten Tag Karin Schulz,")
    assert "buero@stadt.example" not in texts, "an office address, nobody named: a human"
    assert not any("Sekretariat" in t.split("\n")[0] or "Büro" in t.split("\n")[0]
                   for t in texts.values())


# -- (a) purge --now names the review mail it deletes; review has no phantoms after -------

def test_purge_now_names_the_review_mail_and_review_is_empty_after(event_db, mailbox,  # noqa: F811
                                                                   monkeypatch):
    assert "1 mail waits for a human" in cli(event_db, "review")
    monkeypatch.setattr(cli_mod, "interactive", lambda: True)
    result = invoke(event_db, "purge", "--now", input="y\n")
    assert result.exit_code == 0, result.output
    question = result.output.split("Erase it all now?")[0]
    [head, entry] = [line for line in question.splitlines() if "review" in line or
                     line.startswith("  [")]
    assert head == "1 mail still waiting for review will be deleted unanswered:"
    assert entry.startswith("  [") and "] 21.05.2021 " in entry
    assert entry.endswith("  Anmeldung Auftakttreffen")
    assert "aufgezeichnet" not in question, "no body"
    assert "heike@awo.example" not in question, "no sender"
    assert mailbox.folder("INBOX") == {}
    assert cli(event_db, "review").strip() == "Nothing waits for review."


def test_forget_settles_the_persons_review_mail(event_db, mailbox):  # noqa: F811
    assert "heike@awo.example" in cli(event_db, "review")
    cli(event_db, "forget", "heike@awo.example", "--yes")
    assert not [m for m in mailbox.folder("INBOX").values() if b"heike@awo.example" in m["raw"]]
    assert cli(event_db, "review").strip() == "Nothing waits for review."
    assert "Jürgen Weiß" in cli(event_db, "list"), "the others stay"


# -- (d) a locked database while sending holds up no other SMTP connection ----------------

class HeldData(RecordingHandler):
    """An SMTP server that answers the end of DATA only once ``answer`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()
        self.started = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.started += 1
        while not self.answer.is_set():
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_a_locked_database_holds_up_no_other_connection(mailbox, make_config, monkeypatch):
    from aiosmtpd.controller import Controller

    handler = HeldData()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setattr(smtp_mod, "PER_CONNECTION", 1)  # two replies, two connections
    config = make_config()
    config.write_text(with_port(config.read_text(), "smtp", controller.port))
    database = config.parent / "mailbot.sqlite"
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))
    run = threading.Thread(target=run_once, args=(config_mod.load(config),))
    run.start()
    lock = None
    try:
        assert wait_for(lambda: handler.started == 2), "both replies on their way"
        lock = sqlite3.connect(database)
        lock.execute("BEGIN IMMEDIATE")  # another program holds the database
        handler.answer.set()
        assert wait_for(lambda: len(sentfile.read(database)) == 2, timeout=15), \
            "the second connection's reply is kept while the first one's mark waits"
    finally:
        handler.answer.set()
        if lock is not None:
            lock.rollback()
            lock.close()
        run.join(60)
        controller.stop()
    assert not run.is_alive()
    assert rows(config, "SELECT status FROM outbox ORDER BY id") == [("sent",), ("sent",)]
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == ["anna@a.example",
                                                                "bernd@b.example"]
