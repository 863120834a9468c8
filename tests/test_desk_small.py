"""Issue 22 point 7, the smaller points: the greeting of an office, purge naming the mail
it deletes unanswered, review after an erase, marks of a locked database while sending.
Real Dovecot and aiosmtpd; a fake only for a stall."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils

from click.testing import CliRunner
from conftest import CONTACT

from mailbot.cli import main
from mailbot.core.models import Participant, Registration, ReplyKind, Status
from mailbot.replies.compose import Composer

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
    assert texts["buero@stadt.example"].startswith("Guten Tag,\n"), "an office, unsigned"
    assert not any("Sekretariat" in t.split("\n")[0] or "Büro" in t.split("\n")[0]
                   for t in texts.values())
