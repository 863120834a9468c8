"""The shape of the house, checked from the source (ast), so it cannot drift silently.

The pure core decides from plain values: it must not reach the database, the network or the
loop. Imports inside ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mailbot"
PURE = ["models", "parse", "people", "classify", "guard", "policy", "lifecycle", "compose",
        "ics", "report", "text", "clock", "bounce", "rate", "providers", "names", "signature",
        "sentences", "eventfacts", "explained"]
IO_MODULES = {"store", "store_rows", "store_messages", "store_registrations", "store_outbox",
              "store_state", "migrations", "imap", "maildir", "inbox", "outbox", "daemon",
              "service", "jobs", "sending", "organiser", "cli", "lock", "notify", "net",
              "doctor", "browse", "health", "digest", "cli_common", "cli_desk", "cli_run",
              "store_file"}
IO_STDLIB = {"socket", "ssl", "sqlite3", "sqlite_utils", "imapclient", "aiosmtplib", "asyncio",
             "subprocess", "threading"}


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Module names imported at run time (top level and inside functions)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name.split(".")[0] for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level and child.module:
                    found.add("." + child.module.split(".")[0])
                elif child.level:
                    found.update("." + alias.name for alias in child.names)
                elif child.module:
                    found.add(child.module.split(".")[0])
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_no_io(name):
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"{name}.py is gone: update PURE rather than skip its check"
    imports = _runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
    own = {i[1:] for i in imports if i.startswith(".")}
    assert not own & IO_MODULES, f"{name}.py imports {sorted(own & IO_MODULES)}"
    assert not imports & IO_STDLIB, f"{name}.py imports {sorted(imports & IO_STDLIB)}"


def test_the_check_sees_a_forbidden_import():
    """The test above can fail: a runtime import is found, an annotation-only one is not."""
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from .daemon import X\ndef f():\n    from .store import Store\n")
    assert _runtime_imports(tree) == {"typing", ".store"}
    assert _every_import(tree) == {"daemon", "store"}, "annotations count for the desk"


def _every_import(tree: ast.Module) -> set[str]:
    """Own modules imported anywhere, annotations (``if TYPE_CHECKING:``) included."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mailbot"):
            found.add((node.module or "").partition(".")[2].split(".")[0])
    return found


@pytest.mark.parametrize("name", sorted(p.stem for p in PACKAGE.glob("*.py")))
def test_only_cli_starts_the_loop(name):
    """The loop (daemon) sits on the service, never the other way round: nothing but the
    command line (cli, and cli_run where `run` lives) imports it, not even for an
    annotation — organiser and report above all."""
    if name in ("cli", "cli_run", "daemon"):
        return
    imports = _every_import(ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8")))
    assert "daemon" not in imports, f"{name}.py imports daemon"


def test_the_desk_and_the_report_sit_on_the_service():
    for name, below in (("organiser", "service"), ("report", None)):
        imports = _every_import(ast.parse((PACKAGE / f"{name}.py").read_text("utf-8")))
        assert "daemon" not in imports
        assert below is None or below in imports


def test_store_closes_itself(tmp_path):
    from mailbot.store import Store

    with Store(tmp_path / "m.sqlite") as store:
        store.db.execute("select 1")
    with pytest.raises(Exception, match="closed"):
        store.db.execute("select 1")


MAX_LINES = 400


def test_no_module_is_over_400_lines():
    """A module a newcomer can read in one sitting: none over 400 lines (issue 11)."""
    long = {path.name: n for path in sorted(PACKAGE.glob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_every_command_is_found_and_the_read_only_ones_start_light():
    """The commands of cli_run/cli_desk are registered when used: each name `--help` lists
    resolves to its command; importing the command line loads no mail library."""
    import subprocess
    import sys

    import click

    from mailbot.cli import main

    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert {"run", "status", "check", "cancel", "move-up", "purge", "preview"} <= set(names)
    assert all(main.get_command(ctx, name).name == name for name in names)
    code = ("import sys, mailbot.cli; print(sorted(m for m in ('imapclient', 'aiosmtplib', "
            "'jinja2', 'icalendar', 'mailbot.daemon', 'mailbot.organiser', 'asyncio', "
            "'urllib.request', 'html2text', 'mailbot.parse') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
