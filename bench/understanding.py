"""How well mailbot understands mail: right / total, harmful, silent losses, per corpus.

Usage: .venv/bin/python bench/understanding.py [-v] [FOLDER ...]

Without FOLDER: the shared samples (../shared/samples/mail), tests/mails and
tests/mails/blind. Each folder holds .eml files and an expected.json (see
tests/test_corpora.py).

Every mail of a corpus goes, in name order, through the same code as ``run --once``:
``Processor.handle`` (parse → is it ours? → guard → classify → decide → compose → record)
into one fresh database per corpus; only IMAP and SMTP are left out. After each mail the
bench compares what changed (the messages row, the queued replies, the registrations) with
the expected outcome:

- right: the outcome matches the expected one exactly (action, flag, replies, rows, names).
- HARMFUL: a reply to, or a row changed for, anyone the expected outcome does not name —
  or a named person registered where they cancelled, or cancelled where they registered.
- SILENT LOSS: no reply and no flag (the mail left the inbox unseen), but a human was
  needed (the expected outcome is a registration, a cancellation, a review or attention).

A measurement, not a test: tests/test_corpora.py asserts the same against real servers.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import email
import email.utils
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mailbot import config as cfg
from mailbot.core.models import ATTENTION, FOREIGN, WAITING, InboundMail, Summary
from mailbot.service.processor import Processor
from mailbot.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT.parent / "shared" / "samples" / "mail", ROOT / "tests" / "mails",
           ROOT / "tests" / "mails" / "blind"]
CONFIG = """\
[event]
title = "Digitales Auftakttreffen: Aufbau des Landesnetzwerks für bürgerschaftliches Engagement"
start = {year}-05-31T10:00:00
end = {year}-05-31T15:00:00
timezone = "Europe/Berlin"
language = "de"
[zoom]
url = "https://zoom.us/j/84512345678?pwd=dGVzdA"
meeting_id = "845 1234 5678"
passcode = "Auftakt{yy}"
[contact]
name = "Nathalie Collinet"
address = "n.collinet@isi-innovation.de"
organisation = "Institut für soziale Innovation"
[maildir]
path = "unused"
[smtp]
host = "127.0.0.1"
port = 25
security = "none"
[database]
path = ":memory:"
[daemon]
max_age = "10000d"
[privacy]
retain_days_after_event = 36500
"""
FLAGGED = {"review", ATTENTION, WAITING}
NEEDS_HUMAN = {"register", "cancel", "review"}
TITLES = re.compile(r"\b(?:dr|prof|frau|herr|ms|mr|mrs)\.?\s+", re.IGNORECASE)


def norm_name(name: str | None) -> str:
    return " ".join(TITLES.sub("", name or "").casefold().split())


LEGAL_FORMS = re.compile(r"\b(?:e\.\s?V\.?|g?GmbH|gUG|mbH|AöR|KdöR)(?=\W|$)", re.I)


def words(text: str | None) -> list[str]:
    """An organisation's words, its legal form aside ("DSB Ortsverein Bochum e.V." is the
    "DSB Ortsverein Bochum" of a name list)."""
    return re.findall(r"\w+", LEGAL_FORMS.sub(" ", text or "").casefold())


def people(entry: dict) -> list[dict]:
    """The expected participants as dicts (a bare address string is allowed)."""
    return [p if isinstance(p, dict) else {"email": p} for p in entry.get("participants") or []]


@dataclass
class Seen:
    """What one mail did: its outcome, its messages row, its replies, the rows it changed."""

    outcome: str
    row: dict | None
    replies: list[dict]
    changed: dict[str, dict]  # email → the registration row after the mail
    before: dict[str, dict]  # email → the row before (missing: there was none)


@dataclass
class Score:
    total: int = 0
    right: int = 0
    harmful: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


def _rows(store: Store, sql: str, *args: object) -> list[dict]:
    cur = store.db.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def received(raw: bytes) -> dt.datetime:
    """When the mail arrived: its Date, as the test corpus is appended to Dovecot."""
    msg = email.message_from_bytes(raw)
    try:
        when = email.utils.parsedate_to_datetime(msg["Date"]) if msg["Date"] else None
    except (TypeError, ValueError):
        when = None
    if when is None:
        return dt.datetime.now(dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def handle(processor: Processor, raw: bytes, ref: str) -> Seen:
    store = processor.store
    regs = {r["email"]: r for r in _rows(store, "SELECT * FROM registrations")}
    last_reply = _rows(store, "SELECT coalesce(max(id), 0) AS n FROM outbox")[0]["n"]
    keys = {r["message_id"] for r in _rows(store, "SELECT message_id FROM messages")}
    outcome = processor.handle(InboundMail(ref, raw, received(raw)), Summary())
    new_rows = [r for r in _rows(store, "SELECT * FROM messages") if r["message_id"] not in keys]
    replies = _rows(store, "SELECT recipient, kind, body FROM outbox WHERE id > ?", last_reply)
    after = {r["email"]: r for r in _rows(store, "SELECT * FROM registrations")}
    changed = {e: r for e, r in after.items()
               if e not in regs or any(r[k] != regs[e][k] for k in
                                       ("status", "name", "organisation", "ics_sequence",
                                        "message_id"))}
    return Seen(outcome, new_rows[0] if new_rows else None, replies, changed, regs)


def harms(entry: dict, seen: Seen, sender: str | None) -> list[str]:
    """Replies and rows for people the expected outcome does not name."""
    action = entry["action"]
    named = {p["email"].lower() for p in people(entry)} if action in ("register",
                                                                       "cancel") else set()
    out = []
    for reply in seen.replies:
        if reply["recipient"] in named:
            continue
        if reply["kind"] == "on_behalf" and action == "register" and reply["recipient"] == sender:
            continue
        out.append(f"{reply['kind']} an {reply['recipient']}")
    for address, row in seen.changed.items():
        if row["status"] == "held" and action == "review":
            continue  # a place held while a human reads (issue 22): no mail, she decides
        if address not in named:
            out.append(f"Zeile {row['status']} für {address}")
        elif action == "register" and row["status"] == "cancelled":
            out.append(f"{address} abgemeldet statt angemeldet")
        elif action == "cancel" and row["status"] != "cancelled":
            out.append(f"{address} angemeldet statt abgemeldet")
    return out


def silent(entry: dict, seen: Seen) -> bool:
    """Left the inbox without reply or flag, although a human was needed."""
    if seen.outcome in FLAGGED or seen.replies:
        return False
    return entry["action"] in NEEDS_HUMAN or bool(entry.get("attention"))


def judged(entry: dict, seen: Seen, registered: set[str], harm: list[str]) -> list[str]:
    """:func:`mistakes`, read as the corpora's README says: an outcome in ``alt_ok`` is
    right too (a careful secretary could defend it), and for ``any_safe`` any outcome that
    harms nobody is."""
    if entry["action"] == "any_safe":
        return [f"harmful: {'; '.join(harm)}"] if harm else []
    problems = mistakes(entry, seen, registered)
    for alternative in entry.get("alt_ok") or []:
        if not problems or harm:
            break
        if not mistakes({**entry, "action": alternative}, seen, registered):
            problems = []
    return problems


def mistakes(entry: dict, seen: Seen, registered: set[str]) -> list[str]:
    """Why the outcome is not the expected one (empty: right) — the rules of
    tests/test_corpora.py, checked right after the mail."""
    action = entry["action"]
    if action == "foreign":
        return [] if seen.outcome == FOREIGN and not seen.replies else [f"got {seen.outcome}"]
    row = seen.row
    if row is None:
        return [f"not recorded ({seen.outcome})"]
    got = row["action"] + ("+attention" if row["needs_attention"] else "")
    if row["action"] != action:
        return [f"got {got}: {row['reason']}"]
    problems = []
    flagged = seen.outcome in FLAGGED
    if entry.get("reason") and entry["reason"].casefold() not in (row["reason"] or "").casefold():
        problems.append(f"reason lacks {entry['reason']!r}: {row['reason']}")
    if action in ("ignore", "noop", "review"):
        if seen.replies:
            problems.append("replied")
        if flagged != (action == "review"):
            problems.append("flag wrong")
        return problems
    if bool(entry.get("attention") or entry.get("needs_human_too")) != flagged:
        problems.append(f"attention {'missing' if not flagged else 'extra'}: {row['reason']}")
    expected = sorted(p["email"].lower() for p in people(entry))
    by = {r["registered_by"] for r in seen.changed.values()
          if r["message_id"] == row["message_id"]} - {None} - set(expected)
    got_to = sorted(r["recipient"] for r in seen.replies)
    if got_to != sorted(expected + list(by)):
        problems.append(f"replies to {got_to}, expected {expected}")
    for person in people(entry):
        address = person["email"].lower()
        reg = seen.changed.get(address) or seen.before.get(address)
        if action == "cancel" and address not in registered:
            if reg is not None and reg["status"] != "cancelled":
                problems.append(f"{address} registered")
            continue
        if reg is None:
            problems.append(f"no row for {address}")
            continue
        if action == "cancel":
            if reg["status"] != "cancelled":
                problems.append(f"{address} not cancelled")
            continue
        if reg["status"] != "confirmed":
            problems.append(f"{address} {reg['status']}")
        if "name" in person and norm_name(reg["name"]) != norm_name(person["name"]):
            problems.append(f"name {reg['name']!r} != {person['name']!r}")
        if person.get("organisation") and words(reg["organisation"]) != words(
                person["organisation"]):
            problems.append(f"organisation {reg['organisation']!r} != "
                            f"{person['organisation']!r}")
        if entry.get("duplicate") and address in seen.changed and \
                seen.changed[address]["message_id"] == row["message_id"]:
            problems.append("duplicate made a new row")
    calendar = {p["email"].lower() for p in people(entry)
                if action == "register" or p["email"].lower() in registered}
    for reply in seen.replies:
        if (b"text/calendar" in reply["body"]) != (reply["recipient"] in calendar):
            problems.append(f"calendar entry wrong for {reply['recipient']}")
    return problems


def sender_of(raw: bytes) -> str | None:
    from mailbot.reading.parse import parse_from

    msg = email.message_from_bytes(raw)
    return parse_from(str(msg.get("From", "")))[0]


def event_year(folder: Path) -> int:
    """The event is on 31 May of the year the corpus's mails were written (most of them)."""
    years = collections.Counter(received(p.read_bytes()).year for p in folder.glob("*.eml"))
    return years.most_common(1)[0][0] if years else 2021


