"""Who is behind an address, for the abuse budgets (pure): the mailbox (without a
``+tag``, and without dots at Gmail) and the registrable domain (public suffix list:
``a.evil.example`` and ``b.evil.example`` are one owner's, ``x.co.uk`` and ``y.co.uk``
are not)."""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList  # ships its list: no download at run time

_GMAIL = frozenset({"gmail.com", "googlemail.com"})


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


@functools.lru_cache(maxsize=4096)
def registrable_domain(domain: str) -> str:
    """The domain somebody registered (``mail.stadt-hamm.de`` → ``stadt-hamm.de``); the
    domain itself when it is a public suffix or not a name the list knows."""
    domain = domain.strip(".").lower()
    if domain in _GMAIL:
        return "gmail.com"
    return _suffixes().privatesuffix(domain) or domain


def mailbox(address: str) -> str:
    """The mailbox an address delivers to: ``Max.Muster+x@googlemail.com`` →
    ``maxmuster@gmail.com``, ``anna+fachtag@a.example`` → ``anna@a.example``."""
    local, _, domain = address.lower().rpartition("@")
    local = local.partition("+")[0] or local
    if domain in _GMAIL:
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


def org_domain(address: str) -> str:
    """The registrable domain of an address."""
    return registrable_domain(address.rpartition("@")[2])
