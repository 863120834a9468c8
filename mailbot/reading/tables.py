"""People in tables (pure): a row with a ``|`` or a tab and an address, and a table whose
cells stand one below the other (an HTML table after html2text) — (name, address,
organisation from a cell) in order of appearance."""

from __future__ import annotations

import re

from mailbot.core.text import ADDR_RE, ADDR_SPEC, valid_address
from mailbot.reading.names import looks_like_name, split_name
from mailbot.reading.signature import org_part


def is_table_row(line: str) -> bool:
    """A line with a ``|`` or a tab and an address after it (linear, even for a very long
    line: a regular expression ``.*\\|.*address`` would take quadratic time)."""
    cut = min((i for i in (line.find("|"), line.find("\t")) if i >= 0), default=-1)
    return cut >= 0 and ADDR_RE.search(line, cut + 1) is not None


def table_pairs(text: str) -> list[tuple[str, str, str | None]]:
    """(name, address, organisation) of each table row that holds both."""
    out: list[tuple[str, str, str | None]] = []
    for row in (line for line in text.split("\n") if is_table_row(line)):
        cells = [c.strip() for c in re.split(r"\||\t", row) if c.strip()]
        address = next((valid_address(c.strip("<>()")) for c in cells
                        if valid_address(c.strip("<>()"))), None)
        names = [c for c in cells if "@" not in c and looks_like_name(split_name(c))]
        orgs = [found[0] for c in cells if "@" not in c and (found := org_part(c))
                and found[1] >= 2]  # a department or a task is not the organisation
        if address and names:
            out.append((split_name(names[0]), address, orgs[0] if orgs else None))
    return out


_ADDRESS_LINE = re.compile(rf"^[ \t]*<?(?:mailto:)?(?P<email>{ADDR_SPEC})>?"
                           rf"(?:[ \t]*<mailto:[^>]*>)?[ \t]*$")


def stacked_pairs(text: str) -> list[tuple[str, str, str | None]]:
    """A table whose cells stand one below the other (an HTML table after html2text):
    a line with a name, at most one line between (the role or the organisation), then a
    line with nothing but the address."""
    if text.count("@") < 2:
        return []
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    out: list[tuple[str, str, str | None]] = []
    for i, line in enumerate(lines):
        m = _ADDRESS_LINE.match(line)
        if not m:
            continue
        names = {back: split_name(lines[i - back]) for back in (1, 2) if i - back >= 0}
        names = {b: n for b, n in names.items()
                 if looks_like_name(n) and len(n.split()) >= 2 and "@" not in n}
        back = next((b for b, n in names.items() if in_local(n, m["email"])),
                    min(names, default=0))
        if back:
            cell = org_part(lines[i - 1]) if back == 2 else None
            out.append((names[back], m["email"].lower(),
                        cell[0] if cell and cell[1] >= 2 else None))
    return out


_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ş": "s", "ç": "c",
                       "ğ": "g", "ı": "i"})


def in_local(name: str, address: str) -> bool:
    """The address is made of the name ("Tarik Özdemir" – t.oezdemir@…)."""
    local = address.partition("@")[0].lower()
    return any(len(w) >= 3 and w in local for w in name.lower().translate(_FOLD).split())
