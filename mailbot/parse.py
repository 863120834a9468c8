"""Bytes → :class:`ParsedMail`: headers, the text the person wrote now, participants (pure).

Nothing here trusts a header: addresses are checked against a strict pattern (Python
3.11.7's ``email.utils`` accepts smuggled addresses, CVE-2023-27043), display names are
stripped of control characters, and Message-IDs are validated before anyone may copy them
into an outgoing header.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import hashlib
import re
import unicodedata
from email.message import EmailMessage, Message

import charset_normalizer
import html2text

from .models import ParsedMail, Participant

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
ADDR_SPEC = rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+"
_ADDR_RE = re.compile(ADDR_SPEC)
_FROM_RE = re.compile(
    r'\s*(?:(?P<name>"(?:[^"\\\r\n]|\\.)*"|[^<>@"\r\n]*?)\s*<(?P<addr1>[^<>\s]+)>'
    r'|(?P<addr2>[^<>\s"()]+)(?:\s*\((?P<comment>[^()<>@\r\n]*)\))?)\s*'
)
_MSGID_RE = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")  # printable ASCII, no < >
RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to")
LATIN1_ALIASES = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii",
                  "iso_8859-1", "cp819"}
MAX_TEXT = 100_000  # characters of body text that are read

# Where what a person writes now ends and older text begins.
_QUOTE_START = re.compile(
    r"^(?:Am .{3,200}(?:schrieb|geschrieben)[^:]{0,100}:\s*$"
    r"|On .{3,200}wrote:\s*$"
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht"
    r"|Weitergeleitete Nachricht|Forwarded message)\s*-{2,}"
    r"|_{10,}\s*$"
    r"|(?:Von|From):\s.+\n(?:.*\n){0,3}?(?:Gesendet|Sent|Datum|Date):\s)",
    re.IGNORECASE | re.MULTILINE,
)
_FIELD_RE = re.compile(
    r"^[ \t]*[-*•]?[ \t]*(?P<key>Name|Vor- und Nachname|Teilnehmer(?:in)?|Organisation|Organization"
    r"|Institution|Verein|Einrichtung|Träger|E-?Mail(?:-Adresse)?|Mail)[ \t]*:[ \t]*(?P<value>.+?)"
    r"[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORG_KEYS = {"organisation", "organization", "institution", "verein", "einrichtung", "träger"}
_CLOSING_RE = re.compile(
    r"^(?:(?:mit )?(?:freundlichen|besten|herzlichen|vielen|liebe|viele|beste|schöne)[n]? "
    r"(?:grüßen|grüße|gruß|grüssen|grüsse|gruss)|(?:herzliche |liebe |beste |viele )?grüße"
    r"|(?:best |kind )?regards|best|cheers|sincerely|yours sincerely|mfg|lg|vg|gruß|gruss)"
    r"[,.!]?\s*$",
    re.IGNORECASE,
)
_ORG_WORDS = re.compile(
    r"\b(?:e\.\s?V\.|gGmbH|GmbH|Verein|Stiftung|Stadt|Kreis|Caritas|Diakonie|AWO|Lebenshilfe"
    r"|Agentur|Netzwerk|Network|Büro|Institut|Verband|Zentrum|Rat|Gemeinde|Kirche|Universität"
    r"|Hochschule|Initiative|Association|Foundation|Council|Ministerium|Landkreis)"
    r"|(?:verein|stiftung|agentur|verband|netzwerk|zentrum|rat|büro|werk)\b",
    re.IGNORECASE,
)
_NOT_ORG = re.compile(r"\b(?:Tel|Telefon|Fon|Fax|Mobil|E-?Mail|www\.|http|Straße|Str\.)"
                      r"|\d{4,}|@", re.IGNORECASE)
_TITLES = re.compile(
    r"^(?:(?:Dr|Prof|Dipl|Mag)\.(?:[- ]?\w+\.)*\s+|(?:Frau|Herr|Ms|Mr|Mrs)\.?\s+)+", re.IGNORECASE
)
_LIST_ITEM = re.compile(
    rf"^[ \t]*(?:\d+[.)]|[-*•])[ \t]*(?P<name>[^\n,;|<>()@]+?)[ \t]*[,;|:–-]?[ \t]*"
    rf"[<(]?(?:mailto:)?(?P<email>{ADDR_SPEC})[>)]?[ \t]*$",
    re.MULTILINE,
)

_html = html2text.HTML2Text()
_html.body_width = 0
_html.unicode_snob = True  # keep "ü" instead of html2text's ASCII "u"
_html.ignore_links = True
_html.ignore_images = True
_html.ignore_emphasis = True
_html.ignore_tables = True


def parse_mail(raw: bytes) -> ParsedMail:
    """Read a mail; raises only on input no mail reader could make sense of."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    headers = _headers(msg)
    message_id = valid_message_id(headers.get("message-id", ""))
    key = message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    raw_from = next((v for k, v in msg.raw_items() if k.lower() == "from"), "")
    sender, sender_name = parse_from(raw_from)
    text = strip_quotes(body_text(msg))
    participants = find_participants(text, sender, sender_name)
    return ParsedMail(
        key=key,
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        subject=clean_text(headers.get("subject", "")),
        recipients=tuple(_recipients(msg)),
        headers=headers,
        text=text,
        participants=participants,
        defects=tuple(type(d).__name__ for d in msg.defects),
    )


