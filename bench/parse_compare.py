"""Parser speed of this checkout against another one, measured in one process.

Usage: .venv/bin/python bench/parse_compare.py OTHER_CHECKOUT [ROUNDS]

On a busy machine wall-clock numbers of two runs say little; this loads the other
checkout's `mailbot` package under another name, runs both understanding paths (parse,
guard, classify/read) over the same 77 corpus mails in alternation, and prints each one's
best CPU time as mails/s and their ratio. A measurement, not a test.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import parse as this  # bench/parse.py: this checkout's path and corpus

OTHER_NAME = "other_mailbot"


def load_other(checkout: Path):
    """The other checkout's mailbot, importable as ``other_mailbot``: the flat layout
    (relative imports) or the packages (absolute ``mailbot.`` imports, renamed here)."""
    folder = Path(tempfile.mkdtemp())
    shutil.copytree(checkout / "mailbot", folder / OTHER_NAME)
    for path in (folder / OTHER_NAME).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\b(from|import) mailbot\b", rf"\1 {OTHER_NAME}", text),
                        encoding="utf-8")
    sys.path.insert(0, str(folder))
    packaged = (folder / OTHER_NAME / "reading").is_dir()
    parse = importlib.import_module(f"{OTHER_NAME}.{'reading.' if packaged else ''}parse")
    guard = importlib.import_module(f"{OTHER_NAME}.{'rules.' if packaged else ''}guard")
    classify = importlib.import_module(
        f"{OTHER_NAME}.{'reading.' if packaged else ''}classify")

    def understand(raw: bytes) -> None:
        parsed = parse.parse_mail(raw, this.OWN)
        guard.check(parsed, this.OWN)
        if hasattr(classify, "read"):
            classify.read(parsed, this.EVENT)
        else:
            classify.classify(parsed.subject, parsed.text, parsed.calendar_method)

    return understand


def main() -> None:
    other = load_other(Path(sys.argv[1]).resolve())
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    mails = [p.read_bytes() for f in this.FOLDERS if f.exists() for p in sorted(f.glob("*.eml"))]
    for raw in mails:
        this.understand(raw)
        other(raw)
    best = {"this": float("inf"), "other": float("inf")}
    for _ in range(rounds):
        for name, fn in (("other", other), ("this", this.understand)):
            start = time.process_time()
            for raw in mails:
                fn(raw)
            best[name] = min(best[name], time.process_time() - start)
    for name, seconds in best.items():
        print(f"{name:5}: {len(mails) / seconds:,.0f} mails/s (best of {rounds}, CPU time)")
    print(f"ratio this/other: {best['other'] / best['this']:.2f}")


if __name__ == "__main__":
    main()
