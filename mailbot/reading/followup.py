"""A mail read with the one it follows (pure): the names a waiting mail spoke of without
their address, and the later sentence that gives one ("Bitte melden Sie ihn mit der Adresse
x@y an") — plain values in and out; the processor gathers the waiting mail from the store."""

from __future__ import annotations

import re

from mailbot.core.text import ADDR_RE, CAPITALS
from mailbot.reading.sentences import F, sentences

_TITLED_FULL = re.compile(r"\b(?:Frau|Herrn?|Mr|Mrs|Ms)\.?\s+(?:(?:Dr|Prof)\.\s*)*"
                          r"((?-i:[" + CAPITALS + r"][\w-]+)"
                          r"(?:\s+(?-i:[" + CAPITALS + r"][\w-]+)){0,2})")
_RELATIVE_NAMED = re.compile(r"\b(?:mein|meine|meinen|unser|unsere|unseren|my|our)\s+"
                             r"(?:Kolleg\w*|colleague)\s+((?-i:[" + CAPITALS + r"][\w-]+)"
                             r"(?:\s+(?-i:[" + CAPITALS + r"][\w-]+))?)")
_POINTS_AT = re.compile(r"\b(?:ihn|sie|ihm|ihr|seine|ihre|him|her|his|er)\b", F)
_REGISTERS = re.compile(r"\b(?:an(?:zu)?melden|melden\s+sie\b.{0,80}\ban|eintragen|tragen\s+sie"
                        r"|register|sign\s+(?:him|her)\s+up|add\s+(?:him|her)|adresse\s+(?:ist|lautet)"
                        r"|address\s+is|erreichen\s+sie|reach\s+(?:him|her))\b", F)


def names_spoken_of(sentence: str) -> list[str]:
    """The full names a sentence speaks of ("Herr Mehmet Kılıç" → "Mehmet Kılıç")."""
    found = [m[1] for m in _TITLED_FULL.finditer(sentence)]
    found += [m[1] for m in _RELATIVE_NAMED.finditer(sentence)]
    return list(dict.fromkeys(n for n in found if len(n) > 2))


def completion(text: str, names: list[str], sender: str) -> tuple[str, str, str] | None:
    """(address, name, sentence) when ``text`` gives the one address a waiting mail lacked:
    exactly one address other than the sender's, in a sentence that points at the person
    (by name or "ihn", "sie") and asks to register her. One name waiting, or the name said."""
    addresses = {a.lower() for a in ADDR_RE.findall(text)} - {sender}
    if len(addresses) != 1 or not names:
        return None
    for sentence in sentences(text):
        if not ADDR_RE.search(sentence) or not _REGISTERS.search(sentence):
            continue
        said = [n for n in names if n.split()[-1] in sentence]
        if len(said) == 1:
            return addresses.pop(), said[0], sentence
        if not said and len(names) == 1 and _POINTS_AT.search(sentence):
            return addresses.pop(), names[0], sentence
    return None