def _headers(msg: Message) -> dict[str, str]:
    """Lower-case name → decoded, unfolded value (first occurrence wins)."""
    out: dict[str, str] = {}
    for name, value in msg.raw_items():
        key = name.strip().lower()
        if key not in out:
            out[key] = decode_header(value)
    return out


def decode_header(value: str) -> str:
    """Decode encoded words and raw 8-bit bytes of a header; unfold it."""
    if any("\udc80" <= c <= "\udcff" for c in value):
        data = value.encode("ascii", "surrogateescape")
        value = decode_bytes(data, None)
    try:
        value = str(email.header.make_header(email.header.decode_header(value)))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        pass
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def clean_text(value: str, limit: int = 200) -> str:
    """A one-line, printable version of untrusted text: no control characters at all."""
    chars = (" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in value)
    return re.sub(r" {2,}", " ", "".join(chars)).strip()[:limit]


def valid_message_id(value: str) -> str | None:
    """The Message-ID if it is one well-formed ``<left@right>`` token, else None."""
    value = value.strip()
    return value if _MSGID_RE.fullmatch(value) else None


def valid_address(value: str) -> str | None:
    value = value.strip()
    if len(value) > 254 or not _ADDR_RE.fullmatch(value):
        return None
    return value.lower()


def parse_from(raw: str) -> tuple[str | None, str]:
    """(address, display name) from a raw From value; (None, "") unless it is exactly one
    address in a plain form: ``addr``, ``Name <addr>``, ``"Name" <addr>``, ``addr (Name)``.
    The structure is checked before encoded words are decoded, so an ``=40`` in a name
    never becomes an address."""
    value = re.sub(r"\r?\n[ \t]*", " ", raw).strip()
    m = _FROM_RE.fullmatch(value)
    if not m:
        return None, ""
    address = valid_address(m["addr1"] or m["addr2"] or "")
    if address is None:
        return None, ""
    name = m["name"] or m["comment"] or ""
    if name.startswith('"') and name.endswith('"'):
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    name = clean_text(decode_header(name), 120)
    if "@" in name:
        name = ""
    return address, name


def _recipients(msg: Message) -> list[str]:
    found = []
    for name in RECIPIENT_HEADERS:
        for value in msg.get_all(name, []) or []:
            found += [a.lower() for a in _ADDR_RE.findall(str(value))]
    return found


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text bytes as a browser would: latin-1 labels mean windows-1252, a wrong or
    missing label is detected."""
    label = (charset or "").strip().lower()
    if label in LATIN1_ALIASES:
        if label in ("us-ascii", "ascii"):
            try:
                return data.decode("ascii")
            except UnicodeDecodeError:
                label = ""
        else:
            label = "cp1252"
    if label:
        try:
            return data.decode(label)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data[:MAX_TEXT]).best()
    if best is not None and best.encoding:
        return data.decode(best.encoding, errors="replace")
    return data.decode("cp1252", errors="replace")


def body_text(msg: Message) -> str:
    """The mail's text: the first text/plain part, else its first text/html part as text."""
    plain = html = None
    for part in msg.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None and plain.strip():
        return _normalise(plain)
    if html is not None:
        return _normalise(html_to_text(html))
    return ""


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True) or b""
    return decode_bytes(data[: MAX_TEXT * 4], part.get_content_charset())[:MAX_TEXT]


