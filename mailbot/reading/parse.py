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
import email.parser
import email.policy
import hashlib
import re
from email.message import Message

import charset_normalizer
import html2text

from mailbot.core.models import ParsedMail
from mailbot.core.text import ADDR_RE, clean_text, guess_language, valid_address
from mailbot.reading.keys import fingerprint
from mailbot.reading.names import addressed_name
from mailbot.reading.people import find
from mailbot.reading.quotes import strip_quotes, unflow
from mailbot.reading.signature import split_signature

_FROM_RE = re.compile(
    r'\s*(?:(?P<name>"(?:[^"\\\r\n]|\\.)*"|[^<>@"\r\n]*?)\s*<(?P<addr1>[^<>\s]+)>'
    r'|(?P<addr2>[^<>\s"()]+)(?:\s*\((?P<comment>[^()<>@\r\n]*)\))?)\s*'
)
_MSGID_RE = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")  # printable ASCII, no < >
_RECIPIENT_LINE = re.compile(r"^(?:to|cc|delivered-to|x-original-to)[ \t]*:(.*(?:\r?\n[ \t].*)*)",
                             re.IGNORECASE | re.MULTILINE)
MAX_HEADER_BYTES = 256 * 1024
MAX_PARTS = 200
MAX_MULTIPARTS = 20
MAX_SCAN = 30 * 1024 * 1024
_PART_HEADER = re.compile(rb"^content-type[ \t]*:", re.IGNORECASE | re.MULTILINE)
_MULTIPART = re.compile(rb"^content-type[ \t]*:[ \t]*(?:\r?\n[ \t]+)?multipart/",
                        re.IGNORECASE | re.MULTILINE)
LATIN1_ALIASES = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii",
                  "iso_8859-1", "cp819"}
MAX_TEXT = 100_000  # characters of body text that are read
_WESTERN = set("äöüÄÖÜßéèêëàáâãåæçñóòôõøúùûíìîïýÿœŒšŠžŽÉÈÊÀÁÂÇÑÓÒÔÚÙÛÍÌÎ„“”‚‘’–—…€«»°§"
               "²³µ·¼½¾×÷¡¿ªº©®™•\xa0")

# Where what a person writes now ends and older text begins.
_FOLD = re.compile(r"\r?\n[ \t]*")
_READ_HEADERS = {"subject", "message-id", "auto-submitted", "precedence", "return-path",
                 "x-autoreply", "x-autorespond", "x-ms-exchange-generated-message-source",
                 "content-type", "disposition-notification-to", "date", "x-spam-flag",
                 "x-spam-status", "x-spam", "x-loop", "x-mailing-list", "mailing-list"}
_PARSER = email.parser.BytesParser(policy=email.policy.compat32)
_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_html = html2text.HTML2Text()
_html.body_width = 0
_html.unicode_snob = True  # keep "ü" instead of html2text's ASCII "u"
_html.ignore_links = True
_html.ignore_images = True
_html.ignore_emphasis = True
_html.ignore_tables = True


def parse_mail(raw: bytes, own: str = "", limit: str | None = None) -> ParsedMail:
    """Read a mail; ``own`` is our contact address (never a participant). ``limit`` says
    why only the headers are to be read (e.g. the inbox found the mail too large).

    Mail beyond the limits (headers over 256 KB, more than ~200 MIME parts, nesting
    deeper than ~20) is not parsed in full: the result carries ``limit`` with the reason,
    and the mail goes to a human.
    """
    head_end = header_end(raw)
    if head_end > MAX_HEADER_BYTES:
        return _unparsed(raw, head_end, "Kopfzeilen zu groß (über 256 KB)")
    limit = limit or mime_problem(raw)
    # compat32: headers stay plain strings, which this module decodes and checks itself
    # (policy.default would parse every header into objects: five times slower).
    if limit:
        msg = _HEADER_PARSER.parsebytes(raw[:head_end])
    else:
        msg = _PARSER.parsebytes(raw)
    headers, values = _headers(msg)
    message_id = valid_message_id(headers.get("message-id", ""))
    key = message_id or content_key(raw)
    sender, sender_name = parse_from(_raw_header(msg, "from"))
    full = "" if limit else body_text(msg)
    text = strip_quotes(full)
    found = (find(text, sender, sender_name, own, decode_header(headers.get("subject", "")))
             if not limit else None)
    method = None if limit or not _CALENDAR.search(raw) else calendar_method(msg)
    reply_to = None
    if "reply-to" in headers:
        reply_to = parse_from(_raw_header(msg, "reply-to"))[0] or "?"
    return ParsedMail(
        key=key,
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        sender_person=addressed_name(sender_name, split_signature(text, sender_name)[1], sender),
        subject=clean_text(headers.get("subject", "")),
        recipients=recipients(raw[:head_end]),
        headers=headers,
        text=text,
        participants=found.participants if found else (),
        registered_by=found.registered_by if found else None,
        participant_issue=found.issue if found else None,
        reply_to=reply_to if reply_to != sender else None,
        calendar_method=method,
        calendar_reply=calendar_reply(msg) if method else None,
        limit=limit,
        auth_results=tuple(decode_header(v)[:2000] for k, v in msg.raw_items()
                           if k.lower() == "authentication-results")[:20],
        language=guess_language(text),
        header_values=values,
        fingerprint=fingerprint(raw[head_end:], sender, headers),
        quoted=quoted_part(full, text),
    )


