"""Delivery status reports (pure): which addresses a bounce reports as failed, with what
status code, and which mail of ours it returns (its Message-ID).

Standard DSNs (``multipart/report; report-type=delivery-status``, RFC 3464) and the common
non-standard ones (Exim, qmail, Postfix without DSN, Exchange, GMX …) are read by
``flufl.bounce``, Mailman's bounce detectors.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message

from flufl.bounce import all_failures

from mailbot.core.models import Bounce
from mailbot.core.text import ADDR_RE

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ORIGINAL_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]{1,250}>)", re.IGNORECASE | re.MULTILINE)


def read(raw: bytes) -> Bounce | None:
    """The bounce in ``raw``; None when it reports no permanent failure (a delay
    warning, a read receipt, not a bounce at all)."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        _, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector choking on odd mail: not a bounce we know
        return None
    failed = sorted({a.decode("ascii", "replace").strip("<> ").lower() for a in permanent})
    failed = [a for a in failed if ADDR_RE.fullmatch(a)]
    if not failed:
        return None
    return Bounce(failed=tuple(failed), status=_status(msg, raw), original_ids=_original_ids(raw))


def _status(msg: Message, raw: bytes) -> str:
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload() or []:
                value = block.get("Status", "") if isinstance(block, Message) else ""
                m = _STATUS.search(str(value))
                if m:
                    return m[1]
    body = raw[:20000].decode("ascii", "replace")  # not as_bytes(): odd bytes break it
    m = re.search(r"\b(5\.\d{1,3}\.\d{1,3})\b", body)
    return m[1] if m else ""


def _original_ids(raw: bytes) -> tuple[str, ...]:
    """Message-IDs of the returned mail: every Message-ID header line after the
    bounce's own header (in a message/rfc822 or text/rfc822-headers part, or quoted)."""
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = raw.find(b"\n\n")
    body = raw[head_end:] if head_end >= 0 else b""
    found = [m.decode("ascii", "replace") for m in _ORIGINAL_ID.findall(body)]
    return tuple(dict.fromkeys(found))
