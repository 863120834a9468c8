"""The retry rule lives with the outbox; the store records what it is told."""

from __future__ import annotations

import datetime as dt

from mailbot.core.clock import now_utc
from mailbot.core.models import Reply, ReplyKind
from mailbot.mail.smtp import INTERRUPTED, MAX_ATTEMPTS, after_failure, retry_delay
from mailbot.store import Store


def test_the_rule():
    assert after_failure(1, "451 later", False) == ("451 later", dt.timedelta(minutes=1))
    assert after_failure(3, "451 later", False) == ("451 later", retry_delay(3))
    assert after_failure(2, "550 no", True) == ("550 no", None)
    slow = dt.timedelta(minutes=30)
    assert after_failure(MAX_ATTEMPTS + 5, "421 slow down", False, slow) == ("421 slow down", slow)
    error, delay = after_failure(MAX_ATTEMPTS, "451 later", False)
    assert delay is None and error.endswith(f"(given up after {MAX_ATTEMPTS} attempts)")
    assert retry_delay(30) == dt.timedelta(hours=2)


def test_the_store_records_what_the_rule_says(tmp_path):
    now = now_utc()
    with Store(tmp_path / "x.sqlite") as store:
        reply = Reply(recipient="a@x.example", subject="s", kind=ReplyKind.CONFIRMATION,
                      body=b"x", message_id="<r@x>", in_reply_to=None)
        store.record({"message_id": "<m@x>", "sender": "a@x.example", "subject": "s",
                      "received_at": now.isoformat(), "action": "confirmed", "reason": "r"},
                     [], [reply], now)
        (reply_id,) = [row["id"] for row in store.pending_replies(now)]
        store.mark_attempt_failed(reply_id, now,
                                  lambda n: after_failure(n, "451 later", False))
        row = store.db.execute("SELECT status, attempts, next_attempt_at FROM outbox").fetchone()
        assert row[:2] == ("queued", 1) and row[2] > now.isoformat()
        store.mark_sending(reply_id)
        assert store.count_interrupted(now, lambda n: after_failure(n, INTERRUPTED, False)) == 1
        row = store.db.execute("SELECT status, attempts, next_attempt_at, last_error "
                               "FROM outbox").fetchone()
        assert row == ("queued", 2, None, INTERRUPTED)
        store.mark_attempt_failed(reply_id, now, lambda n: after_failure(n, "550 no", True))
        row = store.db.execute("SELECT status, next_attempt_at FROM outbox").fetchone()
        assert row == ("failed", None)
