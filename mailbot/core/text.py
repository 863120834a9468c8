"""Small text helpers shared by the parser and the composer (pure)."""

from __future__ import annotations

import re
import unicodedata

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# the capital letters a name may begin with, in a character class: German, Turkish, Polish,
# Czech, French, Scandinavian … and Cyrillic ("Çelik", "İlhan", "Łukasz", "Šimek", "Юлія")
CAPITALS = ("A-ZÀ-ÖØ-ÞĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮİĲĴĶĹĻĽĿŁŃŅŇŊŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽ"
            "А-ЯЁІЇЄҐ")
ADDR_SPEC = rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+"
ADDR_RE = re.compile(ADDR_SPEC)


def clean_text(value: str, limit: int = 200) -> str:
    """A one-line, printable version of untrusted text: no control characters at all."""
    if not value.isprintable():  # str.isprintable: no character of Unicode's C* or Z* but " "
        value = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c
                        for c in value)
    return (_SPACES.sub(" ", value) if "  " in value else value).strip()[:limit]


_SPACES = re.compile(r" {2,}")


def span_around(text: str, m: re.Match, breaks: re.Pattern) -> tuple[int, int]:
    """(start, end) of the piece of ``text`` between the ``breaks`` around the match ``m``."""
    start, end = 0, len(text)
    for brk in breaks.finditer(text):
        if brk.end() <= m.start():
            start = brk.end()
        elif brk.start() >= m.end():
            end = brk.start()
            break
    return start, end


def valid_address(value: str) -> str | None:
    """The address in lower case if it is a plain ``local@domain.tld``, else None."""
    value = value.strip()
    if len(value) > 254 or not ADDR_RE.fullmatch(value):
        return None
    return value.lower()


_WORD = re.compile(r"[a-zäöüß']+")
_ENGLISH = frozenset("the and to for you would like please i we our my is are be will "
                     "with this that of on in dear regards thank thanks best kind "
                     "meeting attend register can't cannot".split())
_GERMAN = frozenset("ich und die der das den dem mich für bitte sie mit zum zur ist sind "
                    "wir uns ein eine nicht auch gerne gern grüße grüßen viele vielen "
                    "liebe lieber sehr geehrte geehrter hallo danke anmeldung treffen".split())


def guess_language(text: str) -> str | None:
    """ "de" or "en" by counting common words; None when the text does not say."""
    words = _WORD.findall(text[:3000].lower())
    english = sum(map(_ENGLISH.__contains__, words))  # map: no generator frame per word
    german = sum(map(_GERMAN.__contains__, words))
    if english >= 3 and english > 2 * german:
        return "en"
    if german >= 2 and german >= english:
        return "de"
    return None


# A sentence quoted in a reason (the words it rests on); the end of the text closes one
# that a length limit cut off.
QUOTED = re.compile(r"‚[^‘]*(?:‘|$)")


def shorten(sentence: str, limit: int = 140) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def quote(sentence: str) -> str:
    """A sentence of a mail as a reason quotes it: shortened, in ‚…‘, its own ‚ and ‘
    made plain, so that :data:`QUOTED` finds exactly the quote (for `forget` and the log)."""
    return "‚" + shorten(sentence).replace("‚", ",").replace("‘", "'") + "‘"


def unquoted(reason: str) -> str:
    """A reason without the sentences of the mail it quotes: what the log may say (the
    database keeps the quote, where `forget` reaches it)."""
    return QUOTED.sub("‚…‘", reason)
