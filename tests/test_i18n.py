"""The organiser reads German when the event is German ([event] language, or
organiser_language): the digest, the Excel export, the command output."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner
from conftest import registration_mail, rows

import mailbot
from mailbot.cli import main
from mailbot.rules.lifecycle import PurgeFacts, purge_verdict
from mailbot.service.health import COPY_KEY
from mailbot.store import Store

PACKAGE = Path(mailbot.__file__).parent
PO = PACKAGE / "locale" / "de" / "LC_MESSAGES" / "mailbot.po"
QUESTION = "Hallo,\r\n\r\nwird das Treffen aufgezeichnet? Ich kann erst ab 13 Uhr."
ENGLISH = re.compile(r"\b(new|cancelled|waiting|confirmed|waitlisted|So far|replies|mail|"
                     r"digest|registration|attached)\b")


def german(config: Path) -> Path:
    config.write_text(config.read_text().replace('organiser_language = "en"\n', ""))
    return config


def test_every_text_of_the_code_has_its_german_and_the_mo_is_compiled_from_the_po():
    catalog = read_po(PO.open("rb"))
    found = {m[2] if isinstance(m[2], str) else m[2][0]
             for m in extract_from_dir(PACKAGE, keywords={"tr": None, "N_": None,
                                                          "ngettext": (1, 2)})}
    untranslated = sorted(i for i in found if not (catalog.get(i) and catalog.get(i).string))
    assert not untranslated, "run scripts/catalogue and translate: " + repr(untranslated)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    shipped = read_mo((PO.with_suffix(".mo")).open("rb"))
    def entries(catalog):
        return {str(m.id): str(m.string) for m in catalog if m.id}

    assert entries(read_mo(io.BytesIO(compiled.getvalue()))) == entries(shipped), \
        "mailbot.mo is stale: run scripts/catalogue"


def test_the_digest_of_a_german_event_has_no_english_words(mailbox, smtp, make_config):
    config = german(make_config(capacity=1, extra='\n[digest]\nto = "orga@isi-innovation.de"\n'
                                                  'at = "00:00"\nattach_list = true\n'))
    mailbox.append(registration_mail("Jürgen Weiß", "j.weiss@koeln.example"))
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION))
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "Mails gelesen" in result.output and "Antworten zugestellt" in result.output
    [digest] = [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in smtp.envelopes if e.rcpt_tos == ["orga@isi-innovation.de"]]
    assert digest["Subject"].startswith("mailbot: 2 neu, 0 abgemeldet, 1 warten auf Sie – ")
    text = digest.get_body(("plain",)).get_content()
    assert "  bestätigt  Jürgen Weiß <j.weiss@koeln.example>" in text
    assert "  Warteliste Anna Arndt <anna@a.example>" in text
    assert "im Posteingang markiert (Fähnchen)" in text
    own = text.replace("mailbot dismiss", "").replace("mailbot approve", "")
    body = "\n".join(line for line in own.splitlines() if not line.startswith("    | "))
    assert not ENGLISH.findall(body.replace(digest["Subject"], "")), body
    assert not ENGLISH.findall(digest["Subject"].split(" – ")[0])
    [attachment] = list(digest.iter_attachments())
    assert attachment.get_content().startswith(
        "\ufeffE-Mail;Name;Organisation;Status;angemeldet am;")
    assert ";bestätigt;" in attachment.get_content()


def test_no_list_attached_unless_configured(mailbox, smtp, make_config):
    config = make_config(extra='\n[digest]\nto = "orga@isi-innovation.de"\nat = "00:00"\n')
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    [digest] = [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in smtp.envelopes if e.rcpt_tos == ["orga@isi-innovation.de"]]
    assert list(digest.iter_attachments()) == []


def test_command_output_is_german_for_a_german_event_and_english_for_an_english_one(
        mailbox, smtp, make_config):
    config = make_config(capacity=1)
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Jürgen Weiß", "j.weiss@koeln.example"))
    CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    english = CliRunner().invoke(main, ["--config", str(config), "status"]).output
    assert "Registrations: 1 confirmed of 1 places (0 free), 1 waitlisted" in english
    german(config)
    runner = CliRunner()
    status = runner.invoke(main, ["--config", str(config), "status"]).output
    assert "Anmeldungen: 1 bestätigt von 1 Plätzen (0 frei), 1 auf der Warteliste" in status
    listed = runner.invoke(main, ["--config", str(config), "list"]).output
    assert "bestätigt" in listed and "Warteliste" in listed and "2 Personen" in listed
    excel = runner.invoke(main, ["--config", str(config), "export", "--excel"]).output
    assert excel.startswith("\ufeffE-Mail;Name;Organisation;Status;angemeldet am;")
    review = runner.invoke(main, ["--config", str(config), "review"]).output
    assert review.strip() == "Keine Mail wartet auf Sie."
    missing = runner.invoke(main, ["--config", str(config), "resend", "x@nowhere.example"])
    assert "x@nowhere.example ist nicht angemeldet" in missing.output


MORE_ENGLISH = re.compile(ENGLISH.pattern[:-3] + r"|would|erased|mails|reachable|folder|"
                                                  r"ready)\b")


def english_words(text: str) -> list[str]:
    """The English words of ``text``, leaving out what is no translation's: the paths,
    addresses and commands it names, the config keys and the mail's own lines."""
    own = re.sub(r"\S*[/@]\S*|`[^`]*`|\[\w+\] \w+|mailbot \w+", " ", text)
    return MORE_ENGLISH.findall(own)


