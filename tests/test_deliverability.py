"""Deliverability: every reply kind, German and English, with and without a name, scored
offline by SpamAssassin (Debian's package, stock rules, `-L`): at most 0.5 points."""

from __future__ import annotations

import datetime as dt
import mailbox
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailbot import config as cfg
from mailbot.core.models import Participant, ReplyKind
from mailbot.replies.compose import Composer, example_replies

ROOT = Path(__file__).resolve().parent.parent


def test_every_reply_kind_stays_clear_of_spam_rules(tmp_path):
    if not shutil.which("spamassassin"):
        pytest.fail("SpamAssassin is not installed: run the README test command (scripts/test)")
    config = cfg.load(ROOT / "examples" / "demo.toml")
    messages = example_replies(config)
    composer = Composer(config)
    nobody = Participant("info@example.org", "")
    now = dt.datetime(2021, 5, 21, 8, 30, tzinfo=dt.UTC)
    for kind in (ReplyKind.NOT_REGISTERED, ReplyKind.CLOSED, ReplyKind.ON_BEHALF):
        for lang in ("de", "en"):  # no name known: the greeting must still read well
            reply = composer.reply(kind, nobody, None, None, now, lang=lang, others=["X Y"])
            messages.append((f"{kind.value}-noname.{lang}", reply.body))
    box = mailbox.mbox(str(tmp_path / "replies.mbox"))
    for _, body in messages:
        box.add(mailbox.mboxMessage(body))
    box.flush()

    with open(tmp_path / "replies.mbox", "rb") as source:
        scored = subprocess.run(["spamassassin", "-L", "-t", "--mbox"], stdin=source,
                                capture_output=True, timeout=300, check=True).stdout
    statuses = re.findall(rb"^X-Spam-Status: \w+, score=(-?[\d.]+) [^\n]*(?:\n\t[^\n]*)*",
                          scored, re.MULTILINE)
    assert len(statuses) == len(messages)
    scores = {name: float(score) for (name, _), score in zip(messages, statuses, strict=True)}
    assert max(scores.values()) <= 0.5, {n: s for n, s in scores.items() if s > 0.5}
