"""The shared sample corpus (../shared/samples/mail with expected.json), end to end.

All samples are appended to one fresh Dovecot mailbox and handled by one ``run --once``
into one fresh database, in name order, as expected.json describes. New samples added to
that folder are picked up without changes here.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import CONFIG, SAMPLES, Mailbox

from mailbot.cli import main

EXPECTED = json.loads((SAMPLES / "expected.json").read_text()) if SAMPLES.exists() else []
if not EXPECTED:  # a checkout without ../shared beside it: say so instead of passing quietly
    EXPECTED = [{"file": "(no samples)", "action": "missing"}]
TITLES = re.compile(r"\b(?:dr|prof|frau|herr|ms|mr|mrs)\.?\s+", re.IGNORECASE)


def norm_name(name: str) -> str:
    return " ".join(TITLES.sub("", name).casefold().split())


def words(text: str | None) -> list[str]:
    return re.findall(r"\w+", (text or "").casefold())


@pytest.fixture(scope="module")
def corpus(dovecot, smtp_server, tmp_path_factory):
    if EXPECTED[0]["action"] == "missing":
        pytest.skip(f"no shared sample corpus at {SAMPLES}")
    controller, handler = smtp_server
    handler.envelopes.clear()
    tmp = tmp_path_factory.mktemp("corpus")
    box = Mailbox(dovecot, "corpus")
    for entry in sorted(EXPECTED, key=lambda e: e["file"]):
        box.append((SAMPLES / entry["file"]).read_bytes())
    config = tmp / "mailbot.toml"
    config.write_text(CONFIG.format(
        start="2021-05-31T10:00:00", end="2021-05-31T15:00:00", capacity="",
        imap_port=dovecot.port, user=box.user, smtp_port=controller.port,
        db=tmp / "mailbot.sqlite"), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("MAILBOT_IMAP_PASSWORD", dovecot.password)
    result = CliRunner().invoke(main, ["--config", str(config), "run", "--once"])
    mp.undo()
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp / "mailbot.sqlite")
    db.row_factory = sqlite3.Row
    state = {
        "db": db,
        "replies": [email.message_from_bytes(e.content, policy=email.policy.default)
                    for e in handler.envelopes],
        "inbox": box.folder("INBOX"),
        "processed": box.folder("Processed"),
    }
    yield state
    db.close()
    box.close()


def message_id(file: str) -> str:
    msg = email.message_from_bytes((SAMPLES / file).read_bytes(), policy=email.policy.default)
    return " ".join(str(msg["Message-ID"]).split())


def cancelled_later(entry: dict, address: str) -> bool:
    """True when a later sample cancels this person (the database shows the final state)."""
    later = [e for e in EXPECTED if e["file"] > entry["file"] and e["action"] == "cancel"]
    return any(p["email"] == address for e in later for p in e["participants"])


def where(state, file: str) -> tuple[str | None, set | None]:
    raw = (SAMPLES / file).read_bytes()
    for folder in ("inbox", "processed"):
        for mail in state[folder].values():
            if mail["raw"].replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n"):
                return folder, mail["flags"]
    return None, None


@pytest.mark.parametrize("entry", EXPECTED, ids=[e["file"] for e in EXPECTED])
def test_sample(corpus, entry):
    file, action = entry["file"], entry["action"]
    mid = message_id(file)
    row = corpus["db"].execute("SELECT * FROM messages WHERE message_id = ?", [mid]).fetchone()
    replies = [r for r in corpus["replies"] if " ".join(str(r["In-Reply-To"]).split()) == mid]
    folder, flags = where(corpus, file)

    if action == "foreign":
        assert row is None, "foreign mail is not recorded"
        assert folder == "inbox" and flags == set(), "foreign mail is not touched"
        assert replies == []
        return
    assert row is not None, "mail is recorded"
    assert row["action"] == action, row["reason"]
    if action in ("ignore", "noop", "review"):
        assert replies == [], "no reply"
        if action == "review":
            assert folder == "inbox" and b"\\Flagged" in flags
            assert row["reason"], "a review mail says why"
        else:
            assert folder == "processed"
        return

    assert folder == "processed"
    people = entry["participants"]
    assert sorted(r["To"].addresses[0].addr_spec for r in replies) == sorted(
        p["email"] for p in people), "one reply per participant"
    for person in people:
        regs = corpus["db"].execute("SELECT * FROM registrations WHERE email = ?",
                                    [person["email"]]).fetchall()
        assert len(regs) == 1, "exactly one row per person"
        reg = regs[0]
        if action == "cancel" or cancelled_later(entry, person["email"]):
            assert reg["status"] == "cancelled"
            continue
        assert reg["status"] == "confirmed"
        assert norm_name(reg["name"]) == norm_name(person["name"])
        if person["organisation"]:
            assert words(reg["organisation"]) == words(person["organisation"])
        if entry.get("duplicate"):
            assert reg["message_id"] != mid, "the first registration stays the row"
    for reply in replies:
        ctype = {p.get_content_type() for p in reply.walk()}
        assert "text/calendar" in ctype
