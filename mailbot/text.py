"""Small text helpers shared by the parser and the composer (pure)."""

from __future__ import annotations

import re
import unicodedata

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
ADDR_SPEC = rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+"
ADDR_RE = re.compile(ADDR_SPEC)


def clean_text(value: str, limit: int = 200) -> str:
    """A one-line, printable version of untrusted text: no control characters at all."""
    chars = (" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in value)
    return re.sub(r" {2,}", " ", "".join(chars)).strip()[:limit]


def valid_address(value: str) -> str | None:
    """The address in lower case if it is a plain ``local@domain.tld``, else None."""
    value = value.strip()
    if len(value) > 254 or not ADDR_RE.fullmatch(value):
        return None
    return value.lower()


