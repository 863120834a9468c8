"""Crash soak: N registrations, the daemon SIGKILLed K times at random moments, restarted;
at the end every participant must have exactly one row and at least one confirmation.

Usage: .venv/bin/python bench/crash.py [MAILS] [KILLS] [SEED]   (default 1000 20 1)

Runs its own Dovecot and aiosmtpd on loopback (like the tests). Prints the outcome and
exits 1 if a registration or a reply was lost. Duplicates can only come from the one
window SMTP leaves open (server said 250, the kill came before the database heard it);
they are counted and reported.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CONFIG, Mailbox, registration_mail  # noqa: E402
from servers import start_dovecot, start_smtp  # noqa: E402


def main() -> int:
    defaults = ["1000", "20", "1"]
    mails, kills, seed = (int(a) for a in (sys.argv[1:] + defaults[len(sys.argv) - 1:])[:3])
    dovecot = start_dovecot()
    controller, smtp = start_smtp()
    tmp = Path(tempfile.mkdtemp(prefix="mailbot-crash-"))
    try:
        box = Mailbox(dovecot, "crash")
        people = [f"person{i}@crash{i % 50}.example" for i in range(mails)]
        for i, address in enumerate(people):
            box.append(registration_mail(f"Person {i}", address))
        config = tmp / "mailbot.toml"
        # crashes are measured, not the abuse limits (made-up people at 50 domains are a burst)
        config.write_text(CONFIG.format(start="2021-05-31T10:00:00", end="2021-05-31T15:00:00",
                                        capacity="", imap_port=dovecot.port, user=box.user,
                                        smtp_port=controller.port, db=tmp / "mailbot.sqlite")
                          + "\n[limits]\nmax_new_per_domain_per_hour = 100000\n")
        env = {**os.environ, "MAILBOT_IMAP_PASSWORD": dovecot.password}
        command = [sys.executable, "-m", "mailbot", "--config", str(config), "run"]
        rng = random.Random(seed)
        start = time.monotonic()
        for _ in range(kills):
            proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 2.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and (
                len({e.rcpt_tos[0] for e in smtp.envelopes}) < mails or box.folder("INBOX")):
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        with sqlite3.connect(tmp / "mailbot.sqlite") as db:
            rows = Counter(e for (e,) in db.execute("SELECT email FROM registrations"))
        replies = Counter(e.rcpt_tos[0] for e in smtp.envelopes)
        missing_rows = [p for p in people if rows[p] != 1]
        missing_replies = [p for p in people if replies[p] < 1]
        duplicates = sum(n - 1 for n in replies.values() if n > 1)
        print(f"{mails} registrations, {kills} kills, {time.monotonic() - start:.0f} s: "
              f"{len(missing_rows)} without exactly one row, {len(missing_replies)} without a "
              f"reply, {duplicates} duplicate replies (SMTP window), "
              f"{len(box.folder('INBOX'))} mails left in the inbox")
        return 1 if missing_rows or missing_replies else 0
    finally:
        controller.stop()
        dovecot.stop()


if __name__ == "__main__":
    sys.exit(main())