def test_the_organisers_commands_speak_german_for_a_german_event(mailbox, smtp, make_config,
                                                                  tmp_path, monkeypatch):
    from mailbot.cli import common

    config = make_config(capacity=1)
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    mailbox.append(registration_mail("Jürgen Weiß", "j.weiss@koeln.example"))
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example", QUESTION))
    runner = CliRunner()
    def run(*args, **kwargs):
        return runner.invoke(main, ["--config", str(config), *args], **kwargs)

    run("run", "--once")
    german(config)
    mailbox.append(registration_mail("Karl Ernst", "karl@ernst.example"))
    outputs = {}
    check = run("check")
    assert "✓ Konfiguration " in check.output and "erreichbar" in check.output, check.output
    outputs["check"] = check.output
    preview = run("preview", "--inbox")
    assert "würde senden: Warteliste" in preview.output or \
        "würde senden: " in preview.output, preview.output
    assert "1 Antwort würde verschickt." in preview.output, preview.output
    outputs["preview --inbox"] = preview.output
    exported = run("export", "--output", str(tmp_path / "list.csv"))
    assert "Zeilen nach" in exported.output, exported.output
    outputs["export"] = exported.output
    samples = run("sample-replies", "--output", str(tmp_path / "samples"))
    assert "Beispielantworten in " in samples.output, samples.output
    outputs["sample-replies"] = samples.output
    monkeypatch.setattr(common, "interactive", lambda: True)
    forget = run("forget", "anna@a.example", input="n\n")
    assert "Jetzt löschen?" in forget.output and "Nichts gelöscht." in forget.output
    outputs["forget (question)"] = forget.output
    forget = run("forget", "anna@a.example", "--yes")
    assert forget.exit_code == 0 and "anna@a.example gelöscht: 1 Anmeldung" in forget.output
    outputs["forget"] = forget.output
    purge = run("purge", "--now", input="n\n")
    assert "Jetzt alles löschen?" in purge.output and "wird unbeantwortet gelöscht" in \
        purge.output, purge.output
    outputs["purge --now (question)"] = purge.output
    outputs["purge"] = run("purge").output
    outputs["status"] = run("status").output
    now = dt.datetime.now(dt.UTC)
    with Store(tmp_path / "mailbot.sqlite") as store:  # what the service records when ...
        store.set_state("purge", purge_verdict(PurgeFacts(  # ... the date moved
            due=now, start=now, start_then=now - dt.timedelta(days=400), first_row=None,
            newest_row=None, announced=None), now)[1], now)
        store.set_state(COPY_KEY, "copy to Sent failed: NO [OVERQUOTA] Quota exceeded", now)
    status = run("status").output
    assert "Aufbewahrung: nicht automatisch gelöscht: [event] start ist jetzt der " in status
    assert "Zustand: funktioniert, aber die Kopien der Antworten in „Gesendet“" in status
    outputs["status (purge refused, no copies in Sent)"] = "\n".join(
        line for line in status.splitlines() if "OVERQUOTA" not in line)
    for command, text in outputs.items():
        assert not english_words(text), (command, english_words(text), text)


def test_remind_and_announce_speak_german_for_a_german_event(mailbox, smtp, make_config):
    config = make_config()
    mailbox.append(registration_mail("Anna Arndt", "anna@a.example"))
    CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    german(config)
    reminded = CliRunner().invoke(main, ["--config", str(config), "remind"]).output
    assert reminded.startswith("Keine Erinnerung fällig: die Veranstaltung hat begonnen."), \
        reminded
    config.write_text(config.read_text().replace('passcode = "', 'passcode = "neu-'))
    asked = CliRunner().invoke(main, ["--config", str(config), "announce"]).output
    assert "Damit erhalten 1 Person die geänderten Angaben:" in asked, asked
    assert "nicht gefragt, nichts getan" in asked  # no terminal to ask on
    sent = CliRunner().invoke(main, ["--config", str(config), "announce", "--yes"]).output
    assert sent.startswith("1 Ankündigung eingereiht, 1 zugestellt"), sent
    assert not english_words(asked + sent), asked + sent


def test_an_approval_that_cannot_be_done_is_refused_in_german(mailbox, smtp, make_config):
    """`approve` of a mail already answered (a registration with a question) says so in
    the organiser's language — the same words the browser desk shows."""
    config = german(make_config())
    mailbox.append(registration_mail("Heike Wagner", "heike@awo.example",
                                     "hiermit melde ich mich an. Wird das Treffen "
                                     "aufgezeichnet?"))
    CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    [(number,)] = rows(config, "SELECT rowid FROM messages WHERE needs_attention = 1")
    refused = CliRunner().invoke(main, ["--config", str(config), "approve", str(number)])
    assert refused.exit_code == 1
    assert "schon beantwortet" in refused.output, refused.output
    assert not re.search(r"\b(this|already|answered|yourself)\b", refused.output)
