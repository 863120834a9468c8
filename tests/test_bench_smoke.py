"""The burst benchmark runs end to end (tiny numbers, no timing assertion: a smoke check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_burst_benchmark_runs_and_prints_its_table():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "burst.py"), "--mails", "200", "--small", "50",
         "--latency", "10", "--rate", "10"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[1].split()[:3] == ["N", "floor", "s"]
    assert [line.split()[0] for line in lines[2:4]] == ["50", "200"]
    # 50 mails: 3 out-of-office (no reply), 3 for two people (two replies)
    assert lines[2].split()[-2] == "50" and lines[3].split()[-2] == "200", "every reply sent"
    assert lines[5].startswith("IDLE latency (10 of 10 mails")
    assert lines[6].startswith("parser alone:")


def test_understanding_benchmark_finds_nothing_harmful_and_nothing_lost():
    """bench/understanding.py over every corpus: its table, and the issue's promise that
    no corpus mail harms anyone or disappears unread."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "understanding.py")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("corpus"))
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    assert {r[0] for r in rows} >= {"tests/mails", "tests/mails/blind"}
    assert all(r[-2:] == ["0", "0"] for r in rows), result.stdout
    assert "HARMFUL" not in result.stdout and "SILENT LOSS" not in result.stdout
