"""Burst benchmark: N registration mails against the physical floor of IMAP + SMTP.

Usage: .venv/bin/python bench/burst.py [--mails N] [--small N] [--latency N] [--rate R]

In one run, against a fresh Dovecot and aiosmtpd on loopback:
1. fills an inbox with N realistic mails (plain, HTML, quoted-printable, two people, some
   auto-replies);
2. the floor: imapclient fetches all N in batches + aiosmtplib sends N minimal replies over
   one connection; and the real floor: the same fetch + the replies mailbot sent (real
   size: text, HTML, calendar), sent again over one connection;
3. ``mailbot run --once`` on the same inbox with a fresh database: wall time, mails/s, peak
   RSS — and the same at a smaller N, to show memory does not grow with N;
4. latency with the service in IMAP IDLE: mails appended at R per second, time from APPEND
   to the reply reaching the SMTP server (p50, p95, max);
5. the parser alone (mails/s on one core);
6. one table, and the ratio mailbot / floor.

A measurement, not a test: it asserts nothing. The test suite runs it with small numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import aiosmtplib  # noqa: E402
from conftest import CONFIG, Mailbox  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from servers import start_dovecot, start_smtp  # noqa: E402

from mailbot.reading.parse import parse_mail  # noqa: E402

OWN = "n.collinet@isi-innovation.de"


def make_mail(i: int) -> bytes:
    """The i-th mail of a realistic mix."""
    kind = i % 20
    address = f"person{i}@verein{i % 97}.example"
    head = (f"From: Person {i} <{address}>\r\nTo: Nathalie Collinet <{OWN}>\r\n"
            f"Subject: Anmeldung Auftakttreffen\r\nDate: Fri, 21 May 2021 09:00:00 +0200\r\n"
            f"Message-ID: <burst-{i}@verein{i % 97}.example>\r\nMIME-Version: 1.0\r\n")
    if kind == 0:  # an out-of-office reply
        return (head + "Auto-Submitted: auto-replied\r\nContent-Type: text/plain; "
                "charset=utf-8\r\n\r\nIch bin bis 4.6. nicht im Büro.\r\n").encode()
    if kind in (1, 2, 3):  # HTML only
        return (head + "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hallo "
                "Frau Collinet,</p><p>ich melde mich hiermit für das <b>Auftakttreffen</b> an."
                f"</p><p>Viele Grüße<br>Person {i}<br>Verein {i % 97} e.V.</p></body></html>"
                "\r\n").encode()
    if kind in (4, 5, 6, 7):  # quoted-printable, latin-1
        body = (f"Guten Tag,\r\n\r\nich m=F6chte gerne am Auftakttreffen teilnehmen.\r\n"
                f"Organisation: B=FCrgerverein {i % 97}\r\n\r\nMit freundlichen Gr=FC=DFen\r\n"
                f"Person {i}\r\n")
        return (head + "Content-Type: text/plain; charset=iso-8859-1\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body).encode()
    if kind == 8:  # two people
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\nwir melden uns an:\r\n"
                f"1. Anna Schmidt, {address}\r\n2. Petra Lange, lange{i}@verein{i % 97}"
                ".example\r\n\r\nBeste Grüße\r\n").encode()
    return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
            f"8bit\r\n\r\nLiebe Frau Collinet,\r\n\r\nhiermit melde ich mich an.\r\n\r\n"
            f"Viele Grüße\r\nPerson {i}\r\nFreiwilligenagentur {i % 97} e.V.\r\n").encode()


def fill(dovecot, user: str, n: int) -> Mailbox:
    box = Mailbox(dovecot, user)
    for i in range(n):
        box.client.append("INBOX", make_mail(i))
    return box


def fetch_all(dovecot, user: str) -> float:
    """Seconds to fetch every mail of the inbox in batches of 100 (imapclient)."""
    start = time.perf_counter()
    client = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login(user, dovecot.password)
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["NOT", "DELETED"])
    for i in range(0, len(uids), 100):
        client.fetch(uids[i: i + 100], ["BODY.PEEK[]", "INTERNALDATE"])
    client.logout()
    return time.perf_counter() - start


def send_all(smtp_port: int, bodies: list[bytes]) -> float:
    """Seconds to send these messages over one connection (aiosmtplib)."""

    async def send() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False)
        await smtp.connect()
        for i, body in enumerate(bodies):
            await smtp.sendmail(OWN, [f"p{i}@x.example"], body)
        await smtp.quit()

    start = time.perf_counter()
    asyncio.run(send())
    return time.perf_counter() - start


def minimal(i: int) -> bytes:
    return f"From: {OWN}\r\nTo: p{i}@x.example\r\nSubject: ok\r\n\r\nok\r\n".encode()


# a benchmark measures throughput: thousands of made-up people at 97 domains within minutes
# are a burst the abuse limits (rightly) hold for a human
NO_ABUSE_LIMITS = ("\n[limits]\nreplies_per_domain_per_day = 100000\n"
                   "max_new_per_domain_per_hour = 100000\nmax_others_per_hour = 100000\n")


def write_config(tmp: Path, dovecot, user: str, smtp_port: int, extra: str = "") -> Path:
    """The test configuration, with the event a few weeks ahead: registrations are open,
    so the mix is answered with confirmations (calendar included), as in real life."""
    day = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    config = tmp / f"{user}.toml"
    config.write_text(CONFIG.format(start=f"{day}T10:00:00", end=f"{day}T15:00:00",
                                    capacity="", imap_port=dovecot.port, user=user,
                                    smtp_port=smtp_port, db=tmp / f"{user}.sqlite") + extra)
    return config


def run_once(config: Path, password: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `mailbot run --once` in its own process.

    The peak is the child's VmHWM, read every 20 ms: the rusage of a child started with
    vfork (as subprocess does) begins with the parent's peak, here the benchmark's own."""
    env = {**os.environ, "MAILBOT_IMAP_PASSWORD": password}
    log = config.with_suffix(".log")
    start = time.perf_counter()
    with open(log, "wb") as stderr:  # its log line per mail stays out of the table
        proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(config),
                                 "run", "--once"], env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _peak_kb(proc.pid))
            time.sleep(0.02)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        raise SystemExit("\n".join(tail) + f"\nmailbot run --once failed with exit code "
                         f"{proc.returncode}")
    return wall, peak_kb / 1024