def html_to_text(html: str) -> str:
    return _html.handle(html)


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def strip_quotes(text: str) -> str:
    """Only what the person wrote now: cut at the first quote header, drop ``>`` lines."""
    m = _QUOTE_START.search(text)
    if m:
        text = text[: m.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()


def split_name(value: str) -> str:
    """A person's name without titles; "Müller, Thomas" → "Thomas Müller"."""
    value = clean_text(value, 120).strip(" ,;")
    value = _TITLES.sub("", value)
    if value.count(",") == 1:
        last, first = (v.strip() for v in value.split(","))
        last = _TITLES.sub("", last)
        first = _TITLES.sub("", first)
        if last and first and " " not in last:
            value = f"{first} {last}"
    return _TITLES.sub("", value).strip()


def fields(text: str) -> dict[str, str]:
    """``Key: value`` lines, keys lower-case; organisation synonyms merged."""
    out: dict[str, str] = {}
    for m in _FIELD_RE.finditer(text):
        key = m["key"].lower()
        if key in _ORG_KEYS:
            key = "organisation"
        elif key.startswith(("e-mail", "email", "mail")):
            key = "email"
        elif key != "organisation":
            key = "name"
        out.setdefault(key, clean_text(m["value"], 200))
    return out


def signature(text: str, sender_name: str = "") -> list[str]:
    """The signature: the lines after the closing formula ("Viele Grüße"), else from the
    line with the sender's name among the last ones; at most six lines."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, max(-1, len(lines) - 16), -1):
        if _CLOSING_RE.match(lines[i].strip()):
            return [line.strip() for line in lines[i + 1 : i + 7] if line.strip()]
    name = sender_name.casefold().strip()
    if name:
        for i in range(max(0, len(lines) - 8), len(lines)):
            if lines[i].strip().casefold() == name:
                return [line.strip() for line in lines[i : i + 6] if line.strip()]
    return []


_ORG_IN_TEXT = re.compile(
    r"\b(?:beide|wir|ich)\b[^.\n]{0,40}?\b(?:von|vom|aus|bei|beim|für)\s+(?:der |dem |den |die )?"
    r"(?P<org>[A-ZÄÖÜ][^.\n,;:!?]{2,80}?(?:\be\.\s?V\.)?)\s*(?:[.,;:!?]|\n|$)",
    re.IGNORECASE,
)


def organisation_in_text(text: str) -> str | None:
    """"Beide von der Ehrenamtsagentur Münster." → "Ehrenamtsagentur Münster"."""
    for m in _ORG_IN_TEXT.finditer(text):
        candidate = m["org"].strip()
        if _ORG_WORDS.search(candidate) and not _NOT_ORG.search(candidate):
            return candidate
    return None


def organisation_from(lines: list[str]) -> str | None:
    for line in lines:
        if _ORG_WORDS.search(line) and not _NOT_ORG.search(line) and len(line) <= 120:
            return line
    return None


def find_participants(text: str, sender: str | None, sender_name: str) -> tuple[Participant, ...]:
    """Who the mail is about: listed people with addresses, else the sender."""
    found = fields(text)
    sig = signature(text, sender_name)
    organisation = (found.get("organisation") or organisation_from(sig)
                    or organisation_in_text(text))
    listed = [
        Participant(email=m["email"].lower(), name=split_name(m["name"]), organisation=organisation)
        for m in _LIST_ITEM.finditer(text)
    ]
    if listed:
        return tuple(_unique(listed))
    if sender is None:
        return ()
    email_field = valid_address(found.get("email", ""))
    address = email_field or sender
    name = split_name(found.get("name", "")) or split_name(sender_name)
    if not name and sig:
        name = split_name(sig[0]) if not _NOT_ORG.search(sig[0]) else ""
    return (Participant(email=address, name=name, organisation=organisation),)


def _unique(people: list[Participant]) -> list[Participant]:
    seen: set[str] = set()
    out = []
    for p in people:
        if p.email not in seen:
            seen.add(p.email)
            out.append(p)
    return out