def header_end(raw: bytes) -> int:
    """Where the header block ends (the blank line), or the length of ``raw``."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def mime_problem(raw: bytes) -> str | None:
    """A reason when the MIME structure is beyond what a person sends; None when fine.
    Counted on the bytes, before the email package builds (and recurses into) it."""
    if len(_MULTIPART.findall(raw, 0, MAX_SCAN)) > MAX_MULTIPARTS:
        return f"MIME zu tief verschachtelt (über {MAX_MULTIPARTS} Ebenen)"
    if len(_PART_HEADER.findall(raw, 0, MAX_SCAN)) > MAX_PARTS:
        return f"zu viele MIME-Teile (über {MAX_PARTS})"
    return None


def content_key(raw: bytes) -> str:
    """The key of a mail without a usable Message-ID: a hash of its bytes."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def mail_key(raw: bytes) -> str:
    """The key ``parse_mail`` gives ``raw`` (its valid Message-ID, else the hash of its
    bytes), read from the header block alone: for finding a mail by its key."""
    head_end = header_end(raw)
    if head_end > MAX_HEADER_BYTES:
        return content_key(raw)
    msg = _HEADER_PARSER.parsebytes(raw[:head_end])
    value = next((v for k, v in msg.raw_items() if k.strip().lower() == "message-id"), "")
    return valid_message_id(decode_header(value)) or content_key(raw)


def same_content(raw: bytes, fingerprint: str | None) -> bool:
    """Whether ``raw`` has this fingerprint (or its start); True for None or "": any."""
    return not fingerprint or mail_fingerprint(raw).startswith(fingerprint)


def mail_fingerprint(raw: bytes) -> str:
    """The ``fingerprint`` ``parse_mail`` gives ``raw``, read without parsing the body."""
    head_end = header_end(raw)
    if head_end > MAX_HEADER_BYTES:
        return ""
    msg = _HEADER_PARSER.parsebytes(raw[:head_end])
    headers = _headers(msg)[0]
    return fingerprint(raw[head_end:], parse_from(_raw_header(msg, "from"))[0], headers)


def _unparsed(raw: bytes, head_end: int, reason: str) -> ParsedMail:
    return ParsedMail(key=content_key(raw), message_id=None,
                      sender=None, sender_name="", subject="", headers={}, text="",
                      recipients=recipients(raw[: min(head_end, MAX_SCAN)]), limit=reason)


def recipients(head: bytes) -> tuple[str, ...]:
    """Addresses in To, Cc, Delivered-To, X-Original-To, lower-case; read straight from
    the header bytes (linear, also for a 600 KB To header)."""
    text = head.decode("latin-1")
    found: list[str] = []
    for m in _RECIPIENT_LINE.finditer(text):
        found += [a.lower() for a in ADDR_RE.findall(m[1])]
        if len(found) > 5000:
            break
    return tuple(dict.fromkeys(found))


def _raw_header(msg: Message, name: str) -> str:
    return next((v for k, v in msg.raw_items() if k.lower() == name), "")


