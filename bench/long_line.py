"""Hostile long lines: CPU seconds to understand one mail of ~100 KB in one line (issue 20,
point 12: a line of "Name a@b.cd" once took ~73 s). Budget: under 1 s each on one core.

Usage: .venv/bin/python bench/long_line.py

Runs the pure understanding path (as bench/parse.py) on mails whose body is one long line
of a hostile shape; prints the CPU time of each. A measurement, not a test.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parse import understand  # noqa: E402

BUDGET = 1.0  # CPU seconds per mail
SHAPES = {
    "name address, 5000 times": "Wir melden an: " + " ".join(
        f"Anna Arndt a{i}@b.example" for i in range(5000)),
    "150 people in one sentence": "Wir melden an: " + " ".join(
        f"Anna Arndt a{i}@b.example " + "und " * 150 for i in range(150)),
    "table cells without an address": "a@b.example " + "x | " * 25000,
    "one word of 100,000 letters": "a" * 100_000,
    "a colleague named 2500 times": "meine Kollegin Frau Sommer kommt auch mit, " * 2500,
}


def mail(body: str) -> bytes:
    return ("From: Eve <eve@evil.example>\r\nTo: n.collinet@isi-innovation.de\r\n"
            "Subject: Anmeldung\r\nMessage-ID: <long@evil.example>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Hallo,\r\n{body}\r\n").encode()


def main() -> int:
    worst = 0.0
    for name, body in SHAPES.items():
        raw = mail(body)
        began = time.process_time()
        understand(raw)
        spent = time.process_time() - began
        worst = max(worst, spent)
        print(f"{name:34} {len(raw) / 1000:6.0f} KB  {spent:6.3f} s CPU")
    print(f"worst {worst:.3f} s CPU (budget {BUDGET} s): {'ok' if worst < BUDGET else 'TOO SLOW'}")
    return 0 if worst < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
