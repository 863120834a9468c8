"""Parser throughput: typical mails per second on one core (issue: target >= 2,000/s).

Usage: .venv/bin/python bench/parse.py [ROUNDS]

Reads every mail of the corpora (shared samples, tests/mails, examples/mail) and runs the
pure understanding path on each — parse (MIME, charsets, quotes, participants), the loop
guard, read (classify with the event's facts) — ROUNDS times; prints mails/s. A
measurement, not a test.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from mailbot.config.types import EventConfig
from mailbot.reading.classify import read
from mailbot.reading.parse import parse_mail
from mailbot.rules import guard

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = [ROOT.parent / "shared" / "samples" / "mail", ROOT / "tests" / "mails",
           ROOT / "examples" / "mail"]  # the blind set is left out: the same 77 mails as ever
OWN = "n.collinet@isi-innovation.de"
_BERLIN = ZoneInfo("Europe/Berlin")
EVENT = EventConfig(
    title="Digitales Auftakttreffen: Aufbau des Landesnetzwerks für bürgerschaftliches Engagement",
    start=dt.datetime(2021, 5, 31, 10, tzinfo=_BERLIN),
    end=dt.datetime(2021, 5, 31, 15, tzinfo=_BERLIN), timezone="Europe/Berlin")


def understand(raw: bytes) -> None:
    parsed = parse_mail(raw, OWN)
    guard.check(parsed, OWN)
    read(parsed, EVENT)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    mails = [p.read_bytes() for f in FOLDERS if f.exists() for p in sorted(f.glob("*.eml"))]
    for raw in mails:  # warm up: regexes compiled, modules loaded
        understand(raw)
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in mails:
            understand(raw)
    elapsed = time.perf_counter() - start
    count = rounds * len(mails)
    print(f"{count} mails ({len(mails)} distinct) in {elapsed:.2f} s: "
          f"{count / elapsed:,.0f} mails/s on one core")


if __name__ == "__main__":
    main()