def _headers(msg: Message) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Lower-case name → unfolded value (first occurrence wins), and name → every value;
    decoded where a rule reads the text (Subject, Precedence …), raw for the rest
    (Received lines and the like)."""
    every: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        key = name.strip().lower()
        text = (decode_header(value) if key in _READ_HEADERS
                else _FOLD.sub(" ", value) if "\n" in value else value)
        every.setdefault(key, []).append(text)
    return ({k: v[0] for k, v in every.items()}, {k: tuple(v) for k, v in every.items()})


def decode_header(value: str) -> str:
    """Decode encoded words and raw 8-bit bytes of a header; unfold it."""
    if not value.isascii() and any("\udc80" <= c <= "\udcff" for c in value):
        data = value.encode("ascii", "surrogateescape")
        value = decode_bytes(data, None)
    if "=?" in value:  # most headers have no encoded words: skip the slow path
        try:
            value = str(email.header.make_header(email.header.decode_header(value)))
        except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
            pass
    return (_FOLD.sub(" ", value) if "\n" in value else value).strip()


def valid_message_id(value: str) -> str | None:
    """The Message-ID if it is one well-formed ``<left@right>`` token, else None."""
    value = value.strip()
    return value if _MSGID_RE.fullmatch(value) else None


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
    western = data.decode("cp1252", errors="replace")
    others = [c for c in western if ord(c) > 127]
    if sum(c in _WESTERN for c in others) >= 0.9 * len(others):
        return western  # umlauts, accents and typographic quotes: this is what it was
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


def calendar_method(msg: Message) -> str | None:
    """The METHOD of a text/calendar part (REPLY: an answer from a calendar program)."""
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            method = part.get_param("method")
            if isinstance(method, str):
                return method.strip().upper()[:20]
            data = _decoded(part)
            m = re.search(rb"^METHOD:(\w+)", data, re.MULTILINE)
            return m[1].decode("ascii").upper() if m else "UNKNOWN"
    return None


_CALENDAR = re.compile(rb"text/calendar", re.IGNORECASE)  # no such part: no walk to look
_ICAL_UNFOLD = re.compile(r"\r?\n[ \t]")
_ATTENDEE = re.compile(r"^ATTENDEE(?P<params>;[^:\n]*)?:(?:mailto:)?(?P<addr>[^\s;]+)\s*$",
                       re.IGNORECASE | re.MULTILINE)
_COMMENT = re.compile(r"^COMMENT(?:;[^:\n]*)?:(?P<text>.*)$", re.IGNORECASE | re.MULTILINE)


def calendar_reply(msg: Message) -> tuple[str, str | None, str, str] | None:
    """(PARTSTAT, attendee address, attendee name, comment) of a calendar REPLY part, or
    None. The attendee's address is checked like any other address."""
    for part in msg.walk():
        if part.get_content_type() != "text/calendar":
            continue
        data = _decoded(part)
        text = _ICAL_UNFOLD.sub("", decode_bytes(data[:200_000], part.get_content_charset()))
        m = _ATTENDEE.search(text)
        if not m:
            return ("UNKNOWN", None, "", "")
        params = m["params"] or ""
        status = re.search(r";PARTSTAT=([\w-]+)", params, re.IGNORECASE)
        name = re.search(r';CN="?([^";:]*)"?', params, re.IGNORECASE)
        comment = _COMMENT.search(text)
        note = comment["text"].replace("\\n", " ").replace("\\,", ",").strip() if comment else ""
        return ((status[1].upper() if status else "NEEDS-ACTION")[:20], valid_address(m["addr"]),
                clean_text(name[1], 120) if name else "", clean_text(note, 500))
    return None


def _decoded(part: Message) -> bytes:
    """A part's payload, transfer-decoded (a multipart part has none: empty)."""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message) -> str:
    data = _decoded(part)
    text = decode_bytes(data[: MAX_TEXT * 4], part.get_content_charset())[:MAX_TEXT]
    if "flowed" in part.get("content-type", "").lower() and str(
            part.get_param("format", "")).lower() == "flowed":
        text = unflow(text, str(part.get_param("delsp", "")).lower() == "yes")
    return text


_ESCAPED_NUMBER = re.compile(r"(\d)\\\.")  # html2text writes "am 31\\. Mai" for "am 31. Mai"


_CELL_END = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
_ROW_END = re.compile(r"</tr\s*>", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """The text of an HTML part; a table's cells stay apart (" | ", a row a line) so that
    no name runs into an address ("Ines RoggenkampLeitung…i.roggenkamp@…")."""
    if "</t" in html or "</T" in html:
        html = _ROW_END.sub("<br>", _CELL_END.sub(" | ", html))
    return _ESCAPED_NUMBER.sub(r"\1.", _html.handle(html))


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def quoted_part(full: str, text: str) -> str:
    """What a mail quotes of earlier ones: all of it that is not what the person wrote now."""
    return "" if len(full) <= len(text) else full[len(text):len(text) + 4000]
