"""Huge, deep and header-bomb mail: never stalls the loop, always ends with a human."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import registration_mail

from mailbot.cli import main
from mailbot.reading.parse import MAX_TEXT, parse_mail

OWN = "n.collinet@isi-innovation.de"
HEAD = (b"From: Anna Arndt <anna@a.example>\r\nTo: n.collinet@isi-innovation.de\r\n"
        b"Subject: Anmeldung\r\nMessage-ID: <limit-%d@a.example>\r\n")


def nested(depth: int) -> bytes:
    parts = [HEAD % depth + b"MIME-Version: 1.0\r\n"]
    for i in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    parts.append(b"Content-Type: text/plain\r\n\r\nIch melde mich an.\r\n")
    for i in reversed(range(depth)):
        parts.append(b"--b%d--\r\n" % i)
    return b"".join(parts)


def test_thousand_deep_multipart_goes_to_review_unparsed():
    parsed = parse_mail(nested(1000), OWN)
    assert parsed.limit and "verschachtelt" in parsed.limit
    assert parsed.sender == "anna@a.example" and OWN in parsed.recipients
    assert parsed.participants == ()


def test_ordinary_nesting_is_read():
    parsed = parse_mail(nested(3), OWN)
    assert parsed.limit is None and "melde mich an" in parsed.text


def test_too_many_parts_goes_to_review():
    body = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(300))
    raw = (HEAD % 2 + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body
           + b"--b--\r\n")
    assert "MIME-Teile" in parse_mail(raw, OWN).limit


def test_header_bomb_is_not_parsed_but_still_known_as_ours():
    to = b"To: " + b", ".join(b"x%d@spam.example" % i for i in range(40000))
    raw = b"From: a@b.example\r\n" + to + b", n.collinet@isi-innovation.de\r\n\r\nhallo\r\n"
    assert len(raw) > 600_000
    parsed = parse_mail(raw, OWN)
    assert parsed.limit == "Kopfzeilen zu groß (über 256 KB)"
    assert OWN in parsed.recipients and parsed.key.startswith("sha256:")


def test_three_megabyte_text_is_read_up_to_the_limit():
    body = ("Hiermit melde ich mich an.\r\n" + "Lorem ipsum dolor sit amet. " * 110_000)
    raw = HEAD % 3 + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body.encode()
    assert len(raw) > 3_000_000
    parsed = parse_mail(raw, OWN)
    assert parsed.limit is None
    assert parsed.text.startswith("Hiermit melde ich mich an.")
    assert len(parsed.text) <= MAX_TEXT


def test_mail_over_the_size_limit_is_left_flagged_without_download(mailbox, smtp, make_config):
    config = make_config(extra="\n[limits]\nmax_message_mb = 0.002\n")
    big = registration_mail("Anna Arndt", "anna@a.example", "Ich melde mich an.\r\n"
                            + "Anhang " * 1000)
    mailbox.append(big)
    mailbox.append(registration_mail("Bernd Bauer", "bernd@b.example"))

    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])

    assert result.exit_code == 0, result.output
    assert [e.rcpt_tos for e in smtp.envelopes] == [["bernd@b.example"]]
    [left] = mailbox.folder("INBOX").values()
    assert left["raw"] == big and left["flags"] == {b"\\Flagged"}
    import sqlite3
    with sqlite3.connect(config.parent / "mailbot.sqlite") as db:
        [(action, reason)] = db.execute(
            "SELECT action, reason FROM messages WHERE sender = 'anna@a.example'").fetchall()
    assert action == "review" and reason.startswith("zu groß")
