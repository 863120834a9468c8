"""The organiser's language: ``tr()`` (imported as ``_``) gives a text in the configured
``[event] organiser_language`` (default: ``[event] language``) from the gettext catalogues
in mailbot/locale, English as the message ids. The command line picks the language when it
loads the configuration (``use``); the digest speaks its event's (``speaking``).
Unknown languages and missing entries fall back to English."""

from __future__ import annotations

import contextlib
import functools
import gettext
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

DOMAIN = "mailbot"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_current: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


@functools.cache
def translation(language: str) -> gettext.NullTranslations:
    """The catalogue of a language (English: the message ids themselves)."""
    return gettext.translation(DOMAIN, LOCALE_DIR, [language], fallback=True)


def use(language: str) -> None:
    """Speak ``language`` from now on (the command line, once the config is read)."""
    global _current, _language
    _current, _language = translation(language), language


def language() -> str:
    return _language


@contextlib.contextmanager
def speaking(language: str) -> Iterator[None]:
    """Speak ``language`` for a block (e.g. one digest), then as before."""
    before = _language
    use(language)
    try:
        yield
    finally:
        use(before)


def tr(message: str) -> str:
    """A text in the current language (import it as ``_``: ``from mailbot.core.i18n import
    tr as _``, the name gettext tools look for)."""
    return _current.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 (the name gettext tools look for)
    """Marks a text for the catalogue where it is defined; ``tr()`` translates it later."""
    return message


def translated(text: str, templates: Iterable[str]) -> str:
    """``text``, made and stored in English from one of ``templates`` (marked with N_,
    filled with ``str.format``), in the current language: its values are taken back out
    and put into the template's translation. A text of none of them stays as it is."""
    for template in templates:
        found = re.fullmatch(_pattern(template), text, re.DOTALL)
        if found:
            return tr(template).format(**found.groupdict())
    return text


def _pattern(template: str) -> str:
    """A regular expression of ``template`` with a group for each ``{name}``."""
    seen: set[str] = set()

    def field(match: re.Match) -> str:
        name = match.group(1)
        group = f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
        seen.add(name)
        return group

    return re.sub(r"\\\{(\w+)\\\}", field, re.escape(template))
