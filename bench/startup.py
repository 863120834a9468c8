"""Start-up time of the organiser's commands (issue 15: status, list, review < 0.3 s).

Usage: .venv/bin/python bench/startup.py [ROUNDS]

Makes a demo database in a temporary folder (a Maildir with examples/mail, replies written
as files: `run --once`), then starts `mailbot status`, `list`, `review` and `--help` as new
processes ROUNDS times each and prints the median and the fastest wall time. Also prints
the modules that `status` imports (to see what a lazy import would save). A measurement,
not a test: the machine's load changes the numbers (the fastest run is the least disturbed).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_demo(folder: Path) -> Path:
    maildir = folder / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for number, mail in enumerate(sorted((ROOT / "examples" / "mail").glob("*.eml"))):
        shutil.copy(mail, maildir / "new" / f"{number:04d}.bench")
    text = (ROOT / "examples" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("var/demo/Maildir", str(maildir)).replace(
        "var/demo/outbox", str(folder / "outbox")).replace(
        "var/demo/mailbot.sqlite", str(folder / "mailbot.sqlite"))
    config = folder / "mailbot.toml"
    config.write_text(text, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "mailbot", "--config", str(config), "run", "--once"],
                   check=True, capture_output=True)
    return config


def timed(args: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as tmp:
        config = make_demo(Path(tmp))
        base = [sys.executable, "-m", "mailbot", "--config", str(config)]
        print(f"{'command':<18} {'median s':>9} {'fastest s':>10}   ({rounds} runs each)")
        for command in (["status"], ["list"], ["review"], ["--help"]):
            times = timed(base + command, rounds)
            print(f"{' '.join(command):<18} {statistics.median(times):>9.3f} "
                  f"{min(times):>10.3f}")
        times = timed([sys.executable, "-c", "pass"], rounds)
        print(f"{'(python itself)':<18} {statistics.median(times):>9.3f} {min(times):>10.3f}")
        env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
        err = subprocess.run(base + ["status"], env=env, capture_output=True, text=True).stderr
        heavy = sorted((int(line.split("|")[1]), line.split("|")[2].strip())
                       for line in err.splitlines() if line.startswith("import time:")
                       and line.split("|")[1].strip().isdigit())[-8:]
        print("largest imports of `status` (cumulative µs):")
        for micros, name in reversed(heavy):
            print(f"  {micros:>8}  {name}")


if __name__ == "__main__":
    main()