def _peak_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass  # it has just ended
    return 0


def latency(dovecot, smtp, smtp_port: int, tmp: Path, count: int, rate: float) -> list[float]:
    """Seconds from APPEND to the reply at the SMTP server, with the service idling."""
    box = Mailbox(dovecot, "latency")
    config = write_config(tmp, dovecot, "latency", smtp_port,
                          NO_ABUSE_LIMITS)
    config.write_text(config.read_text().replace("poll_interval = 0.5", "poll_interval = 600"))
    env = {**os.environ, "MAILBOT_IMAP_PASSWORD": dovecot.password}
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(config), "run"],
                            env=env, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def watch() -> None:
        for line in proc.stderr:
            if "connected" in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    ready.wait(30)
    time.sleep(0.5)
    smtp.envelopes.clear()
    arrived: dict[str, float] = {}
    smtp.on_message = lambda env: arrived.setdefault(
        " ".join(str(email.message_from_bytes(env.content)["In-Reply-To"]).split()),
        time.perf_counter())
    sent: dict[str, float] = {}
    for i in range(count):
        raw = make_mail(100000 + i * 20 + 9)  # plain registrations
        mid = email.message_from_bytes(raw)["Message-ID"]
        sent[mid] = time.perf_counter()
        box.client.append("INBOX", raw)
        time.sleep(1 / rate)
    deadline = time.monotonic() + 30
    while len(arrived) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.terminate()
    proc.wait(timeout=30)
    smtp.on_message = None
    box.close()
    return [arrived[m] - t for m, t in sent.items() if m in arrived]


def parser_speed(n: int) -> float:
    mails = [make_mail(i) for i in range(min(n, 2000))]
    start = time.perf_counter()
    for raw in mails:
        parse_mail(raw, OWN)
    return len(mails) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000, help="the smaller N for memory")
    parser.add_argument("--latency", type=int, default=200, help="mails for the IDLE test")
    parser.add_argument("--rate", type=float, default=5.0, help="mails per second (IDLE)")
    args = parser.parse_args()
    dovecot = start_dovecot()
    controller, smtp = start_smtp()
    tmp = Path(tempfile.mkdtemp(prefix="mailbot-burst-"))
    results = []
    try:
        for n in sorted({args.small, args.mails}):
            box = fill(dovecot, f"burst{n}", n)
            box.close()
            fetch_s = fetch_all(dovecot, f"burst{n}")
            floor_s = fetch_s + send_all(controller.port, [minimal(i) for i in range(n)])
            smtp.envelopes.clear()
            config = write_config(tmp, dovecot, f"burst{n}", controller.port,
                                  NO_ABUSE_LIMITS)
            wall, rss = run_once(config, dovecot.password)
            replies = [envelope.content for envelope in smtp.envelopes]
            smtp.envelopes.clear()
            real_s = fetch_s + send_all(controller.port, replies)  # the same bytes, again
            results.append((n, floor_s, real_s, wall, rss, len(replies),
                            sum(map(len, replies)) // max(len(replies), 1)))
        waits = latency(dovecot, smtp, controller.port, tmp, args.latency, args.rate)
        speed = parser_speed(args.mails)
    finally:
        controller.stop()
        dovecot.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, waits, speed, args)
    return 0


def report(results, waits, speed, args) -> None:
    print(f"mailbot burst benchmark — {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'N':>7} {'floor s':>8} {'real floor s':>13} {'mailbot s':>10} {'mails/s':>8} "
          f"{'ratio':>6} {'real ratio':>11} {'peak RSS MB':>12} {'replies':>8} {'avg B':>6}")
    for n, floor_s, real_s, wall, rss, replies, size in results:
        print(f"{n:>7} {floor_s:>8.2f} {real_s:>13.2f} {wall:>10.2f} {n / wall:>8.0f} "
              f"{wall / floor_s:>6.2f} {wall / real_s:>11.2f} {rss:>12.0f} {replies:>8} "
              f"{size:>6}")
    print("floor: fetch all + N minimal replies over one connection; real floor: fetch all + "
          "the replies mailbot sent, sent again over one connection")
    if waits:
        q = (statistics.quantiles(waits, n=20, method="inclusive") if len(waits) > 1
             else [waits[0]] * 19)
        print(f"IDLE latency ({len(waits)} of {args.latency} mails at {args.rate:g}/s): "
              f"p50 {statistics.median(waits) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms, "
              f"max {max(waits) * 1000:.0f} ms")
    else:
        print("IDLE latency: no reply arrived")
    print(f"parser alone: {speed:,.0f} mails/s on one core")


if __name__ == "__main__":
    sys.exit(main())
