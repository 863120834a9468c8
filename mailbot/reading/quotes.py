"""What the person wrote now (pure): ``format=flowed`` undone, quoted replies and our own
quoted reply cut off."""

from __future__ import annotations

import re

_QUOTE_START = re.compile(
    r"^(?:Am .{3,200}(?:schrieb|geschrieben)[^:]{0,100}:\s*$"
    r"|On .{3,200}wrote:\s*$"
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Original-?Nachricht"
    r"|Weitergeleitete Nachricht|Forwarded message|Weitergeleitete Mitteilung)\s*-{2,}"
    r"|(?:Anfang der weitergeleiteten (?:Nachricht|E-Mail)|Begin forwarded message):\s*$"
    r"|(?:Gesendet|Sent) (?:von|from|mit|with) .{0,40}$"
    r"|Diese E-Mail wurde automatisch erstellt\.|Guten Tag[^\n]{0,80},\n\nvielen Dank für Ihre "
    r"Anmeldung\.|Ihre Zugangsdaten:\s*$"
    r"|_{10,}\s*$"
    r"|(?:Von|From|Gesendet|Sent|Datum|Date):\s.+\n(?:.*\n){0,2}?"
    r"(?:Von|From|Gesendet|Sent|Datum|Date|An|To|Betreff|Subject):\s)",
    re.IGNORECASE | re.MULTILINE,
)
# A quoted copy of one of our own replies (an autoresponder or ticket system quoting it
# under its own words, any number of blank lines, with or without ">"): it starts at our
# greeting and ends with our footer, and none of it is what the person wrote now.
_OWN_FOOTER = re.compile(r"^[ \t>]*(?:Diese E-Mail wurde automatisch erstellt\.|This e-mail "
                         r"was written automatically\.)", re.MULTILINE)
_OWN_GREETING = re.compile(r"^[ \t>]*(?:Guten Tag|Hello)(?: [^\n]{1,125})?,[ \t]*$",
                           re.MULTILINE)


def unflow(text: str, delsp: bool = False) -> str:
    """Undo ``format=flowed`` (RFC 3676): a line ending in a space goes on in the next line
    of the same quote depth; a leading space was added for transport ("space-stuffing").
    So a mail reads the same whatever line width the sender's program used."""
    out: list[str] = []
    open_depth = None  # quote depth of a paragraph whose last line ended in a space
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        soft = content.endswith(" ") and content != "-- "
        if soft and delsp:
            content = content[:-1]
        if open_depth == depth and out and content:
            out[-1] += content
        else:
            out.append(">" * depth + (" " if depth and content else "") + content)
        open_depth = depth if soft else None
    return "\n".join(out)


def strip_quotes(text: str) -> str:
    """Only what the person wrote now: cut at the first quote header or at the greeting
    of a quoted reply of ours, drop ``>`` lines."""
    footer = _OWN_FOOTER.search(text)
    if footer:
        greetings = list(_OWN_GREETING.finditer(text, 0, footer.start()))
        text = text[: greetings[-1].start() if greetings else footer.start()]
    m = _QUOTE_START.search(text)
    if m:
        text = text[: m.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()
