"""No input stops the batch: arbitrary bytes and mutated real mails (hypothesis)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import MAILS, SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.core.models import FOREIGN, InboundMail, Summary
from mailbot.reading.parse import parse_mail
from mailbot.service.processor import Processor
from mailbot.store import Store

ROOT = Path(__file__).resolve().parent.parent
CORPUS = [p.read_bytes() for folder in (SAMPLES, MAILS) if folder.exists()
          for p in sorted(folder.glob("*.eml"))] + [
              p.read_bytes() for p in sorted((ROOT / "examples" / "mail").glob("*.eml"))]
OUTCOMES = {"register", "cancel", "ignore", "review", "noop", FOREIGN, "already", "waiting",
            "attention"}


@pytest.fixture(scope="module")
def processor(example_config):
    config = example_config
    store = Store(":memory:")
    yield Processor(config, store, transport=None)
    store.close()


@st.composite
def mutated(draw):
    """A real mail with some bytes flipped, cut, duplicated or inserted."""
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[at: at + draw(st.integers(1, 200))]
        elif kind == "insert":
            raw[at:at] = draw(st.sampled_from([b"\r\n", b"\n\n", b"=?utf-8?q?=0A?=", b"\x00",
                                               b"--b1\r\n", b"Content-Type: multipart/mixed",
                                               b"\xff\xfe", b"<", b"@", b"?", b":"]))
        else:
            raw[at:at] = raw[at: at + draw(st.integers(1, 300))]
    return bytes(raw)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_any_bytes_parse_without_exception(raw):
    parsed = parse_mail(raw, "n.collinet@isi-innovation.de")
    assert parsed.key


@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mutated())
def test_mutated_mail_is_handled_end_to_end(processor, raw):
    """parse → guard → classify → decide → compose → record, without the catch-all that
    protects the batch: each mail gets an outcome."""
    mail = InboundMail("1", raw, dt.datetime(2021, 5, 21, tzinfo=dt.UTC))
    assert processor.handle(mail, Summary()) in OUTCOMES


def test_an_internal_error_is_recorded_as_one_not_as_an_unreadable_mail(
        example_config, monkeypatch, caplog):
    """A mistake of mailbot's own (here: in the decision) leaves the mail for a human as an
    internal error, with the traceback in the log — never as "Mail nicht lesbar"."""
    from mailbot.rules import policy

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(policy, "plan", broken)
    store = Store(":memory:")
    processor = Processor(example_config, store, transport=None)
    raw = next(r for r in CORPUS if processor.own.encode() in r.lower())
    mail = InboundMail("1", raw, dt.datetime(2021, 5, 21, tzinfo=dt.UTC))
    with caplog.at_level("ERROR"):
        assert processor.handle_safely(mail, Summary()) == "review"
    [row] = store.for_review()
    assert row["reason"].startswith("Interner Fehler") and "nicht lesbar" not in row["reason"]
    assert any(r.exc_info and "internal error" in r.getMessage() for r in caplog.records)
    store.close()


def test_without_a_transport_replies_stay_queued(example_config):
    """A processor without a way to send (a preview, a command that only reads) leaves the
    outbox as it is when asked to send: no crash, nothing lost."""
    from conftest import registration_mail

    store = Store(":memory:")
    processor = Processor(example_config, store, transport=None)
    raw = registration_mail("Ada Muster", "ada@example.org", to=processor.own)
    processor.handle(InboundMail("1", raw, dt.datetime.now(dt.UTC)), Summary())
    queued = store.pending_replies(dt.datetime.now(dt.UTC))
    assert queued
    summary = Summary()
    processor.sending.flush(summary)
    assert summary.sent == 0
    assert [r["id"] for r in store.pending_replies(dt.datetime.now(dt.UTC))] == [
        r["id"] for r in queued]
    store.close()