def run(folder: Path, verbose: bool) -> Score | None:
    expected_file = folder / "expected.json"
    if not expected_file.exists():
        return None
    entries = sorted(json.loads(expected_file.read_text(encoding="utf-8")),
                     key=lambda e: e["file"])
    config = cfg.parse(tomllib.loads(CONFIG.format(year=(year := event_year(folder)),
                                                   yy=year % 100)))
    store = Store(":memory:")
    processor = Processor(config, store, transport=None)
    score = Score()
    registered: set[str] = set()
    for n, entry in enumerate(entries):
        path = folder / entry["file"]
        score.total += 1
        if not path.exists():
            score.wrong.append(f"{entry['file']}: file missing")
            continue
        raw = path.read_bytes()
        seen = handle(processor, raw, str(n + 1))
        label = f"{entry['file']} [{entry['action']}]"
        harm = harms(entry, seen, sender_of(raw))
        if harm:
            score.harmful.append(f"{label}: {'; '.join(harm)}")
        if silent(entry, seen):
            reason = seen.row["reason"] if seen.row else seen.outcome
            score.silent.append(f"{label}: {seen.row['action'] if seen.row else ''} {reason}")
        problems = judged(entry, seen, registered, harm)
        if problems:
            score.wrong.append(f"{label}: {'; '.join(problems)}")
        else:
            score.right += 1
        if entry["action"] == "register":
            registered |= {p["email"].lower() for p in people(entry)}
        if verbose and seen.row:
            print(f"  {label}: {seen.row['action']} {seen.row['reason'] or ''}")
    store.close()
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="every mail's outcome")
    parser.add_argument("--numbers", action="store_true",
                        help="only the table (a holdout's mails are never shown)")
    parser.add_argument("folders", nargs="*", type=Path)
    args = parser.parse_args(argv)
    folders = args.folders or [f for f in DEFAULT if f.exists()]
    import mailbot.reading.parse

    print(f"code: {Path(mailbot.reading.parse.__file__).parent}")
    rows = []
    for folder in folders:
        hidden = args.numbers or any(part.startswith("holdout") for part in folder.parts)
        score = run(folder, args.verbose and not hidden)
        if score is None:
            print(f"{folder}: no expected.json", file=sys.stderr)
            continue
        rows.append((folder, score))
        if hidden:
            continue  # a holdout that was looked at is spent
        for title, items in (("wrong", score.wrong), ("HARMFUL", score.harmful),
                             ("SILENT LOSS", score.silent)):
            for item in items:
                print(f"{folder.name}: {title}: {item}")
    print()
    print(f"{'corpus':<36} {'right':>9} {'%':>5} {'harmful':>8} {'silent':>7}")
    for folder, s in rows:
        name = str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)
        print(f"{name:<36} {s.right:>4} / {s.total:<3} {100 * s.right / max(1, s.total):>4.0f}"
              f" {len(s.harmful):>8} {len(s.silent):>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
