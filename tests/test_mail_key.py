"""Finding a mail by its key reads only its header block, and gives the key parse_mail
records for it (a Message-ID, else the hash of the bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.reading.parse import mail_key, parse_mail

HERE = Path(__file__).parent
MAILS = sorted((HERE / "mails").rglob("*.eml"))


@pytest.mark.parametrize("path", MAILS, ids=lambda p: p.name)
def test_the_key_from_the_header_is_the_key_of_the_parsed_mail(path):
    raw = path.read_bytes()
    assert mail_key(raw) == parse_mail(raw).key


@pytest.mark.parametrize("raw", [
    b"Subject: no id\r\n\r\nHallo",
    b"Message-ID: not-an-id\r\n\r\nHallo",
    b"Message-ID:\r\n <folded@x.example>\r\n\r\nHallo",
    b"message-id: <a@x.example>\r\nMessage-ID: <b@x.example>\r\n\r\nHallo",
    b"X-Big: " + b"a" * 300_000 + b"\r\nMessage-ID: <big@x.example>\r\n\r\nHallo",
    b"no header block at all",
])
def test_odd_headers_give_the_same_key(raw):
    assert mail_key(raw) == parse_mail(raw).key


def test_maildir_find_reads_no_body(tmp_path, monkeypatch):
    from mailbot.config.types import MaildirConfig
    from mailbot.mail.maildir import MaildirInbox
    from mailbot.reading import parse

    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "new" / "1.a").write_bytes(b"Message-ID: <one@x.example>\r\n\r\nHallo")
    (tmp_path / "new" / "2.b").write_bytes(b"Subject: ohne\r\n\r\nHallo")
    inbox = MaildirInbox(MaildirConfig(path=tmp_path))

    def no_full_parse(*args, **kwargs):
        raise AssertionError("a full parse to get a key")

    monkeypatch.setattr(parse, "_PARSER", type("P", (), {"parsebytes": no_full_parse})())
    assert inbox.find("<one@x.example>").ref == "new/1.a"
    key = parse.content_key(b"Subject: ohne\r\n\r\nHallo")
    assert inbox.find(key).ref == "new/2.b"
    assert inbox.find("<none@x.example>") is None
