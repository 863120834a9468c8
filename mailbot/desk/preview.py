"""`mailbot preview --inbox`: what `run` would do with each mail in the inbox now."""

from __future__ import annotations

from mailbot.core.i18n import tr as _
from mailbot.core.models import ALREADY, FOREIGN, WAITING, Summary
from mailbot.mail.inbox import Inbox
from mailbot.reading.parse import parse_mail
from mailbot.replies.report import kind_word, outcome_words
from mailbot.service.processor import Processor


def inbox_preview(processor: Processor, inbox: Inbox) -> tuple[list[str], int, int]:
    """What `run` would do with each mail in the inbox now — decided and recorded in the
    processor's store, which must be a private copy (nothing is sent, moved or flagged):
    the lines, the number of mails and of replies."""
    store, lines, summary, replies = processor.store, [], Summary(), 0
    last = max([r["id"] for r in store.replies_after(0)] or [0])
    tz = processor.config.event.tz
    for batch in inbox.batches():
        for mail in batch:
            outcome = processor.handle(mail, summary)
            summary.mails[outcome] += 1
            parsed = parse_mail(mail.raw, processor.own)
            row = store.message(parsed.key)
            reason = f" – {row['reason']}" if row and row["reason"] and outcome not in (
                FOREIGN, ALREADY, WAITING) else ""
            lines += ["", f"{mail.received_at.astimezone(tz):%d.%m.%Y %H:%M}  "
                          f"{parsed.sender or _('(unreadable sender)')}: {parsed.subject or '–'}",
                      f"  → {outcome_words(outcome)}{reason}"]
            for reply in store.replies_after(last):
                lines.append("  → " + _("would send: {kind} to {recipient}").format(
                    kind=kind_word(reply["kind"]), recipient=reply["recipient"]))
                last, replies = reply["id"], replies + 1
    return lines, sum(summary.mails.values()), replies
