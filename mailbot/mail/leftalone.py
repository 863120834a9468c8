"""The mails a poll leaves in the IMAP folder on purpose (not ours, or flagged for a human),
remembered by (UIDVALIDITY, UID) so that the next poll downloads only new mail."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


class LeftAlone:
    """(UIDVALIDITY, UID) of the mails left in the folder on purpose — not ours, or flagged
    for a human — so that a poll downloads only new mail. A flagged one is read again once
    its flag is gone (a human settled it: the service moves it). Kept by the service across
    reconnects; a new UIDVALIDITY (the folder was rebuilt) forgets them all."""

    def __init__(self) -> None:
        self.validity: int | None = None
        self.foreign: set[int] = set()
        self.flagged: set[int] = set()

    def _same(self, validity: int) -> None:
        if validity != self.validity:
            self.validity, self.foreign, self.flagged = validity, set(), set()

    def current(self, validity: int, present: Sequence[int],
                flagged_now: Callable[[], set[int]]) -> set[int]:
        """The UIDs not to read: remembered, still in the folder, and — for mail that
        waits for a human — still flagged (``flagged_now`` is only asked when needed)."""
        self._same(validity)
        self.foreign &= set(present)
        self.flagged &= set(present)
        if self.flagged:
            self.flagged &= flagged_now()
        return self.foreign | self.flagged

    def add(self, validity: int, uids: Iterable[int], flagged: bool = False) -> None:
        self._same(validity)
        (self.flagged if flagged else self.foreign).update(uids)

    def to_text(self) -> str:
        """``validity:1-40,45;46`` (not ours; flagged) — short also for 20,000 mails."""
        return f"{self.validity or ''}:{_ranges(self.foreign)};{_ranges(self.flagged)}"

    @classmethod
    def from_text(cls, text: str | None) -> LeftAlone:
        left = cls()
        validity, _, rest = (text or "").partition(":")
        if validity.isdigit():
            foreign, _, flagged = rest.partition(";")
            left.validity = int(validity)
            left.foreign, left.flagged = _uids(foreign), _uids(flagged)
        return left


def _ranges(uids: set[int]) -> str:
    parts: list[list[int]] = []
    for uid in sorted(uids):
        if parts and uid == parts[-1][1] + 1:
            parts[-1][1] = uid
        else:
            parts.append([uid, uid])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in parts)


def _uids(text: str) -> set[int]:
    found: set[int] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found
