"""Bring a newly written corpus into the repository as a holdout, without showing it.

Usage: .venv/bin/python bench/holdout_in.py SOURCE DEST

SOURCE holds ``*.eml`` files and an ``expected.json`` (the format of
``../shared/corpora/README.md``), written by someone who never read mailbot's code.
DEST (e.g. ``corpora/holdout2/schulen``) receives the same mails in the same processing
order under opaque names (``001.eml`` …), and an ``expected.json`` whose ``file`` fields
name them: a listing of the tree, a ``git status`` or a commit's file list tells nothing
about the mails. Nothing of the mails is printed; only how many were brought in.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def bring_in(source: Path, dest: Path) -> int:
    expected = json.loads((source / "expected.json").read_text(encoding="utf-8"))
    missing = [e["file"] for e in expected if not (source / e["file"]).is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} mail(s) named in expected.json are missing")
    dest.mkdir(parents=True, exist_ok=False)
    renamed: dict[str, str] = {}
    for entry in expected:
        if entry["file"] not in renamed:
            renamed[entry["file"]] = f"{len(renamed) + 1:03d}.eml"
            shutil.copyfile(source / entry["file"], dest / renamed[entry["file"]])
        entry["file"] = renamed[entry["file"]]
    (dest / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return len(renamed)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    count = bring_in(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{count} mails brought in as {sys.argv[2]}/001.eml … (names opaque)")


if __name__ == "__main__":
    main()
