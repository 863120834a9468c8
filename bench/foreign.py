"""A shared inbox: N mails that are not mailbot's (and a few flagged for a human). After
the first poll has read them once, a poll should cost what a poll of an empty inbox costs.

Usage: .venv/bin/python bench/foreign.py [MAILS]   (default 20000)

Runs its own Dovecot and aiosmtpd on loopback (like the tests); prints one line per poll.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from conftest import CONFIG, Mailbox  # noqa: E402
from servers import start_dovecot, start_smtp  # noqa: E402

from mailbot import config as config_mod  # noqa: E402
from mailbot.mail.inbox import open_inbox  # noqa: E402
from mailbot.mail.leftalone import LeftAlone  # noqa: E402
from mailbot.mail.smtp import open_transport  # noqa: E402
from mailbot.service.loop import run_round  # noqa: E402
from mailbot.service.processor import Processor  # noqa: E402
from mailbot.store import Store  # noqa: E402


def foreign(i: int) -> bytes:
    return (f"From: Shop <news{i}@shop{i % 97}.example>\r\nTo: info@isi-innovation.de\r\n"
            f"Subject: Angebot {i}\r\nMessage-ID: <f{i}@shop.example>\r\n"
            f"Date: Fri, 21 May 2021 09:00:00 +0200\r\n\r\n" + "Nur heute.\r\n" * 40).encode()


def poll(config_path: Path, left: LeftAlone) -> tuple[float, int]:
    config = config_mod.load(config_path)
    store = Store(config.database)
    inbox = open_inbox(config.imap, None, config.daemon.batch_size, 25_000_000)
    inbox.left = left
    try:
        processor = Processor(config, store, open_transport(config.smtp, config.contact.address))
        began = time.perf_counter()
        summary = run_round(processor, inbox)
        return time.perf_counter() - began, summary.read
    finally:
        inbox.close()
        store.close()


def main() -> int:
    mails = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    dovecot = start_dovecot()
    controller, _ = start_smtp()
    tmp = Path(tempfile.mkdtemp(prefix="mailbot-foreign-"))
    os.environ["MAILBOT_IMAP_PASSWORD"] = dovecot.password
    try:
        configs = {}
        for user, n in (("empty", 0), ("shared", mails)):
            box = Mailbox(dovecot, user)
            for start in range(0, n, 1000):
                box.client.multiappend("INBOX", [foreign(i) for i in
                                                 range(start, min(n, start + 1000))])
            box.close()
            path = tmp / f"{user}.toml"
            path.write_text(CONFIG.format(
                start="2021-05-31T10:00:00", end="2021-05-31T15:00:00", capacity="",
                imap_port=dovecot.port, user=user, smtp_port=controller.port,
                db=tmp / f"{user}.sqlite"))
            configs[user] = path
        empty = LeftAlone()
        poll(configs["empty"], empty)  # warm-up: database made, folders created
        base, _ = poll(configs["empty"], empty)
        print(f"empty inbox: {base * 1000:.0f} ms per poll")
        left = LeftAlone()
        for label in ("first poll", "second poll", "third poll"):
            took, read = poll(configs["shared"], left)
            print(f"{mails} foreign mails, {label}: {took * 1000:.0f} ms, {read} mails read")
        return 0
    finally:
        controller.stop()
        dovecot.stop()


if __name__ == "__main__":
    sys.exit(main())
