"""The strict check: a section or key of the file that mailbot does not know is an error
(a typo would otherwise silently leave a default in place), with the nearest known name."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, get_args, get_type_hints

from mailbot.config.types import OAUTH2_SECRET_KEYS, Config

# TOML keys whose name is not the name of the dataclass field they fill. A key named
# like its field needs no entry: the known keys of a section are its dataclass's fields,
# these, and every key the section's parser reads (so a new key is known by being read).
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "password": ("password_env", "password_file"),
    "max_message_bytes": ("max_message_mb",),
    "max_participants": ("max_participants_per_mail",),
    "retain_days": ("retain_days_after_event",),
}
# Sections whose value is not a dataclass: their keys.
PLAIN_SECTIONS: dict[str, tuple[str, ...]] = {
    "database": ("path",), "templates": ("path",), "reminders": ("before",),
    "oauth2": ("provider", "scope", "ca_file", "client_id", "tenant", "authority",
               "client_secret_file", "certificate_file", "certificate_thumbprint",
               "service_account_file", "delegated_user", "token_url",
               *OAUTH2_SECRET_KEYS)}  # the secret keys: refused by config.read, with the reason
NOT_SECTIONS = {"source"}  # Config fields that are not read from the file
EXTRA_SECTIONS = ("oauth2",)  # sections read into other ones ([imap], [smtp])


def unknown_keys(data: dict[str, Any], seen: dict[str, set[str]]) -> list[str]:
    """One line per section or key of ``data`` that mailbot does not know, with the
    nearest known name ("did you mean …") where one is close."""
    sections = {f.name: f.name for f in dataclasses.fields(Config)
                if f.name not in NOT_SECTIONS} | {name: name for name in EXTRA_SECTIONS}
    hints = get_type_hints(Config)
    found = []
    for name, value in data.items():
        if name not in sections:
            found.append(f"[{name}]: unknown section{_suggest(name, sections)}")
        elif isinstance(value, dict):
            cls = None if name in EXTRA_SECTIONS else _dataclass_of(hints[name])
            found += _unknown_in(value, name, cls, seen)
    return found


def _unknown_in(table: dict[str, Any], name: str, cls: type | None,
                seen: dict[str, set[str]]) -> list[str]:
    known = set(PLAIN_SECTIONS.get(name, ())) | seen.get(name, set())
    hints = get_type_hints(cls) if cls else {}
    for f in dataclasses.fields(cls) if cls else ():
        known.update(KEY_ALIASES.get(f.name, (f.name,)))  # an aliased name is not read
    found = []
    for key, value in table.items():
        if key not in known:
            found.append(f"[{name}] {key}: unknown key{_suggest(key, known)}")
        elif isinstance(value, dict) and _dataclass_of(hints.get(key)):
            found += _unknown_in(value, f"{name}.{key}", _dataclass_of(hints[key]), seen)
    return found


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass in a type hint like ``ImapConfig | None``, else None."""
    for candidate in (hint, *get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _suggest(word: str, known: Any) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    if close:
        return f" — did you mean {close[0]}?"
    return f" (known: {', '.join(sorted(known))})"
