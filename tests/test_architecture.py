"""The shape of the house, checked from the source (ast), so it cannot drift silently.

The packages say what a module is (ARCHITECTURE.md): the pure ones (core, reading, rules,
replies) decide from plain values and never reach the database, the network or the loop;
each package imports only the packages below it; nobody takes another module's private
names; no module is over 400 lines; no two modules need each other, not even for an
annotation or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mailbot"
PURE = ("core", "reading", "rules", "replies")
# what each package may import of mailbot (besides itself)
MAY_IMPORT = {
    "core": set(),
    "config": {"core"},
    "reading": {"core", "config"},
    "rules": {"core", "config"},
    "replies": {"core", "config", "reading"},
    "store": {"core"},
    "host": set(),
    "mail": {"core", "config", "host", "reading", "rules"},
    "service": {"core", "config", "reading", "rules", "replies", "store", "mail", "host"},
    "desk": {"core", "config", "reading", "rules", "replies", "store", "mail", "host",
             "service"},
    "cli": {"core", "config", "reading", "rules", "replies", "store", "mail", "host",
            "service", "desk"},
}
IO_LIBRARIES = {"socket", "ssl", "sqlite3", "sqlite_utils", "imapclient", "aiosmtplib",
                "asyncio", "subprocess", "threading", "urllib", "http", "requests", "msal"}


def modules() -> dict[str, Path]:
    """Every module by dotted name below mailbot ('store' for store/__init__.py)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = modules()


def _resolve(module: str, level: int, here: str, is_package: bool) -> str:
    """The dotted name below mailbot that an import statement names ('' for mailbot)."""
    if level:
        base = here.split(".") if here else []
        base = base if is_package else base[:-1]
        base = base[:len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, *([module] if module else [])])
    return module.partition(".")[2] if module.startswith("mailbot.") else (
        "" if module == "mailbot" else "\0" + module)


def imports_of(name: str, runtime_only: bool = False) -> dict[str, set[str]]:
    """Own modules this module imports (annotations and function bodies included), each
    with the names it takes; a name that is a module counts as that module. Libraries
    are keyed with a leading NUL. ``runtime_only`` leaves out ``if TYPE_CHECKING:``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: dict[str, set[str]] = {}

    def add(target: str, what: str) -> None:
        found.setdefault(target, set()).add(what)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if runtime_only and isinstance(child, ast.If) and \
                    "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(_resolve(alias.name, 0, name, is_package), "")
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(child.module or "", child.level, name, is_package)
                for alias in child.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    if sub in MODULES:
                        add(sub, "")
                    else:
                        add(target, alias.name)
            visit(child)

    visit(tree)
    return found


def package_of(name: str) -> str:
    return name.split(".")[0]


def test_the_house_has_rooms():
    """A file's folder says what it is: sub-packages, and few modules left at the top."""
    assert (PACKAGE / "__init__.py").exists()
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(packages) >= 6, packages
    assert len(top) <= 8, top
    assert packages == set(MAY_IMPORT), "every package has its line in MAY_IMPORT"
    assert not [p for p in PACKAGE.rglob("*.py") if len(p.relative_to(PACKAGE).parts) > 2]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if "." in n or n in MAY_IMPORT))
def test_each_package_imports_only_what_is_below_it(name):
    own, allowed = package_of(name), MAY_IMPORT[package_of(name)]
    for target in imports_of(name):
        if target.startswith("\0") or target == "":
            continue
        assert package_of(target) in allowed | {own}, f"{name} imports {target}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if package_of(n) in PURE))
def test_pure_packages_import_no_io(name):
    libraries = {t[1:].split(".")[0] for t in imports_of(name, runtime_only=True)
                 if t.startswith("\0")}
    assert not libraries & IO_LIBRARIES, f"{name} imports {sorted(libraries & IO_LIBRARIES)}"


def test_no_import_circle():
    """No two modules need each other, by any path — annotations and imports inside a
    function count (a circle there is a circle of ideas)."""
    graph = {n: {t for t in imports_of(n) if t in MODULES and t != n} for n in MODULES}
    # a package's face importing its own modules is how a face works, not a circle
    graph = {n: {t for t in ts if not (n == package_of(t) and "." not in n)}
             for n, ts in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(
                    path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_private_name_is_taken_from_another_module():
    taken = sorted(f"{n}: {t}.{what}" for n in MODULES for t, names in imports_of(n).items()
                   for what in names if what.startswith("_") and not what.startswith("__"))
    assert not taken


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The checks above see an import inside a function, an annotation-only import, a
    relative import of a sibling module and a private name."""
    fake = tmp_path / "mailbot"
    (fake / "rules").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "rules" / "__init__.py").write_text("")
    (fake / "rules" / "x.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mailbot.store import S\n"
        "def f():\n    import sqlite3\n    from .y import _hidden\n")
    (fake / "rules" / "y.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake, raising=False)
    global MODULES, PACKAGE
    saved = MODULES, PACKAGE
    PACKAGE = fake
    MODULES = modules()
    try:
        assert imports_of("rules.x") == {"\0typing": {"TYPE_CHECKING"}, "store": {"S"},
                                         "\0sqlite3": {""}, "rules.y": {"_hidden"}}
        assert "store" not in imports_of("rules.x", runtime_only=True)
        with pytest.raises(AssertionError):
            test_each_package_imports_only_what_is_below_it("rules.x")
        with pytest.raises(AssertionError):
            test_pure_packages_import_no_io("rules.x")
        with pytest.raises(AssertionError):
            test_no_private_name_is_taken_from_another_module()
    finally:
        MODULES, PACKAGE = saved


def test_only_cli_starts_the_loop():
    """The loop sits on the service, never the other way round: nothing but the command
    line imports it, not even for an annotation — the desk and the report above all."""
    users = sorted(n for n in MODULES if "service.loop" in imports_of(n))
    assert all(package_of(n) == "cli" for n in users), users


def test_the_desk_sits_on_the_service():
    assert "service.processor" in imports_of("desk.organiser")


def test_store_closes_itself(tmp_path):
    from mailbot.store import Store

    with Store(tmp_path / "m.sqlite") as store:
        store.db.execute("select 1")
    with pytest.raises(Exception, match="closed"):
        store.db.execute("select 1")


MAX_LINES = 400


def test_no_module_is_over_400_lines():
    """A module a newcomer can read in one sitting: none over 400 lines (issue 11)."""
    long = {n: k for n, path in MODULES.items()
            if (k := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_every_command_is_found_and_the_read_only_ones_start_light():
    """The commands of cli.run/cli.desk are registered when used: each name `--help` lists
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
            "'jinja2', 'icalendar', 'mailbot.service.loop', 'mailbot.desk.organiser', 'asyncio', "
            "'urllib.request', 'html2text', 'mailbot.reading.parse') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _defined(path: Path) -> set[str]:
    """The names a module defines itself (def, class, assignment; also under if/try)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def test_tests_import_each_name_from_where_it_is_defined():
    """No re-exports for tests: a test (or a bench) names the module that defines what it
    uses, so a face (store, config, mail.inbox) can change without breaking them."""
    root = PACKAGE.parent
    found = []
    for path in sorted([*root.glob("tests/*.py"), *root.glob("bench/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "mailbot.")):
                continue
            name = node.module.partition(".")[2]
            if name not in MODULES:
                continue
            for alias in node.names:
                if f"{name}.{alias.name}" not in MODULES and \
                        alias.name not in _defined(MODULES[name]):
                    found.append(f"{path.name}: from {node.module} import {alias.name}")
    assert not found
