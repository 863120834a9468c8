"""The documentation says what is true: the organiser's walk-through in docs/organiser.md is
run for real on the demo (examples/demo.toml, its mails in a Maildir, replies written as
files) and every shown output must be what the command prints now (dates, times and
backup names normalised); every relative link in README.md and docs/*.md points at a file
that exists; the configuration keys listed in docs/reference.md are exactly the keys the
configuration reader knows.

After a deliberate change of output, write the new outputs into the page with
``MAILBOT_DOCS_WRITE=1 .venv/bin/python -m pytest tests/test_docs.py -k walk`` and read the
diff before committing it."""

from __future__ import annotations

import dataclasses
import os
import pty
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from mailbot.config import keys
from mailbot.config.types import OAUTH2_SECRET_KEYS, Config

ROOT = Path(__file__).parent.parent
ORGANISER = ROOT / "docs" / "organiser.md"
REFERENCE = ROOT / "docs" / "reference.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAILBOT = Path(sys.executable).parent / "mailbot"
PROMPT = "[y/N]: "  # click's question; the page shows the answer typed after it

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
DATE_TIME = re.compile(r"\b\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}(:\d{2})?\b")
STAMP = re.compile(r"\b\d{8}-\d{6}\b")


def normalise(text: str) -> str:
    text = DATE_TIME.sub("DD.MM.YYYY hh:mm", text)
    text = STAMP.sub("YYYYMMDD-hhmmss", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def shown_blocks(page: str) -> list[tuple[int, int, list[tuple[str, str]]]]:
    """Each plain fenced block whose first line is a ``$ .venv/bin/mailbot`` command: its
    span in the page and its (command, shown output) pairs."""
    found = []
    for match in FENCE.finditer(page):
        lang, body = match.group(1), match.group(2)
        if lang or not body.startswith("$ .venv/bin/mailbot"):
            continue
        pairs: list[tuple[str, list[str]]] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                pairs.append((line[2:], []))
            else:
                pairs[-1][1].append(line)
        found.append((match.start(2), match.end(2),
                      [(cmd, "\n".join(out)) for cmd, out in pairs]))
    return found


def setup_block(page: str) -> str:
    [body] = [m.group(2) for m in FENCE.finditer(page)
              if m.group(1) == "sh" and "MAILBOT_CONFIG" in m.group(2)]
    return body


def run_shown(command: str, cwd: Path, env: dict[str, str]) -> str:
    """One documented command as a user would type it, y answered to its question."""
    args = shlex.split(command)
    assert args[0] == ".venv/bin/mailbot", command
    controller, terminal = pty.openpty()  # a terminal on stdin: the question is asked
    try:
        os.write(controller, b"y\n")
        result = subprocess.run([str(MAILBOT), *args[1:]], cwd=cwd, env=env, stdin=terminal,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=120)
    finally:
        os.close(controller)
        os.close(terminal)
    return result.stdout.replace(PROMPT, PROMPT + "y\n").rstrip("\n")


@pytest.fixture
def demo_folder(tmp_path):
    """The project folder as the walk-through's set-up leaves it (scripts/setup has run:
    this is its .venv), in a temporary folder."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    script = "\n".join(line for line in setup_block(ORGANISER.read_text()).splitlines()
                       if not line.startswith(("scripts/setup", "export ")))
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, check=True)
    [config] = re.findall(r"^export MAILBOT_CONFIG=(\S+)$", setup_block(ORGANISER.read_text()),
                          re.M)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["MAILBOT_CONFIG"] = config
    return tmp_path, env


def test_the_organiser_walk_through_shows_what_the_commands_print(demo_folder):
    cwd, env = demo_folder
    page = ORGANISER.read_text()
    blocks = shown_blocks(page)
    assert len(blocks) >= 10, "the walk-through lost its commands"
    printed = [[(cmd, run_shown(cmd, cwd, env)) for cmd, _ in pairs]
               for _, _, pairs in blocks]
    if os.environ.get("MAILBOT_DOCS_WRITE"):
        for (start, end, _), outputs in reversed(list(zip(blocks, printed, strict=True))):
            body = "".join(f"$ {cmd}\n" + (f"{out}\n" if out else "") for cmd, out in outputs)
            page = page[:start] + body + page[end:]
        ORGANISER.write_text(page)
        return
    for (_, _, pairs), outputs in zip(blocks, printed, strict=True):
        for (cmd, shown), (_, out) in zip(pairs, outputs, strict=True):
            assert normalise(shown) == normalise(out), f"docs/organiser.md: $ {cmd}"


def test_every_relative_link_points_at_a_file():
    broken = []
    for page in PAGES:
        text = FENCE.sub("", page.read_text())
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken


def _dataclass_of(hint: Any) -> type | None:
    for candidate in (hint, *get_args(hint)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def code_keys() -> dict[str, set[str]]:
    """Every key of every section the configuration reader takes from the file."""
    found: dict[str, set[str]] = {}
    hints = get_type_hints(Config)
    for section in dataclasses.fields(Config):
        if section.name in keys.NOT_SECTIONS:
            continue
        cls = _dataclass_of(hints[section.name])
        if cls is None:
            found[section.name] = set(keys.PLAIN_SECTIONS[section.name])
            continue
        field_hints = get_type_hints(cls)
        found[section.name] = {key for f in dataclasses.fields(cls)
                               if not _dataclass_of(field_hints[f.name])  # [oauth2], filled
                               for key in keys.KEY_ALIASES.get(f.name, (f.name,))}
    found["oauth2"] = set(keys.PLAIN_SECTIONS["oauth2"]) - set(OAUTH2_SECRET_KEYS)
    return found


def documented_keys() -> dict[str, set[str]]:
    page = REFERENCE.read_text()
    [listing] = [m.group(2) for m in FENCE.finditer(page)
                 if m.group(1) == "text" and m.group(2).startswith("[event]")]
    return {line.split()[0].strip("[]"): set(line.split()[1:])
            for line in listing.splitlines() if line.strip()}


def test_the_documented_keys_are_the_keys_the_reader_knows():
    assert documented_keys() == code_keys()


def test_every_listed_key_is_described_in_the_table():
    page = REFERENCE.read_text()
    rows: dict[str, str] = {}
    for section, text in re.findall(r"^\| `\[(\w+)\]`(?: …)? \| (.*)$", page, re.M):
        rows[section] = rows.get(section, "") + text
    missing = [f"[{section}] {key}" for section, names in documented_keys().items()
               for key in sorted(names) if f"`{key}`" not in rows.get(section, "")]
    assert not missing


def test_the_readme_is_short_and_keeps_its_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 80
    sh_blocks = [m.group(2).strip() for m in FENCE.finditer(readme) if m.group(1) == "sh"]
    assert sh_blocks[:2] == ["scripts/demo", "scripts/test"]
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
